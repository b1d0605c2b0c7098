"""mx-array: the emitted Verilog against ``sim.golden.mx.dot`` per output, on both simulators.

Matrices come in whole (``verify --vectors`` schema); the registry entry tiles them, pads the
edges with zero blocks and reassembles C, so these tests also cover the host-side tiling.
"""

import numpy as np
import pytest

from gen.emit import emit
from gen.params import parse_assignments
from gen.registry import get_core
from gen.verify import verify
from sim.vectors.mx_dot import corner_dot_groups, random_dot_groups


def matrices(a_fmt, b_fmt, m, n, k_blocks, block_size, seed, corners=False):
    """Random A [m, K] and B [K, n]; with ``corners`` A's rows and B's columns are the two sides
    of the mx-dot corner groups, so the diagonal of C holds every designed corner pair."""
    rng = np.random.default_rng(seed)
    if corners:
        g = corner_dot_groups(a_fmt, b_fmt, block_size, k_blocks)
        take = min(m, g["a_scales"].shape[0])
        a = {key: g[key][:take] for key in g}
        b = a
    else:
        a = random_dot_groups(rng, a_fmt, b_fmt, m, k_blocks, block_size)
        b = random_dot_groups(rng, a_fmt, b_fmt, n, k_blocks, block_size)
    return {"a_scales": a["a_scales"], "a_codes": a["a_codes"],
            "b_scales": np.ascontiguousarray(b["b_scales"].T),
            "b_codes": np.ascontiguousarray(b["b_codes"].transpose(1, 0, 2))}


