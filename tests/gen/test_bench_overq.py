"""The OverQ bench's per-PE overhead arithmetic and its report, on made-up synthesis rows."""

import pytest

from gen import bench_overq


def _row(core, rows, wb, lut4, carry, ff, fmax=100.0):
    return {"section": "synth", "core": core, "rows": rows, "cols": rows if wb else None,
            "weight_bits": wb, "status": "ok", "lut4": lut4, "carry": carry, "ff": ff, "dsp": 0,
            "fmax_median_mhz": fmax}


def test_overhead_takes_the_encoder_out():
    synth = [_row("int-array", 8, 4, 640, 320, 1280),
             _row("overq-array", 8, 4, 1000, 400, 1800, fmax=90.0),
             _row("overq-encoder", 8, None, 100, 16, 200)]
    (r,) = bench_overq.overhead(synth)
    # LUT4: (1000 - 100 - 640) / 64 per PE over 640 / 64
    assert r["lut4_per_pe_base"] == 10 and r["lut4_per_pe_extra"] == 260 / 64
    assert r["lut4_overhead"] == pytest.approx(260 / 640)
    # logic = LUT4 + 2 x CCU2C: int 1280, overq 1800, encoder 132
    assert r["logic_overhead"] == pytest.approx((1800 - 132 - 1280) / 1280)
    assert r["ff_overhead"] == pytest.approx((1800 - 200 - 1280) / 1280)
    assert r["fmax_ratio"] == pytest.approx(0.9)
    text = bench_overq.markdown([], synth, [r])
    assert "| 8x8 | 4 | 20.0 | 6.1 | 30.3 % | 40.6 % |" in text


def test_overhead_skips_a_failed_point():
    synth = [_row("int-array", 8, 4, 640, 320, 1280), _row("overq-array", 8, 4, 1000, 400, 1800),
             {**_row("overq-encoder", 8, None, 100, 16, 200), "status": "error"}]
    assert bench_overq.overhead(synth) == []
