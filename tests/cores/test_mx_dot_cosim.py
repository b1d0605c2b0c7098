"""mx-dot: the emitted Verilog against ``sim.golden.mx.dot``, on both simulators.

Every run ends on a transaction (group) count with random idle input cycles and random
backpressure, and must have checked at least the number of groups it asked for. Which accumulation
mode a test checks is in its parameters (``accum=exact`` or ``accum=fp32``, MX_SPEC §11).

``make test`` runs every format pair on Verilator and a spread of pairs on Icarus; ``make
test-all`` adds every pair x both modes x both simulators and the exhaustive FP8/INT8 product
sweeps on Icarus (minutes each).
"""

import dataclasses
import itertools

import numpy as np
import pytest

from gen.emit import emit
from gen.params import parse_assignments
from gen.registry import get_core
from gen.verify import verify
from hdl.formats import MX_FORMATS
from sim.vectors.mx_dot import corner_dot_groups, product_sweep, random_dot_groups

FORMATS = list(MX_FORMATS)
PAIRS = list(itertools.product(FORMATS, FORMATS))
GROUPS = 2_000
#: Pairs Icarus covers in `make test`: every format against itself and two mixed pairs (the
#: other 28 pairs run on Icarus in `make test-all`).
DIAGONAL = [(f, f) for f in FORMATS]
MIXED = [("mxfp8_e5m2", "mxint8"), ("mxfp4_e2m1", "mxfp6_e2m3")]
ICARUS_PAIRS = DIAGONAL + MIXED
#: Exhaustive element-product sweeps: the pairs the issue names (every code pair through a lane).
SWEEPS = [("mxfp4_e2m1", "mxfp4_e2m1"), ("mxfp6_e3m2", "mxfp6_e3m2"),
          ("mxfp6_e2m3", "mxfp6_e2m3"), ("mxfp8_e4m3", "mxfp8_e4m3"),
          ("mxfp8_e5m2", "mxfp8_e5m2"), ("mxint8", "mxint8")]
SMALL_SWEEPS = SWEEPS[:3]


def check(params, sim, work_dir, *, n=GROUPS, vectors=None, **kw):
    core = get_core("mx-dot")
    p = parse_assignments(core.params, params)
    r = verify(core, p, sim=sim, n=n, seed=kw.pop("seed", 5), vectors=vectors,
               work_dir=work_dir, **kw)
    expected = n if vectors is None else vectors["a_scales"].shape[0]
    assert r.transactions >= expected, "fewer groups ran than were asked for"
    assert r.passed, "\n".join(r.summary_lines())
    return r


def pair_params(a, b, *extra):
    return [f"a_format={a}", f"b_format={b}", *extra]


