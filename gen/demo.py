"""``make demo``: generate ``mx-quantize`` for MXFP8 E4M3 on defaults and verify it on Verilator.

Prints one summary: the Verilog path, vectors checked, mismatches and wall time. Exits non-zero
if any vector mismatched or none ran.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .params import parse_assignments
from .registry import get_core
from .verify import verify

DEMO_CORE = "mx-quantize"
DEMO_PARAMS = ["format=mxfp8_e4m3"]
DEMO_VECTORS = 10_000


def main() -> int:
    t0 = time.perf_counter()
    core = get_core(DEMO_CORE)
    params = parse_assignments(core.params, DEMO_PARAMS)
    print(f"narrowgen demo: {core.name} {' '.join(DEMO_PARAMS)} -> Verilog -> Verilator "
          f"-> golden model ({DEMO_VECTORS} random blocks + corner cases)", flush=True)
    report = verify(core, params, sim="verilator", n=DEMO_VECTORS, seed=1,
                    work_dir=Path("build"), progress=lambda msg: print(f"  {msg}", flush=True))
    print()
    print("summary")
    for line in report.summary_lines():
        print(f"  {line}")
    print(f"  total       {time.perf_counter() - t0:.1f} s")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