def check(params, sim, work_dir, vectors, **kw):
    core = get_core("mx-array")
    p = parse_assignments(core.params, params)
    r = verify(core, p, sim=sim, vectors=vectors, seed=kw.pop("seed", 3), work_dir=work_dir,
               **kw)
    tm = -(-vectors["a_scales"].shape[0] // p.rows)
    tn = -(-vectors["b_scales"].shape[1] // p.cols)
    assert r.transactions == tm * tn > 0
    assert r.passed, "\n".join(r.summary_lines())
    assert r.outputs["result"].shape == (vectors["a_scales"].shape[0],
                                         vectors["b_scales"].shape[1])
    return r


CASES = [
    # rows, cols, a, b, block_size, M, N, K blocks, accum
    (2, 2, "mxfp4_e2m1", "mxfp4_e2m1", 32, 9, 7, 5, "exact"),
    (4, 4, "mxint8", "mxint8", 8, 13, 10, 4, "exact"),
    (3, 5, "mxfp8_e4m3", "mxfp6_e2m3", 8, 8, 11, 6, "fp32"),
]
IDS = [f"{r}x{c}-{a}-{b}-{acc}" for r, c, a, b, *_, acc in CASES]


def _random_matrix_cases():
    """Every case on both simulators. In ``make test`` the 4x4 array runs on Verilator and the
    others on both; the 4x4 on Icarus (~30 s) is in ``make test-all``. The 3x5 array
    accumulates in FP32: its 15 exact accumulators made the slowest Verilator build of the suite
    (~65 s), and each PE is the mx-dot datapath that every format pair checks in both modes."""
    for case, case_id in zip(CASES, IDS):
        for sim in ("verilator", "icarus"):
            slow = sim == "icarus" and case[:2] == (4, 4)
            yield pytest.param(*case, sim, id=f"{case_id}-{sim}",
                               marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("rows, cols, a, b, bs, m, n, kb, accum, sim",
                         list(_random_matrix_cases()))
def test_random_matrices(rows, cols, a, b, bs, m, n, kb, accum, sim, work_dir):
    """2x2, 4x4 and a non-square array; M, N not multiples of the array; K over several blocks;
    random idle cycles and backpressure."""
    params = [f"rows={rows}", f"cols={cols}", f"a_format={a}", f"b_format={b}",
              f"block_size={bs}", f"accum={accum}"]
    check(params, sim, work_dir, matrices(a, b, m, n, kb, bs, seed=rows * 10 + cols))


@pytest.mark.parametrize("accum", ["exact", "fp32"])
def test_corner_pairs_on_the_diagonal(accum, work_dir):
    params = ["rows=2", "cols=2", "a_format=mxfp8_e5m2", "b_format=mxint8", "block_size=8",
              f"accum={accum}"]
    vectors = matrices("mxfp8_e5m2", "mxint8", 48, 48, 3, 8, seed=1, corners=True)
    check(params, "verilator", work_dir, vectors)


@pytest.mark.parametrize("fifo", ["generic", "ecp5-ebr"])
def test_single_k_block_and_full_rate(fifo, work_dir):
    """K = 1 block: a new tile every cycle; with no idle or stall, one beat per cycle (with the
    tile results in DP16KD block RAMs too)."""
    params = ["rows=2", "cols=2", "a_format=mxfp4_e2m1", "b_format=mxfp4_e2m1", "block_size=32",
              f"fifo={fifo}"]
    vectors = matrices("mxfp4_e2m1", "mxfp4_e2m1", 40, 60, 1, 32, seed=4)
    r = check(params, "verilator", work_dir, vectors, idle_prob=0.0, stall_prob=0.0)
    core = get_core("mx-array")
    latency = emit(core, parse_assignments(core.params, params)).manifest["latency"]
    assert r.cycles <= r.transactions + latency + 32 + 4, (r.cycles, latency)


#: lanes below block_size: each PE multiplies ``lanes`` element pairs per beat.
LANES_CASES = [
    (2, 2, "mxint8", "mxint8", 32, ("lanes=8", "multipliers=ecp5-dsp"), "verilator"),
    (2, 2, "mxint8", "mxint8", 32, ("lanes=8", "multipliers=ecp5-dsp"), "icarus"),
    (3, 5, "mxfp6_e3m2", "mxfp4_e2m1", 16, ("lanes=4", "accum=fp32"), "verilator"),
    # Exact accumulators shared by the PEs of a row: 4 PEs on one and 1 on another (4 beats,
    # 5 columns), 3 on one (4 beats, 3 columns), 2 per accumulator (2 beats, 4 columns).
    (3, 5, "mxfp6_e3m2", "mxfp4_e2m1", 16, ("lanes=4",), "icarus"),
    (2, 3, "mxfp8_e5m2", "mxint8", 8, ("lanes=2", "adders=ecp5-ccu2c", "fifo=ecp5-ebr"),
     "verilator"),
    (2, 4, "mxfp4_e2m1", "mxfp4_e2m1", 8, ("lanes=4", "muxes=ecp5-pfumx"), "icarus"),
]


@pytest.mark.parametrize("rows, cols, a, b, bs, extra, sim", LANES_CASES,
                         ids=[f"{r}x{c}-{a}-{b}-{'-'.join(e)}-{sim}"
                              for r, c, a, b, _, e, sim in LANES_CASES])
def test_lanes(rows, cols, a, b, bs, extra, sim, work_dir):
    """A K step over several beats, every PE with ``lanes`` multipliers: the same C, with
    random idle beats and backpressure, M and N not multiples of the array."""
    params = [f"rows={rows}", f"cols={cols}", f"a_format={a}", f"b_format={b}",
              f"block_size={bs}", *extra]
    check(params, sim, work_dir, matrices(a, b, 7, 9, 3, bs, seed=rows * 10 + cols))


def test_lanes_full_rate(work_dir):
    """lanes=8 at block 32, K = 2 blocks, no idle or stall: a tile every 8 cycles exactly."""
    params = ["rows=2", "cols=2", "a_format=mxfp4_e2m1", "b_format=mxfp4_e2m1", "lanes=8"]
    vectors = matrices("mxfp4_e2m1", "mxfp4_e2m1", 20, 30, 2, 32, seed=6)
    r = check(params, "verilator", work_dir, vectors, idle_prob=0.0, stall_prob=0.0)
    core = get_core("mx-array")
    latency = emit(core, parse_assignments(core.params, params)).manifest["latency"]
    beats = r.transactions * 2 * 4
    assert beats <= r.cycles <= beats + latency + 32 + 4, (r.cycles, beats, latency)


def test_k_mismatch_is_a_vector_error():
    core = get_core("mx-array")
    p = parse_assignments(core.params, [])
    v = matrices("mxint8", "mxint8", 3, 3, 2, 32, seed=0)
    v["b_scales"] = v["b_scales"][:1]
    v["b_codes"] = v["b_codes"][:1]
    with pytest.raises(ValueError, match="A has 2 K blocks but B has 1"):
        core.check_vectors(p, v)
