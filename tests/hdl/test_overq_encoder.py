"""OverQ encoder generator: parameter errors, latency, and the chain segmentation (every
``slots_per_stage``) against the golden model in Amaranth's simulator (the shipped default is
co-simulated in tests/cores/test_overq_encoder_cosim.py)."""

import gc
import warnings

import numpy as np
import pytest
from amaranth._unused import UnusedMustUse
from amaranth.sim import Simulator

from gen.cores import overq_encoder as entry
from hdl.overq import OverQEncode, OverQEncoder
from hdl.overq import encoder as hw
from sim.golden import overq

pytestmark = pytest.mark.filterwarnings("ignore::amaranth._unused.UnusedMustUse")


@pytest.fixture(autouse=True, scope="module")
def _collect_unused_components():
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedMustUse)
        gc.collect()


def test_constants_match_the_golden_model_and_the_registry():
    assert (hw.NORMAL, hw.SHIFTED, hw.RANGE, hw.PREC) == \
        (overq.NORMAL, overq.SHIFTED, overq.RANGE, overq.PREC)
    assert hw.BITS == overq.BITS
    assert hw.MAX_CASCADE == overq.MAX_CASCADE
    assert hw.MAX_ROWS == entry.MAX_ROWS


@pytest.mark.parametrize("kwargs, message", [
    ({"rows": 0}, "rows must be an integer in 1..256, not 0"),
    ({"rows": 300}, "rows must be an integer in 1..256, not 300"),
    ({"rows": 4.0}, "rows must be an integer in 1..256, not 4.0"),
    ({"bits": 1}, "bits must be an integer in 2..8, not 1"),
    ({"bits": True}, "bits must be an integer in 2..8, not True"),
    ({"cascade": 9}, "cascade must be an integer in 0..8, not 9"),
    ({"cascade": -1}, "cascade must be an integer in 0..8, not -1"),
    ({"precision": 1}, "precision must be True or False, not 1"),
    ({"slots_per_stage": 0}, "slots_per_stage must be an integer in 1..256, not 0"),
])
@pytest.mark.parametrize("cls", [OverQEncode, OverQEncoder])
def test_bad_parameters(cls, kwargs, message):
    args = {"rows": 16, "bits": 4, "cascade": 2, "precision": False, **kwargs}
    spp = args.pop("slots_per_stage", None)
    extra = {} if spp is None else {"slots_per_stage": spp}
    with pytest.raises(ValueError) as exc:
        cls(**args, **extra)
    assert str(exc.value) == message


@pytest.mark.parametrize("rows, spp, stages", [(16, 4, 4), (16, 3, 6), (16, 16, 1), (1, 4, 1),
                                               (5, 2, 3), (256, 4, 64), (7, 100, 1)])
def test_latency_formula(rows, spp, stages):
    enc = OverQEncode(rows, 4, 2, True, slots_per_stage=spp)
    assert enc.chain_stages == stages
    assert enc.latency == stages + 3
    core = OverQEncoder(rows, 4, 2, True, slots_per_stage=spp)
    assert core.latency == enc.latency + 2
    assert core.details["chain_stages"] == stages
    assert core.fifo_depth > core.latency


def test_reach_is_limited_by_the_tile():
    assert OverQEncode(8, 4, 8, False).reach == 7
    assert OverQEncode(1, 4, 8, False).reach == 0
    assert OverQEncode(16, 4, 3, False).reach == 3


def _tiles(rng, n, rows, bits):
    half, top = 1 << (bits - 1), (1 << 3 * bits) - 1
    cls = rng.integers(0, 4, (n, rows))
    return np.select([cls == 0, cls == 1, cls == 2],
                     [rng.integers(0, half, (n, rows)),
                      rng.integers(half, (1 << 2 * bits) - half, (n, rows)),
                      rng.integers((1 << 2 * bits) - half, top + 1, (n, rows))],
                     rng.integers(0, top + 1, (n, rows)))


@pytest.mark.parametrize("rows, bits, cascade, precision, spp", [
    (7, 3, 3, True, 1), (7, 3, 3, True, 2), (7, 3, 6, True, 3), (7, 2, 2, False, 5),
    (9, 2, 8, True, 9), (6, 2, 0, True, 2), (1, 2, 1, True, 1),
])
def test_every_segmentation_matches_the_golden(rows, bits, cascade, precision, spp):
    """Free-running datapath, one tile per cycle, ``valid`` riding along."""
    x = _tiles(np.random.default_rng(rows * 100 + spp), 300, rows, bits)
    dut = OverQEncode(rows, bits, cascade, precision, slots_per_stage=spp)
    lat = dut.latency
    got_v, got_t = [], []

    async def bench(ctx):
        for n in range(len(x) + lat):
            for r in range(rows):
                ctx.set(dut.x[r], int(x[n % len(x), r]))
            ctx.set(dut.valid_in, int(n < len(x)))
            await ctx.tick()
            k = n + 1 - lat
            if 0 <= k < len(x):
                assert ctx.get(dut.valid_out) == 1
                got_v.append([ctx.get(dut.values[r]) for r in range(rows)])
                got_t.append([ctx.get(dut.tags[r]) for r in range(rows)])
            elif k >= len(x):
                assert ctx.get(dut.valid_out) == 0

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    values, tags = overq.encode(x, bits, cascade, precision)
    np.testing.assert_array_equal(np.array(got_t), tags)
    np.testing.assert_array_equal(np.array(got_v), values)


def test_stream_latency_is_the_property():
    """Cycles from the input handshake's cycle to the first cycle its output beat is valid,
    with an always-ready sink (the convention of tests/hdl/stream_helpers.py), as the manifest
    says."""
    dut = OverQEncoder(4, 2, 2, True)

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for r in range(4):
            ctx.set(dut.i.payload.x[r], [14, 0, 9, 0][r])
        assert ctx.get(dut.i.ready)             # the handshake happens in cycle 0
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        cycle = 1
        while not ctx.get(dut.o.valid):
            await ctx.tick()
            cycle += 1
        assert cycle == dut.latency
        assert [ctx.get(dut.o.payload.tags[r]) for r in range(4)] == \
            [overq.NORMAL, overq.RANGE, overq.NORMAL, overq.PREC]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
