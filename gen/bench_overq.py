"""``make bench`` section for OverQ: ``overq-array`` against the baseline ``int-array``.

* **Area and Fmax** on ECP5-85F (median of the nextpnr seeds) of both arrays at the same R x C,
  b and weight width (8x8 and 16x16, b = 4, weights 4 and 8 bits), and of ``overq-encoder``
  alone, so the per-PE overhead can be separated from the encoder's:
  ``(LUT4(overq-array) - LUT4(encoder) - LUT4(int-array)) / LUT4(int-array)``, the same for FF.
  What it includes besides the PE addition: the wider input register (3b-bit fine activations)
  and the wider result FIFO (b or 2b more bits per column).
* **Outlier coverage** (golden model) against the cascade depth D = 1..4 and the zero fraction,
  for tiles of 8 and 16 rows, b = 4, heavy-tailed post-ReLU-like data (Student-t, 3 degrees of
  freedom) with the step at the 95th percentile of the non-zero values (5 % of them outliers).
* **Error reduction** against plain b-bit clipping: MSE and QSNR on the same data, with and
  without precision overwrite.

Writes ``overq.md`` beside ``overq.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.golden import overq as golden

from .sweep import run_sweep, synth_fields

BITS = 4
SIZES = (8, 16)
WEIGHT_BITS = (4, 8)
CASCADE = 2
CASCADES = (1, 2, 3, 4)
ZERO_FRACTIONS = (0.3, 0.5, 0.7, 0.8, 0.9)
TAIL = 3.0
TILES = 20_000
FREQ_MHZ = 150.0
TARGET = "ecp5-85k"


def _data(rows: int, zero_fraction: float, seed: int = 1) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(seed)
    a = golden.post_relu(rng, (TILES, rows), zero_fraction=zero_fraction, tail=TAIL)
    step = float(np.quantile(a[a > 0], 0.95)) / ((1 << BITS) - 1)
    return a, step


def bench_statistics() -> list[dict]:
    """Coverage and error reduction vs clipping from the golden model (seconds)."""
    rows = []
    for tile in SIZES:
        for z in ZERO_FRACTIONS:
            a, step = _data(tile, z)
            for d in CASCADES:
                for prec in (False, True):
                    e = golden.quant_error(a, step, BITS, d, prec)
                    rows.append({"section": "statistics", "rows": tile, "zero_fraction": z,
                                 "cascade": d, "precision": prec, "bits": BITS, "tail": TAIL,
                                 "tiles": TILES, **e,
                                 "mse_reduction": 1 - e["mse_overq"] / e["mse_clip"],
                                 "qsnr_gain_db": e["qsnr_overq"] - e["qsnr_clip"]})
            plain = [r for r in rows if r["rows"] == tile and r["zero_fraction"] == z
                     and not r["precision"]]
            print(f"overq R={tile:<2} zeros {z:.1f}: coverage D=1..4 "
                  + " ".join(f"{r['coverage']:.3f}" for r in plain)
                  + f"; MSE vs clipping -{plain[-1]['mse_reduction'] * 100:.0f} % at D=4",
                  flush=True)
    return rows


def _points(out: Path, core: str, grid: dict, fixed: list[str], seeds: int, tag: str
            ) -> list[dict]:
    return run_sweep(core, grid, TARGET, fixed=fixed, seeds=seeds, freq_mhz=FREQ_MHZ,
                     out_dir=out / "sweeps" / f"{core}-{tag}-{TARGET}",
                     work_dir=Path("build/synth"), cache_dir=Path("build/synth_cache"),
                     workers=1, progress=False)


def _value(point: dict, key: str) -> int:
    return int(next(a.split("=", 1)[1] for a in point["assignments"] if a.startswith(key + "=")))


def bench_synth(out: Path, seeds: int) -> list[dict]:
    rows = []
    grid = {"weight_bits": [str(w) for w in WEIGHT_BITS]}
    for size in SIZES:
        shape = [f"rows={size}", f"cols={size}", f"bits={BITS}"]
        for core, fixed in (("int-array", shape),
                            ("overq-array", [*shape, f"cascade={CASCADE}"])):
            for point in _points(out, core, grid, fixed, seeds, f"{size}x{size}"):
                rows.append({"section": "synth", "core": core, "rows": size, "cols": size,
                             "weight_bits": _value(point, "weight_bits"),
                             **synth_fields(point)})
    enc = _points(out, "overq-encoder", {"rows": [str(s) for s in SIZES]},
                  [f"bits={BITS}", f"cascade={CASCADE}"], seeds, "tile")
    for point in enc:
        rows.append({"section": "synth", "core": "overq-encoder", "rows": _value(point, "rows"),
                     "cols": None, "weight_bits": None, **synth_fields(point)})
    for r in rows:
        print(f"synth {r['core']:<13} {r['rows']}x{r['cols'] or '-'} w{r['weight_bits'] or '-'} "
              f"{r['status']:<6} LUT4 {r['lut4']}  FF {r['ff']}  DSP {r['dsp']}  "
              f"Fmax {r['fmax_median_mhz']} MHz", flush=True)
    return rows


def _logic(row: dict) -> int | None:
    """LUT4 plus the two LUT4s of every CCU2C carry cell: the PE adders are carry chains."""
    if row["lut4"] is None or row["carry"] is None:
        return None
    return row["lut4"] + 2 * row["carry"]


def overhead(synth: list[dict]) -> list[dict]:
    """Per-PE area overhead of the OverQ array over the baseline, the encoder taken out."""
    by = {(r["core"], r["rows"], r["weight_bits"]): r for r in synth}
    out = []
    for size in SIZES:
        enc = by.get(("overq-encoder", size, None))
        for wb in WEIGHT_BITS:
            base, oq = by.get(("int-array", size, wb)), by.get(("overq-array", size, wb))
            if not (base and oq and enc) or any(r["status"] != "ok" for r in (base, oq, enc)):
                continue
            row = {"rows": size, "cols": size, "weight_bits": wb, "pes": size * size}
            for key, get in (("lut4", lambda r: r["lut4"]), ("logic", _logic),
                             ("ff", lambda r: r["ff"])):
                extra = get(oq) - get(enc) - get(base)
                row[f"{key}_per_pe_base"] = get(base) / (size * size)
                row[f"{key}_per_pe_extra"] = extra / (size * size)
                row[f"{key}_overhead"] = extra / get(base)
            row["fmax_ratio"] = (oq["fmax_median_mhz"] / base["fmax_median_mhz"]
                                 if oq["fmax_median_mhz"] and base["fmax_median_mhz"] else None)
            out.append(row)
    return out


def _fmt(v, digits: int = 1) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}"


def markdown(stats: list[dict], synth: list[dict], over: list[dict]) -> str:
    lines = [f"Area on {TARGET} (b = {BITS}, OverQ cascade {CASCADE}, no precision overwrite, "
             f"LUT multipliers; Yosys cells, harness included):", "",
             "| core | size | weight bits | LUT4 | CCU2C | FF | DSP | Fmax MHz (median) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in synth:
        size = f"{r['rows']}x{r['cols']}" if r["cols"] else f"R={r['rows']}"
        lines.append(f"| {r['core']} | {size} | {r['weight_bits'] or '-'} | {_fmt(r['lut4'])} | "
                     f"{_fmt(r['carry'])} | {_fmt(r['ff'])} | {_fmt(r['dsp'])} | "
                     f"{_fmt(r['fmax_median_mhz'])} |")
    lines += ["", "Per PE, encoder taken out (logic = LUT4 + 2 x CCU2C):", "",
              "| size | weight bits | logic / PE (int) | + OverQ | overhead | LUT4 overhead | "
              "FF / PE (int) | + OverQ | overhead |", "|---|---|---|---|---|---|---|---|---|"]
    for r in over:
        lines.append(f"| {r['rows']}x{r['cols']} | {r['weight_bits']} | "
                     f"{_fmt(r['logic_per_pe_base'])} | {_fmt(r['logic_per_pe_extra'])} | "
                     f"{r['logic_overhead'] * 100:.1f} % | {r['lut4_overhead'] * 100:.1f} % | "
                     f"{_fmt(r['ff_per_pe_base'])} | {_fmt(r['ff_per_pe_extra'])} | "
                     f"{r['ff_overhead'] * 100:.1f} % |")
    lines += ["", f"Outlier coverage (b = {BITS}, Student-t({TAIL:g}) data, step at the 95th "
              f"percentile of non-zeros):", "",
              "| rows | zero fraction | D=1 | D=2 | D=3 | D=4 | MSE vs clip, D=4 | "
              "+ precision |", "|---|---|---|---|---|---|---|---|"]
    for tile in SIZES:
        for z in ZERO_FRACTIONS:
            rs = [r for r in stats if r["rows"] == tile and r["zero_fraction"] == z]
            plain = [r for r in rs if not r["precision"]]
            prec = [r for r in rs if r["precision"]]
            if not plain or not prec:
                continue
            lines.append(f"| {tile} | {z:.1f} | "
                         + " | ".join(f"{r['coverage'] * 100:.1f} %" for r in plain)
                         + f" | -{plain[-1]['mse_reduction'] * 100:.0f} % | "
                         f"-{prec[-1]['mse_reduction'] * 100:.0f} % |")
    return "\n".join(lines) + "\n"


def run(out: Path, work_dir: Path, *, seeds: int, synth: bool = True) -> dict:
    stats = bench_statistics()
    rows = bench_synth(out, seeds) if synth else []
    over = overhead(rows)
    (out / "overq.md").write_text(markdown(stats, rows, over))
    print(f"wrote {out / 'overq.md'}")
    return {"results": stats + rows, "overhead": over}
