"""The MX bench's target checks and its table, on made-up synthesis rows."""

from gen import bench_mx_dot


def _row(core, a, b, fixed, fmax, lut4=1000, dsp=0):
    return {"core": core, "target": "ecp5-85k", "a_format": a, "b_format": b, "fixed": fixed,
            "status": "ok", "error": None, "lut4": lut4, "carry": 10, "ff": 2000, "dsp": dsp,
            "bram": 2, "fmax_median_mhz": fmax, "fmax_seeds_mhz": {"1": fmax},
            "fallback_seeds": []}


def test_array_target_is_for_4x4_and_says_the_rate():
    full = _row("mx-array", "mxint8", "mxint8", ["rows=4", "cols=4", "block_size=32"], 120.0)
    quarter = _row("mx-array", "mxint8", "mxint8",
                   ["rows=4", "cols=4", "block_size=32", "lanes=8", "accum=fp32"], 160.0)
    small = _row("mx-array", "mxint8", "mxint8", ["rows=2", "cols=2", "block_size=32"], 160.0)
    assert bench_mx_dot._checks(full) == {"fmax_floor_mhz": 150.0, "fmax_met": False,
                                          "block_pairs_per_pe_per_cycle": 1.0}
    assert bench_mx_dot._checks(quarter) == {"fmax_floor_mhz": 150.0, "fmax_met": True,
                                             "block_pairs_per_pe_per_cycle": 0.25}
    assert bench_mx_dot._checks(small) == {}
    quarter["checks"] = bench_mx_dot._checks(quarter)
    assert "| mx-array rows=4 cols=4 lanes=8 accum=fp32 |" in bench_mx_dot.markdown([quarter])


def test_headline_pairs_check_fmax_and_the_anchor_lut4():
    fp4 = _row("mx-dot", "mxfp4_e2m1", "mxfp4_e2m1", ["block_size=32"], 207.9, lut4=3567)
    c = bench_mx_dot._checks(fp4)
    assert c["fmax_floor_mhz"] == 200.0 and c["fmax_met"]
    assert c["lut4_ceiling"] == 3586 and c["lut4_met"]
    other = _row("mx-dot", "mxfp8_e5m2", "mxint8", ["block_size=32"], 149.9)
    assert bench_mx_dot._checks(other) == {"fmax_floor_mhz": 150.0, "fmax_met": False}


def test_format_set_rows_are_measured_not_checked():
    row = _row("mx-dot", "mxfp8", "mxfp8", ["block_size=32"], 140.0, lut4=9000)
    assert bench_mx_dot._checks(row) == {}
    row["checks"] = {}
    assert "| mx-dot | ecp5-85k | mxfp8 x mxfp8 |" in bench_mx_dot.markdown([row])
