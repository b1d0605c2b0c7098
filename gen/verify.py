"""Verification of any registered core: stimulus, golden model, emitted Verilog, simulator, compare.

Used by ``narrowgen verify``, ``make demo`` and the test suite alike, so the tests check exactly
what users run. A run that checked zero transactions is a failure, never a pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.runner import simulate

from .emit import emit, write_outputs
from .payload import pack_beats, payload_width, unpack_beats
from .registry import Core, VectorError

__all__ = ["VerifyReport", "Prepared", "prepare", "score", "verify", "DEFAULT_WORK_DIR"]

DEFAULT_WORK_DIR = Path("build")


@dataclass
class VerifyReport:
    core: str
    top: str
    params: dict
    simulator: str
    seed: int
    transactions: int
    mismatches: int
    cycles: int
    wall_seconds: float
    build_seconds: float
    sim_seconds: float
    verilog: Path
    first_mismatch: dict | None = None
    stalled: str | None = None
    outputs: dict = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        return self.transactions > 0 and self.mismatches == 0 and self.stalled is None

    def summary_lines(self) -> list[str]:
        lines = [
            f"core        {self.core} ({self.top})",
            f"verilog     {self.verilog}",
            f"simulator   {self.simulator}",
            f"seed        {self.seed}",
            f"vectors     {self.transactions} checked, {self.mismatches} mismatches",
            f"cycles      {self.cycles}",
            f"wall time   {self.wall_seconds:.1f} s (build {self.build_seconds:.1f} s, "
            f"simulation {self.sim_seconds:.1f} s, "
            f"{self.transactions / max(self.sim_seconds, 1e-9):,.0f} vectors/s)",
        ]
        if self.stalled:
            lines.append(f"FAILED      {self.stalled}")
        if self.first_mismatch:
            fm = self.first_mismatch
            lines.append(f"first mismatch: vector {fm['index']}")
            for key in ("inputs", "expected", "actual"):
                for name, val in fm[key].items():
                    lines.append(f"  {key:<9}{name} = {val}")
        lines.append("PASS" if self.passed else "FAIL")
        return lines


def _fmt_array(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.dtype.kind == "f":
        a = a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint64)
    if a.dtype.kind in "ui":
        return "[" + " ".join(f"{int(v):#x}" for v in a.reshape(-1)) + "]"
    return np.array2string(a.reshape(-1), max_line_width=10_000)


@dataclass
class Prepared:
    """Inputs, golden outputs and packed beats of one verification, ready for any back end."""

    inputs: dict
    count: int
    emitted: object
    in_layout: object
    out_layout: object
    in_rows: np.ndarray
    exp_rows: np.ndarray

    @property
    def out_bytes(self) -> int:
        return (payload_width(self.out_layout) + 7) // 8


def prepare(core: Core, params, *, n: int = 1000, seed: int = 1,
            vectors: dict | None = None) -> Prepared:
    """Stimulus (or the user's vectors), golden outputs, the emitted core and packed beats."""
    if vectors is not None:
        inputs = core.check_vectors(params, vectors)
    else:
        if n < 0:
            raise VectorError(f"-n must be a non-negative number of random vectors, not {n}")
        inputs = core.stimulus(params, np.random.default_rng(seed), n)
    expected_out = core.golden(params, inputs)
    emitted = emit(core, params)
    comp = emitted.component
    in_layout = comp.signature.members["i"].signature.members["payload"].shape
    out_layout = comp.signature.members["o"].signature.members["payload"].shape
    return Prepared(
        inputs=inputs, count=core.transactions(params, inputs), emitted=emitted,
        in_layout=in_layout, out_layout=out_layout,
        in_rows=pack_beats(in_layout, core.to_beats(params, inputs)),
        exp_rows=pack_beats(out_layout, core.expected_beats(params, expected_out)))


def score(core: Core, params, prep: Prepared, actual: np.ndarray, report: VerifyReport,
          where: str = "") -> None:
    """Compare the output beats some hardware produced with the golden ones; fill ``report``."""
    exp_rows, in_rows, count = prep.exp_rows, prep.in_rows, prep.count
    n_beats = exp_rows.shape[0]
    got = actual[:n_beats]
    if actual.shape[0] < n_beats:
        report.stalled = (f"the core produced {actual.shape[0]} of {n_beats} output beats "
                          f"and then stopped{where}")
    elif actual.shape[0] > n_beats:
        report.stalled = (f"the core produced {actual.shape[0] - n_beats} output beats more "
                          f"than the {n_beats} expected")

    # Compare per transaction (a transaction may span several output beats).
    per = core.out_beats_per_transaction(params)
    k = got.shape[0]
    bad_beat = np.any(got != exp_rows[:k], axis=1)
    bad_tx = np.unique(np.nonzero(bad_beat)[0] // per)
    report.mismatches = int(bad_tx.size) + (count - k // per if k < n_beats else 0)
    if k == n_beats and not report.stalled:
        actual_fields = unpack_beats(prep.out_layout, got)
        report.outputs = core.from_beats(params, actual_fields, prep.inputs)
    if bad_tx.size:
        t = int(bad_tx[0])
        in_per = in_rows.shape[0] // count
        in_f = unpack_beats(prep.in_layout, in_rows[t * in_per:(t + 1) * in_per])
        exp_f = unpack_beats(prep.out_layout, exp_rows[t * per:(t + 1) * per])
        act_f = unpack_beats(prep.out_layout, got[t * per:(t + 1) * per])
        report.first_mismatch = {
            "index": t,
            "inputs": {name: _fmt_array(v) for name, v in in_f.items()},
            "expected": {name: _fmt_array(v) for name, v in exp_f.items()},
            "actual": {name: _fmt_array(v) for name, v in act_f.items()},
        }


def verify(core: Core, params, *, sim: str = "verilator", n: int = 1000, seed: int = 1,
           vectors: dict | None = None, work_dir: Path = DEFAULT_WORK_DIR,
           idle_prob: float = 0.2, stall_prob: float = 0.2,
           progress: Callable[[str], None] | None = None) -> VerifyReport:
    """Verify ``core`` at ``params`` bit for bit against its golden model.

    With ``vectors`` (the arrays of a user's ``--vectors`` file) the inputs come from there;
    otherwise ``n`` random transactions plus the core's corner cases are generated from ``seed``.
    """
    t_start = time.perf_counter()
    prep = prepare(core, params, n=n, seed=seed, vectors=vectors)
    emitted = prep.emitted
    vpath, _ = write_outputs(emitted, Path(work_dir) / "gen" / emitted.top)
    run = simulate(vpath, emitted.top, sim, prep.in_rows, prep.exp_rows,
                   out_bytes=prep.out_bytes, seed=seed, work_dir=Path(work_dir),
                   idle_prob=idle_prob, stall_prob=stall_prob, progress=progress)
    report = VerifyReport(core=core.name, top=emitted.top, params=params.resolved(),
                          simulator=sim, seed=seed, transactions=prep.count, mismatches=0,
                          cycles=run.cycles, wall_seconds=0.0, build_seconds=run.build_seconds,
                          sim_seconds=run.sim_seconds, verilog=vpath)
    score(core, params, prep, run.actual, report, where=f" (see {run.log})")
    report.wall_seconds = time.perf_counter() - t_start
    return report