@pytest.mark.parametrize("a, b", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_every_pair_exact_verilator(a, b, work_dir):
    """All 36 pairs: 2,000 random groups of 3 blocks plus every corner kind, accum=exact."""
    check(pair_params(a, b), "verilator", work_dir)


@pytest.mark.parametrize("a, b", ICARUS_PAIRS, ids=[f"{a}-{b}" for a, b in ICARUS_PAIRS])
def test_pairs_exact_icarus(a, b, work_dir):
    check(pair_params(a, b), "icarus", work_dir)


FP32_CASES = [(a, b, "verilator") for a, b in DIAGONAL] + [(a, b, "icarus") for a, b in MIXED]


@pytest.mark.parametrize("a, b, sim", FP32_CASES, ids=[f"{a}-{b}-{s}" for a, b, s in FP32_CASES])
def test_pairs_fp32(a, b, sim, work_dir):
    """accum=fp32: every block sum rounded, ordered FP32 adds (incl. -0, absorption, Inf-Inf)."""
    check(pair_params(a, b, "accum=fp32"), sim, work_dir, n=GROUPS if sim == "verilator" else 500)


@pytest.mark.slow
@pytest.mark.parametrize("accum", ["exact", "fp32"])
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
@pytest.mark.parametrize("a, b", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_every_pair_both_modes_both_simulators(a, b, sim, accum, work_dir):
    check(pair_params(a, b, f"accum={accum}"), sim, work_dir)


@pytest.mark.parametrize("a, b", SWEEPS, ids=[f"{a}-{b}" for a, b in SWEEPS])
def test_every_element_product_verilator(a, b, work_dir):
    """Every code pair (FP8 x FP8, INT8 x INT8: 65,536) alone in a block, lane = index % 32."""
    check(pair_params(a, b), "verilator", work_dir, vectors=product_sweep(a, b, 32))


@pytest.mark.parametrize("a, b", SMALL_SWEEPS, ids=[f"{a}-{b}" for a, b in SMALL_SWEEPS])
def test_every_element_product_icarus(a, b, work_dir):
    check(pair_params(a, b), "icarus", work_dir, vectors=product_sweep(a, b, 32))


@pytest.mark.slow
@pytest.mark.parametrize("a, b", SWEEPS[3:], ids=[f"{a}-{b}" for a, b in SWEEPS[3:]])
def test_every_element_product_icarus_wide(a, b, work_dir):
    check(pair_params(a, b), "icarus", work_dir, vectors=product_sweep(a, b, 32))


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_ecp5_registered_dsp_multipliers(sim, work_dir):
    """multipliers=ecp5-dsp: MULT18X18D instances with their registers, simulated through
    sim/models/MULT18X18D.v; random groups and every corner kind."""
    check(pair_params("mxint8", "mxint8", "multipliers=ecp5-dsp"), sim, work_dir,
          n=GROUPS if sim == "verilator" else 500)


def test_int8_products_in_logic(work_dir):
    """multipliers=lut: INT8 x INT8 as shift-and-add with both operands decoded in logic."""
    check(pair_params("mxint8", "mxint8", "multipliers=lut"), "verilator", work_dir)


def test_ecp5_registered_dsp_every_product(work_dir):
    """Every INT8 code pair through a MULT18X18D lane (65,536)."""
    check(pair_params("mxint8", "mxint8", "multipliers=ecp5-dsp"), "verilator", work_dir,
          vectors=product_sweep("mxint8", "mxint8", 32))


#: multipliers=ecp5-dsp-fp (FP and INT8 x FP products of element magnitudes in MULT18X18D cells,
#: the signs applied in the adder tree): (A, B, extra parameters, simulator). Generic adders (the
#: leaf XOR) and the CCU2C first level, INT8 magnitudes, mixed formats and fp32 accumulation.
DSP_FP_CASES = [("mxfp6_e2m3", "mxfp6_e2m3", ("adders=ecp5-ccu2c",), "verilator"),
                ("mxint8", "mxfp6_e3m2", (), "icarus"),
                ("mxfp4_e2m1", "mxfp6_e2m3", ("accum=fp32",), "verilator")]


@pytest.mark.parametrize("a, b, extra, sim", DSP_FP_CASES,
                         ids=[f"{a}-{b}-{sim}" for a, b, _, sim in DSP_FP_CASES])
def test_ecp5_dsp_fp_multipliers(a, b, extra, sim, work_dir):
    check(pair_params(a, b, "multipliers=ecp5-dsp-fp", *extra), sim, work_dir,
          n=GROUPS if sim == "verilator" else 500)


def test_ecp5_dsp_fp_every_product(work_dir):
    """Every E2M3 x E3M2 code pair (4,096) through a MULT18X18D lane and a CCU2C first level."""
    a, b = "mxfp6_e2m3", "mxfp6_e3m2"
    check(pair_params(a, b, "multipliers=ecp5-dsp-fp", "adders=ecp5-ccu2c"), "verilator",
          work_dir, vectors=product_sweep(a, b, 32))


#: adders=ecp5-ccu2c (the exact accumulator's pieces on ECP5 CCU2C cells, simulated through
#: sim/models/CCU2C.v): (A, B, extra parameters, simulator). `make test` runs one pair per
#: simulator (and groups of one block below); `make test-all` adds the rest.
CCU2C_CASES = [("mxfp4_e2m1", "mxfp4_e2m1", (), "verilator"),
               ("mxfp8_e4m3", "mxint8", (), "icarus")]
CCU2C_SLOW_CASES = [("mxint8", "mxint8", ("multipliers=ecp5-dsp",), "verilator"),
                    ("mxfp8_e5m2", "mxfp6_e2m3", (), "verilator"),
                    ("mxfp4_e2m1", "mxfp4_e2m1", (), "icarus")]


def check_ccu2c(a, b, extra, sim, work_dir):
    """adders=ecp5-ccu2c: random groups and every corner kind (Icarus also starts from X in
    every register the reset does not clear)."""
    check(pair_params(a, b, "adders=ecp5-ccu2c", *extra), sim, work_dir,
          n=GROUPS if sim == "verilator" else 500)


@pytest.mark.parametrize("a, b, extra, sim", CCU2C_CASES,
                         ids=[f"{a}-{b}-{sim}" for a, b, _, sim in CCU2C_CASES])
def test_ecp5_ccu2c_adders(a, b, extra, sim, work_dir):
    check_ccu2c(a, b, extra, sim, work_dir)


@pytest.mark.slow
@pytest.mark.parametrize("a, b, extra, sim", CCU2C_SLOW_CASES,
                         ids=[f"{a}-{b}-{sim}" for a, b, _, sim in CCU2C_SLOW_CASES])
def test_ecp5_ccu2c_adders_more_pairs(a, b, extra, sim, work_dir):
    check_ccu2c(a, b, extra, sim, work_dir)


#: muxes=ecp5-pfumx (the exact accumulator's candidate chain on ECP5 LUT4 / PFUMX slices, three
#: pieces per stage, simulated through sim/models/LUT4.v and PFUMX.v): with and without the
#: CCU2C pieces, on both simulators.
PFUMX_CASES = [("mxfp4_e2m1", "mxfp4_e2m1", ("adders=ecp5-ccu2c",), "verilator"),
               ("mxfp8_e5m2", "mxint8", (), "icarus")]


@pytest.mark.parametrize("a, b, extra, sim", PFUMX_CASES,
                         ids=[f"{a}-{b}-{sim}" for a, b, _, sim in PFUMX_CASES])
def test_ecp5_pfumx_chain(a, b, extra, sim, work_dir):
    check(pair_params(a, b, "muxes=ecp5-pfumx", *extra), sim, work_dir,
          n=GROUPS if sim == "verilator" else 500)


#: fifo=ecp5-ebr (the result FIFO in a DP16KD block RAM read through its output register,
#: simulated through sim/models/DP16KD.v): (A, B, extra parameters, simulator, backpressure).
#: Heavy backpressure holds the block's read pipeline with results in both of its registers.
EBR_CASES = [("mxfp4_e2m1", "mxfp4_e2m1", ("adders=ecp5-ccu2c",), "verilator", 0.2),
             ("mxint8", "mxint8", ("multipliers=ecp5-dsp", "adders=ecp5-ccu2c"), "icarus", 0.2),
             ("mxfp6_e2m3", "mxfp8_e5m2", ("block_size=4",), "verilator", 0.7),
             ("mxfp6_e2m3", "mxfp8_e5m2", ("block_size=4",), "icarus", 0.7)]


@pytest.mark.parametrize("a, b, extra, sim, stall", EBR_CASES,
                         ids=[f"{a}-{b}-{sim}-{stall}" for a, b, _, sim, stall in EBR_CASES])
def test_ecp5_ebr_result_fifo(a, b, extra, sim, stall, work_dir):
    check(pair_params(a, b, "fifo=ecp5-ebr", *extra), sim, work_dir,
          n=GROUPS if sim == "verilator" else 500, stall_prob=stall)


GROUP_LENGTH_CASES = ([(blocks, accum, "generic", "generic") for accum in ("exact", "fp32")
                       for blocks in (1, 2, 17)]
                      + [(1, "exact", "ecp5-ccu2c", "generic"),
                         (1, "exact", "ecp5-ccu2c", "ecp5-pfumx")])


@pytest.mark.parametrize("blocks, accum, adders, muxes", GROUP_LENGTH_CASES,
                         ids=[f"{n}-{acc}-{add}" + ("-pfumx" if mux != "generic" else "")
                              for n, acc, add, mux in GROUP_LENGTH_CASES])
def test_group_lengths(blocks, accum, adders, muxes, work_dir):
    """Groups of 1 block (a result every cycle), 2 and 17 blocks, corners and random, from a
    vectors dict as `verify --vectors` passes it."""
    a, b = "mxfp6_e2m3", "mxint8"
    rng = np.random.default_rng(blocks)
    corner = corner_dot_groups(a, b, 32, blocks)
    rand = random_dot_groups(rng, a, b, 600, blocks, 32)
    vectors = {k: np.concatenate([corner[k], rand[k]]) for k in corner}
    check(pair_params(a, b, f"accum={accum}", f"adders={adders}", f"muxes={muxes}"),
          "verilator", work_dir, vectors=vectors)


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
@pytest.mark.parametrize("params", [
    pair_params("mxfp4_e2m1", "mxfp8_e5m2", "block_size=2"),
    pair_params("mxint8", "mxfp6_e3m2", "block_size=64"),
    pair_params("mxfp8_e4m3", "mxfp4_e2m1", "block_size=8", "accum=fp32"),
], ids=["b2", "b64", "b8-fp32"])
def test_block_sizes(params, sim, work_dir):
    check(params, sim, work_dir, n=500)


@pytest.mark.parametrize("pipeline", ["0", "3", "100mhz", "50mhz"])
def test_pipeline_placements(pipeline, work_dir):
    """Any register placement computes the same results; latency comes from the manifest."""
    check(pair_params("mxfp8_e4m3", "mxfp8_e5m2", f"pipeline={pipeline}"), "verilator", work_dir,
          n=500)


@pytest.mark.parametrize("accum, fifo", [("exact", "generic"), ("fp32", "generic"),
                                         ("exact", "ecp5-ebr")])
def test_full_rate_without_stalls(accum, fifo, work_dir):
    """No idle cycles, no backpressure: one block pair per cycle, groups of one block included
    (with the block-RAM FIFO too, whose read takes a cycle more)."""
    params = pair_params("mxfp4_e2m1", "mxfp4_e2m1", f"accum={accum}", f"fifo={fifo}")
    a, b = "mxfp4_e2m1", "mxfp4_e2m1"
    vectors = random_dot_groups(np.random.default_rng(3), a, b, 3_000, 1, 32)
    r = check(params, "verilator", work_dir, vectors=vectors, idle_prob=0.0, stall_prob=0.0)
    core = get_core("mx-dot")
    latency = emit(core, parse_assignments(core.params, params)).manifest["latency"]
    drain = 32                                   # the testbench's quiet period after the end
    assert r.cycles <= r.transactions + latency + drain + 4, (r.cycles, latency)


#: lanes below block_size (a block pair over block_size/lanes beats, one block-sum register):
#: (A, B, extra parameters, simulator).
LANES_CASES = [
    ("mxint8", "mxint8", ("lanes=8", "multipliers=ecp5-dsp", "adders=ecp5-ccu2c",
                          "fifo=ecp5-ebr"), "verilator"),
    ("mxint8", "mxint8", ("lanes=8", "multipliers=ecp5-dsp", "adders=ecp5-ccu2c",
                          "fifo=ecp5-ebr"), "icarus"),
    ("mxfp4_e2m1", "mxfp4_e2m1", ("lanes=2",), "verilator"),
    ("mxfp8_e5m2", "mxfp6_e2m3", ("lanes=2", "block_size=8", "accum=fp32"), "verilator"),
    ("mxfp8_e5m2", "mxfp6_e2m3", ("lanes=2", "block_size=8", "accum=fp32"), "icarus"),
    ("mxfp6_e3m2", "mxfp8_e4m3", ("lanes=16", "pipeline=0"), "icarus"),
    # accum=fp32: the loop's FP32 adder with 3 register stages (4 beats) and with 1 (2 beats).
    ("mxint8", "mxint8", ("lanes=8", "accum=fp32", "multipliers=ecp5-dsp"), "icarus"),
    ("mxfp4_e2m1", "mxfp8_e4m3", ("lanes=16", "accum=fp32"), "verilator"),
]


@pytest.mark.parametrize("a, b, extra, sim", LANES_CASES,
                         ids=[f"{a}-{b}-{'-'.join(e)}-{sim}" for a, b, e, sim in LANES_CASES])
def test_lanes(a, b, extra, sim, work_dir):
    """Fewer lanes than block_size: the same results as a block per beat, with random idle
    beats and backpressure inside and between a block's beats."""
    check(pair_params(a, b, *extra), sim, work_dir, n=GROUPS if sim == "verilator" else 500)


@pytest.mark.parametrize("blocks", [1, 17])
def test_lanes_group_lengths_at_full_rate(blocks, work_dir):
    """lanes=8 at block 32, no idle or stall: one beat per cycle, so one block pair every 4
    cycles exactly (groups of one block too, a result every 4 cycles)."""
    a, b = "mxfp6_e2m3", "mxint8"
    params = pair_params(a, b, "lanes=8")
    vectors = random_dot_groups(np.random.default_rng(blocks), a, b, 1_200 // blocks, blocks, 32)
    r = check(params, "verilator", work_dir, vectors=vectors, idle_prob=0.0, stall_prob=0.0)
    core = get_core("mx-dot")
    latency = emit(core, parse_assignments(core.params, params)).manifest["latency"]
    beats = vectors["a_scales"].size * 4
    assert beats <= r.cycles <= beats + latency + 32 + 4, (r.cycles, beats, latency)


def test_exact_core_fails_the_fp32_golden(work_dir):
    """The scoreboard notices a different accumulation: an exact core checked against fp32."""
    core = get_core("mx-dot")
    exact = parse_assignments(core.params, pair_params("mxfp8_e4m3", "mxfp8_e4m3"))
    fp32 = parse_assignments(core.params, pair_params("mxfp8_e4m3", "mxfp8_e4m3", "accum=fp32"))
    mixed = dataclasses.replace(core, build=lambda p: core.build(exact),
                                top_name=lambda p: core.top_name(exact))
    r = verify(mixed, fp32, sim="verilator", n=300, seed=5, work_dir=work_dir)
    assert r.transactions >= 300
    assert not r.passed and r.mismatches > 0
    assert r.first_mismatch is not None
