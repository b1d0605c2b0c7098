"""``make bench``: measured numbers, written as JSON reports under ``build/bench/``.

Speed and size targets are checked here, never by timed tests. Current reports:

* ``golden.json``: golden-model throughput (values/s) of quantize and dequantize per format;
* ``verify.json``: co-simulation throughput (vectors/s, cycles/s) per core, format and simulator,
  with build time (cold build when the cache is empty) and the pass/fail of each run;
* ``mx_dot.json`` / ``mx_dot.md``: ``mx-dot`` LUT4 / CCU2C / FF / DSP / BRAM and Fmax (median of
  the seeds) on ECP5-85F for every format pair and format set, MXFP4 and MXINT8 also on iCE40
  UP5K (also with ``lanes=8 accum=fp32``, which fits), ``mx-array`` 4x4 at full rate and at
  ``lanes=8`` with FP32 or shared exact accumulators (and 2x2 MXINT8 with its products in DSPs)
  on ECP5-85F, each checked against the
  MX-for-FPGA anchor and the issue-4 targets, and mx-dot verification throughput in block
  pairs/s (``gen/bench_mx_dot.py``);
* ``bcnn.json`` / ``bcnn.md``: ``bcnn-conv`` separable vs full kernels at the CIFAR-shaped layer:
  cycles per image from Verilator, LUT4 / FF / DSP / EBR and Fmax on ECP5-85F (and a small layer
  on iCE40 UP5K), weight bits, and the ratios next to the paper's (``gen/bench_bcnn.py``);
* ``overq.json`` / ``overq.md``: ``overq-array`` against the baseline ``int-array`` (8x8 and
  16x16, b = 4, weights 4 and 8 bits) and ``overq-encoder`` on ECP5-85F with the per-PE overhead,
  and the golden model's outlier coverage vs cascade depth and zero fraction and its error
  reduction vs clipping (``gen/bench_overq.py``).

Place and route of the 36 mx-dot points on the 85F takes hours on 2 cores; every tool step is
cached by content, so an interrupted bench resumes where it stopped. ``--sections`` and
``--mx-pairs headline`` run a subset.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from hdl.formats import MX_FORMATS
from sim.golden import mx as golden_mx

from .emit import tool_versions
from .params import parse_assignments
from .registry import get_core
from .verify import verify


def _host() -> dict:
    return {"python": platform.python_version(), "machine": platform.machine(),
            "tools": tool_versions()}


def bench_golden(n_values: int = 1 << 20) -> dict:
    rng = np.random.default_rng(0)
    x = (rng.standard_t(3, n_values) * 10).astype(np.float32)
    rows = []
    for fmt in MX_FORMATS:
        t0 = time.perf_counter()
        q = golden_mx.quantize(x, fmt)
        t1 = time.perf_counter()
        golden_mx.dequantize(q)
        t2 = time.perf_counter()
        rows.append({"format": fmt, "values": n_values,
                     "quantize_values_per_s": round(n_values / (t1 - t0)),
                     "dequantize_values_per_s": round(n_values / (t2 - t1))})
        print(f"golden {fmt:<11} quantize {rows[-1]['quantize_values_per_s']:>12,} values/s  "
              f"dequantize {rows[-1]['dequantize_values_per_s']:>12,} values/s", flush=True)
    return {"host": _host(), "results": rows}


def bench_verify(work_dir: Path, n: dict[str, int]) -> dict:
    rows = []
    for core_name in ("mx-quantize", "mx-dequantize"):
        core = get_core(core_name)
        for fmt in MX_FORMATS:
            params = parse_assignments(core.params, [f"format={fmt}"])
            for sim, count in n.items():
                r = verify(core, params, sim=sim, n=count, seed=11, work_dir=work_dir)
                rows.append({
                    "core": core_name, "format": fmt, "simulator": sim,
                    "vectors": r.transactions, "mismatches": r.mismatches, "passed": r.passed,
                    "cycles": r.cycles, "build_s": round(r.build_seconds, 2),
                    "sim_s": round(r.sim_seconds, 2),
                    "vectors_per_s": round(r.transactions / r.sim_seconds),
                    "cycles_per_s": round(r.cycles / r.sim_seconds),
                })
                print(f"verify {core_name:<13} {fmt:<11} {sim:<9} {r.transactions:>6} vectors "
                      f"{'PASS' if r.passed else 'FAIL'}  {rows[-1]['vectors_per_s']:>7,} "
                      f"vectors/s  build {r.build_seconds:5.1f} s", flush=True)
    return {"host": _host(), "results": rows}


#: Report sections, in the order they run.
SECTIONS = ("golden", "verify", "mx-dot", "bcnn", "overq")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gen.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/bench", help="report directory")
    ap.add_argument("--work-dir", default="build", help="simulator build cache")
    ap.add_argument("--verilator-vectors", type=int, default=20_000)
    ap.add_argument("--icarus-vectors", type=int, default=4_000)
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma list of {', '.join(SECTIONS)} (default: all)")
    ap.add_argument("--mx-pairs", default="all",
                    help="mx-dot format pairs: all (36, and the 3 format sets), headline (the "
                         "four anchor pairs) or a:b,c:d")
    ap.add_argument("--mx-seeds", type=int, default=3,
                    help="nextpnr seeds per point (mx-dot, bcnn and overq sections)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sections = {x.strip() for x in args.sections.split(",") if x.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        ap.error(f"unknown --sections {', '.join(sorted(unknown))}; allowed: "
                 f"{', '.join(SECTIONS)}")
    n = {"verilator": args.verilator_vectors, "icarus": args.icarus_vectors}
    reports = {}
    if "golden" in sections:
        reports["golden.json"] = bench_golden()
    if "verify" in sections:
        reports["verify.json"] = bench_verify(Path(args.work_dir), n)
    if "mx-dot" in sections:
        from .bench_mx_dot import run as bench_mx_dot
        mx = bench_mx_dot(out, Path(args.work_dir), pairs=args.mx_pairs, seeds=args.mx_seeds,
                          n={"verilator": 2_000, "icarus": 500})
        reports["mx_dot.json"] = {"host": _host(), "results": mx["synth"] + mx["verify"]}
    if "bcnn" in sections:
        from .bench_bcnn import run as bench_bcnn
        reports["bcnn.json"] = {"host": _host(), **bench_bcnn(out, Path(args.work_dir),
                                                               seeds=args.mx_seeds)}
    if "overq" in sections:
        from .bench_overq import run as bench_overq
        reports["overq.json"] = {"host": _host(), **bench_overq(out, Path(args.work_dir),
                                                                 seeds=args.mx_seeds)}
    failed = 0
    for name, rep in reports.items():
        (out / name).write_text(json.dumps(rep, indent=2) + "\n")
        failed += sum(1 for r in rep["results"] if r.get("passed") is False)
        print(f"wrote {out / name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
