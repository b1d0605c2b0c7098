"""``make bench`` section for ``bcnn-conv``: separable (BCNNw/SF) against full 3x3 binary kernels
at the same layer shape and parallelism.

For each kernel kind: cycles per layer from a Verilator run of one image with no idle input and
no backpressure (weight and threshold loading included, and without it), area / DSP / EBR and
Fmax (median of the nextpnr seeds) on ECP5-85F for the CIFAR-10-shaped layer and on iCE40 UP5K for
a small one, and the weight-memory bits (the model's 9 vs 6 / 5 bits per kernel, and what the
hardware's memory holds). The ratios sit next to the paper's 31.3 % execution-time and 17 %
memory reductions (Lin et al., CVPR-W 2017, over Zhao et al., FPGA 2017). Writes ``bcnn.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sim.golden import bcnn as golden

from .cores.bcnn_conv import PIXEL
from .params import parse_assignments
from .registry import get_core
from .sweep import run_sweep, synth_fields
from .verify import verify

#: The CIFAR-10-shaped layer of issue 5 (BinaryNet's second conv layer) and its parallelism.
CIFAR = ["width=32", "height=32", "c_in=128", "c_out=128", "word=32", "out_par=8", "pad=0"]
#: A configuration small enough for the UP5K (5,280 LUT4, 30 EBR).
SMALL = ["width=16", "height=16", "c_in=32", "c_out=32", "word=16", "out_par=2", "pad=0"]
KERNELS = ("full", "separable")
#: The paper's headline reductions of BCNNw/SF over the BCNN accelerator (ALGORITHMS.md §5.4).
PAPER = {"time_reduction": 0.313, "memory_reduction": 0.17}
FREQ_MHZ = 150.0


def _params(fixed: list[str], kernel: str):
    core = get_core("bcnn-conv")
    return core, parse_assignments(core.params, [*fixed, f"kernel={kernel}"])


def bench_cycles(work_dir: Path, fixed: list[str]) -> list[dict]:
    """Cycles per layer from simulation, both kernel kinds, one image."""
    rows = []
    for kernel in KERNELS:
        core, p = _params(fixed, kernel)
        stim = core.stimulus(p, np.random.default_rng(1), 1)
        vectors = {**stim, "x": stim["x"][0]}
        r = verify(core, p, sim="verilator", vectors=vectors, seed=1, work_dir=work_dir,
                   idle_prob=0.0, stall_prob=0.0)
        # The manifest verify wrote beside the Verilog (no second elaboration).
        details = json.loads((r.verilog.parent / "manifest.json").read_text())["details"]
        kinds = core.to_beats(p, vectors)["kind"]
        load_beats = int((kinds != PIXEL).sum())         # weight and threshold beats
        rows.append({"section": "cycles", "kernel": kernel, "params": p.as_dict(),
                     "passed": r.passed, "cycles_with_load": r.cycles,
                     "load_beats": load_beats,
                     "cycles_per_image_model": details["cycles_per_image"],
                     "weight_bits_model": golden.weight_bits(p.c_out, p.c_in, kernel,
                                                             canonical=False),
                     "weight_bits_model_canonical": golden.weight_bits(p.c_out, p.c_in, kernel),
                     "weight_memory_bits": details["weight_memory_bits"]})
        print(f"cycles bcnn-conv {kernel:<9} {r.cycles:>8,} per image incl. {load_beats:,} "
              f"load beats ({details['cycles_per_image']:,} compute) "
              f"{'PASS' if r.passed else 'FAIL'}", flush=True)
    return rows


def bench_synth(out: Path, seeds: int) -> list[dict]:
    rows = []
    for target, fixed in (("ecp5-85k", CIFAR), ("ice40-up5k", SMALL)):
        points = run_sweep("bcnn-conv", {"kernel": list(KERNELS)}, target, fixed=fixed,
                           seeds=seeds, freq_mhz=FREQ_MHZ,
                           out_dir=out / "sweeps" / f"bcnn-conv-{target}",
                           work_dir=Path("build/synth"), cache_dir=Path("build/synth_cache"),
                           workers=1, progress=False)
        for point in points:
            kernel = next(a.split("=", 1)[1] for a in point["assignments"]
                          if a.startswith("kernel="))
            row = {"section": "synth", "target": target, "kernel": kernel,
                   **synth_fields(point)}
            rows.append(row)
            print(f"synth bcnn-conv {target:<10} {kernel:<9} {row['status']:<6} LUT4 "
                  f"{row['lut4']}  FF {row['ff']}  DSP {row['dsp']}  EBR {row['bram']}  "
                  f"Fmax {row['fmax_median_mhz']} MHz", flush=True)
    return rows


def _ratio(rows: list[dict], key: str) -> float | None:
    by = {r["kernel"]: r.get(key) for r in rows}
    if by.get("full") and by.get("separable") is not None:
        return by["separable"] / by["full"]
    return None


def comparison(cycles: list[dict], synth: list[dict]) -> dict:
    """Separable / full ratios, and the paper's reductions for reference."""
    out = {"paper": PAPER,
           "time_ratio_with_load": _ratio(cycles, "cycles_with_load"),
           "time_ratio_compute": _ratio(cycles, "cycles_per_image_model"),
           "weight_bits_ratio": _ratio(cycles, "weight_bits_model"),
           "weight_bits_ratio_canonical": _ratio(cycles, "weight_bits_model_canonical")}
    for target in ("ecp5-85k", "ice40-up5k"):
        rows = [r for r in synth if r["target"] == target]
        for key in ("lut4", "ff", "bram", "fmax_median_mhz"):
            out[f"{target}_{key}_ratio"] = _ratio(rows, key)
    return out


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.1f}" if isinstance(v, float) else f"{v:,}"


