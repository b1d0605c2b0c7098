# narrowgen — the two commands a new user needs: `make demo` and `make test`.
# Both create .venv and install narrowgen (editable) with its test extras when missing.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.narrowgen-installed
PYTEST_ARGS ?=

.PHONY: demo test test-all bench lint clean distclean iverilog ccache

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

# Icarus Verilog is the one dependency that does not come from PyPI.
iverilog:
	@command -v iverilog >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing iverilog (apt-get)"; \
	    (apt-get install -y -qq iverilog >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq iverilog >/dev/null)); \
	  else \
	    echo "Icarus Verilog is missing: install it (e.g. sudo apt-get install iverilog)"; exit 1; \
	  fi; }

# ccache is optional: with it, Verilator's runtime is compiled once per build directory instead
# of once per simulated configuration (about 3 s of every Verilator build). Installed when we can.
ccache:
	@command -v ccache >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing ccache (apt-get)"; \
	    apt-get install -y -qq ccache >/dev/null 2>&1 || \
	      (apt-get update -qq >/dev/null && apt-get install -y -qq ccache >/dev/null) || true; \
	  else \
	    echo "note: ccache is not installed; Verilator builds run without it"; \
	  fi; }

demo: $(STAMP)
	$(PY) -m gen.demo

test: $(STAMP) iverilog ccache
	$(PY) -m pytest -n 2 --dist worksteal $(PYTEST_ARGS)

test-all: $(STAMP) iverilog ccache
	$(PY) -m pytest -n 2 --dist worksteal -m "slow or not slow" $(PYTEST_ARGS)

bench: $(STAMP) iverilog ccache
	$(PY) -m gen.bench --out build/bench

lint: $(STAMP)
	$(VENV)/bin/ruff check hdl gen sim boards tests

clean:
	rm -rf build .pytest_cache

distclean: clean
	rm -rf $(VENV)
