# amaranth: UnusedElaboratable=no
"""SystolicArray (int-array / overq-array) handshake and timing in Amaranth's simulator: the
manifest's latency is the measured one, and a weight beat waits exactly until the vectors taken
before it have left the array."""

import pytest
from amaranth.sim import Simulator

from hdl.overq.array import ACTIVATION, WEIGHT, SystolicArray


def _simulate(dut, testbench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("kw", [
    dict(rows=1, cols=1, bits=4, weight_bits=8),
    dict(rows=3, cols=5, bits=2, weight_bits=4),
    dict(rows=4, cols=3, bits=4, weight_bits=8, overq=True, cascade=2),
    dict(rows=6, cols=2, bits=3, weight_bits=5, overq=True, cascade=4, precision=True),
], ids=["int-1x1", "int-3x5", "overq-4x3", "overq-6x2-prec"])
def test_latency_is_the_property(kw):
    """Cycles from an activation beat's handshake to its ``y`` beat, with ``o.ready`` high."""
    dut = SystolicArray(**kw)
    seen = {}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.payload.kind, ACTIVATION)
        ctx.set(dut.i.valid, 1)
        assert ctx.get(dut.i.ready)
        await ctx.tick()                    # the handshake edge: cycle 1 ends here
        ctx.set(dut.i.valid, 0)
        for cycle in range(2, 200):
            if ctx.get(dut.o.valid):
                seen["latency"] = cycle
                return
            await ctx.tick()

    _simulate(dut, tb)
    assert seen["latency"] - 1 == dut.latency


@pytest.mark.parametrize("overq", [False, True])
def test_weight_beat_waits_for_the_array_to_drain(overq):
    dut = SystolicArray(rows=3, cols=4, bits=4, weight_bits=8, overq=overq)
    waited = {}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.payload.kind, ACTIVATION)
        ctx.set(dut.i.valid, 1)
        await ctx.tick()                    # one activation taken
        ctx.set(dut.i.payload.kind, WEIGHT)
        for cycle in range(100):
            if ctx.get(dut.i.ready):
                waited["cycles"] = cycle
                break
            await ctx.tick()
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        # An activation beat right after it is taken at once.
        ctx.set(dut.i.payload.kind, ACTIVATION)
        ctx.set(dut.i.valid, 1)
        assert ctx.get(dut.i.ready)

    _simulate(dut, tb)
    assert waited["cycles"] == dut.drain_cycles


@pytest.mark.parametrize("kw, message", [
    (dict(rows=0, cols=2, bits=4, weight_bits=8), "rows"),
    (dict(rows=2, cols=65, bits=4, weight_bits=8), "cols"),
    (dict(rows=2, cols=2, bits=9, weight_bits=8), "bits"),
    (dict(rows=2, cols=2, bits=4, weight_bits=1), "weight_bits"),
    (dict(rows=2, cols=2, bits=4, weight_bits=8, precision=True),
     "cascade, precision and slots_per_stage apply only with overq=true"),
    (dict(rows=2, cols=2, bits=4, weight_bits=8, overq=1), "overq must be true or false"),
])
def test_bad_construction(kw, message):
    with pytest.raises(ValueError, match=message):
        SystolicArray(**kw)


def test_weight_range_is_the_golden_models():
    from hdl.overq.array import WEIGHT_BITS
    from sim.golden import overq
    assert WEIGHT_BITS == overq.WEIGHT_BITS
