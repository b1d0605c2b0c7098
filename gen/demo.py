"""``make demo``: the main job on defaults — generate, verify, synthesize one MX core.

``mx-quantize`` for MXFP8 E4M3 is generated, verified on Verilator against the golden model
(10,000 random blocks plus the corner cases), and synthesized for ECP5-25k with Yosys + nextpnr
(YoWASP). One summary: Verilog path, vectors checked, mismatches, LUT4 / FF / DSP / Fmax, wall
times. Exits non-zero if any vector mismatched, none ran, or synthesis failed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .emit import emit
from .params import parse_assignments
from .registry import get_core
from .verify import verify

DEMO_CORE = "mx-quantize"
DEMO_PARAMS = ["format=mxfp8_e4m3"]
DEMO_VECTORS = 10_000
DEMO_TARGET = "ecp5-25k"
DEMO_SEEDS = 1


def _say(msg: str) -> None:
    print(f"  {msg}", flush=True)


def main() -> int:
    from boards.synth import SynthError, synthesize

    t0 = time.perf_counter()
    core = get_core(DEMO_CORE)
    params = parse_assignments(core.params, DEMO_PARAMS)
    print(f"narrowgen demo: {core.name} {' '.join(DEMO_PARAMS)} -> Verilog -> Verilator "
          f"-> golden model ({DEMO_VECTORS} random blocks + corner cases) -> {DEMO_TARGET}",
          flush=True)
    report = verify(core, params, sim="verilator", n=DEMO_VECTORS, seed=1,
                    work_dir=Path("build"), progress=_say)
    t_synth = time.perf_counter()
    emitted = emit(core, params)
    synth, synth_error = None, None
    try:
        synth = synthesize(emitted.component, emitted.top, DEMO_TARGET, seeds=DEMO_SEEDS,
                           work_dir=Path("build/synth") / f"{emitted.top}-{DEMO_TARGET}",
                           cache_dir=Path("build/synth_cache"), progress=_say,
                           meta={"core": core.name, "params": params.resolved()})
    except SynthError as exc:
        synth_error = str(exc).splitlines()[0]
    t_synth = time.perf_counter() - t_synth

    print()
    print("summary")
    for line in report.summary_lines()[:-1]:
        print(f"  {line}")
    if synth is not None:
        cells = synth["cells"]
        fmax = synth["fmax_mhz"]
        print(f"  synthesis   {DEMO_TARGET} ({synth['device']}), harness {synth['harness']}: "
              f"{cells['lut4']:,} LUT4, {cells['ff']:,} FF, {cells['dsp']} DSP, "
              f"{cells['bram']} BRAM; Fmax {fmax['median']:.1f} MHz "
              f"(seed{'s' if DEMO_SEEDS > 1 else ''} {', '.join(map(str, fmax['per_seed']))}); "
              f"{t_synth:.1f} s")
    else:
        print(f"  synthesis   FAILED: {synth_error}")
    ok = report.passed and synth is not None
    print(f"  total       {time.perf_counter() - t0:.1f} s")
    print(f"  {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
