"""mx-quantize and mx-dequantize: the emitted Verilog against the golden model, both simulators.

Every run ends on a transaction count, with random idle input cycles and random backpressure,
and must have checked at least the number of vectors it asked for.
"""

import dataclasses

import pytest

from gen.emit import emit
from gen.params import parse_assignments
from gen.registry import get_core
from gen.verify import verify
from hdl.formats import MX_FORMATS

FORMATS = list(MX_FORMATS)
CORES = ["mx-quantize", "mx-dequantize"]
VECTORS = {"verilator": 10_000, "icarus": 2_000}


def check(core_name, params, sim, n, work_dir, **kw):
    core = get_core(core_name)
    p = parse_assignments(core.params, params)
    r = verify(core, p, sim=sim, n=n, seed=kw.pop("seed", 7), work_dir=work_dir, **kw)
    assert r.transactions >= n, "fewer vectors ran than were asked for"
    assert r.passed, "\n".join(r.summary_lines())
    return r


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("core", CORES)
def test_random_blocks_and_corners(core, fmt, sim, work_dir):
    """≥ 10,000 random blocks per format on Verilator, ≥ 2,000 on Icarus, plus all §11 corners."""
    check(core, [f"format={fmt}"], sim, VECTORS[sim], work_dir)


@pytest.mark.parametrize("fmt", FORMATS)
def test_quantize_round_to_nearest_away(fmt, work_dir):
    check("mx-quantize", [f"format={fmt}", "rounding=nearest"], "verilator", 3_000, work_dir)


@pytest.mark.parametrize("core, params", [
    ("mx-quantize", ["format=mxfp8_e4m3", "lanes=8"]),
    ("mx-quantize", ["format=mxint8", "block_size=2", "lanes=1"]),
    ("mx-quantize", ["format=mxfp4_e2m1", "block_size=64", "lanes=16"]),
    ("mx-dequantize", ["format=mxfp8_e5m2", "lanes=8"]),
    ("mx-dequantize", ["format=mxfp6_e2m3", "block_size=2", "lanes=1"]),
    ("mx-dequantize", ["format=mxint8", "block_size=64", "lanes=16"]),
])
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_block_sizes_and_lanes(core, params, sim, work_dir):
    check(core, params, sim, 1_000, work_dir)


@pytest.mark.parametrize("core, params", [
    ("mx-quantize", ["format=mxfp8_e4m3", "lanes=8"]),
    ("mx-dequantize", ["format=mxfp8_e5m2", "lanes=8"]),
])
def test_full_throughput_without_stalls(core, params, work_dir):
    """With no idle cycles and no backpressure the core takes one beat per cycle."""
    r = check(core, params, "verilator", 2_000, work_dir, idle_prob=0.0, stall_prob=0.0)
    c = get_core(core)
    manifest = emit(c, parse_assignments(c.params, params)).manifest
    p = manifest["params"]
    beats_per_block = p["block_size"] // p["lanes"]
    in_beats = r.transactions * (beats_per_block if core == "mx-quantize" else 1)
    out_beats = r.transactions * (1 if core == "mx-quantize" else beats_per_block)
    ideal = max(in_beats, out_beats) + manifest["latency"]
    drain = 32                                   # the testbench's quiet period after the end
    assert r.cycles <= ideal + drain + 4, (r.cycles, ideal)


def test_broken_rounding_is_caught(work_dir):
    """A core whose rounding was changed (RNE → ties away) must fail verification."""
    core = get_core("mx-quantize")
    good = parse_assignments(core.params, ["format=mxfp8_e4m3"])
    wrong = parse_assignments(core.params, ["format=mxfp8_e4m3", "rounding=nearest"])
    broken = dataclasses.replace(core, build=lambda p: core.build(wrong),
                                 top_name=lambda p: core.top_name(wrong))
    r = verify(broken, good, sim="verilator", n=500, seed=7, work_dir=work_dir)
    assert r.transactions > 0
    assert not r.passed and r.mismatches > 0
    assert r.first_mismatch is not None