def _reduction(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{(1 - ratio) * 100:.1f} %"


def markdown(cycles: list[dict], synth: list[dict], cmp: dict) -> str:
    lines = ["| kernel | cycles / image (incl. load) | load beats | weight bits (model) | "
             "weight memory bits (hw) |", "|---|---|---|---|---|"]
    for r in cycles:
        lines.append(f"| {r['kernel']} | {_fmt(r['cycles_with_load'])} | {_fmt(r['load_beats'])} "
                     f"| {_fmt(r['weight_bits_model'])} | {_fmt(r['weight_memory_bits'])} |")
    lines += ["", "| target | kernel | LUT4 | FF | DSP | EBR | Fmax MHz (median) |",
              "|---|---|---|---|---|---|---|"]
    for r in synth:
        lines.append(f"| {r['target']} | {r['kernel']} | {_fmt(r['lut4'])} | {_fmt(r['ff'])} | "
                     f"{_fmt(r['dsp'])} | {_fmt(r['bram'])} | {_fmt(r['fmax_median_mhz'])} |")
    lines += ["", "| reduction, separable vs full | ours | paper |", "|---|---|---|",
              f"| execution time (cycles per layer, incl. weight load) | "
              f"{_reduction(cmp['time_ratio_with_load'])} | 31.3 % |",
              f"| weight memory bits (6 / 5 bits per kernel vs 9) | "
              f"{_reduction(cmp['weight_bits_ratio'])} / "
              f"{_reduction(cmp['weight_bits_ratio_canonical'])} | 17 % (accelerator memory) |",
              f"| EBR blocks, ECP5-85F | {_reduction(cmp['ecp5-85k_bram_ratio'])} | |",
              f"| LUT4, ECP5-85F | {_reduction(cmp['ecp5-85k_lut4_ratio'])} | |"]
    return "\n".join(lines) + "\n"


def run(out: Path, work_dir: Path, *, seeds: int) -> dict:
    cycles = bench_cycles(work_dir, CIFAR)
    synth = bench_synth(out, seeds)
    cmp = comparison(cycles, synth)
    (out / "bcnn.md").write_text(markdown(cycles, synth, cmp))
    print(f"wrote {out / 'bcnn.md'}")
    return {"results": cycles + synth, "comparison": cmp}
