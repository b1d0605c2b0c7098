"""FP32 accumulation of MX block sums across a group (MX_SPEC §11, mode ``fp32``): each block sum
rounded RNE to FP32, then added in order into an FP32 accumulator, RNE after every add."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed

from hdl.common.fp32 import FP32Add, RoundToFP32
from hdl.common.pipeline import delay

from .block_accumulator import BlockAccumulator
from .dequantize import QNAN

__all__ = ["FP32Accumulator"]


class FP32Accumulator(BlockAccumulator):
    """Ordered FP32 accumulation, one block per cycle (or per ``add_stages + 1`` cycles).

    The block sum is rounded to FP32 in a pipelined :class:`RoundToFP32`; the accumulation itself
    is a one-cycle loop through a combinational :class:`FP32Add` (starting from +0.0 at a group's
    first block), because the §11 order — every add rounded before the next — leaves nothing to
    overlap when the blocks of one group arrive back to back. That adder bounds this mode's clock.

    When blocks arrive at most every ``add_stages + 1`` cycles (a datapath with fewer lanes than
    the block size), the adder has that many register stages inside the loop: each add starts
    once the one before has left the adder, so the result is the same and the clock is not
    bound by one cycle of FP32 addition.

    A NaN block makes the sum NaN (and stays NaN through every later add); ``Inf - Inf`` is NaN;
    every NaN leaves as ``0x7FC00000``.

    Parameters
    ----------
    sum_width : int
        Width of the signed block sums.
    lsb_exp : int
        ``log2(a_lsb * b_lsb)``, the weight of one unit of ``sum``.
    round_stages : int
        Register stages inside :class:`RoundToFP32`.
    add_stages : int
        Register stages inside the loop's :class:`FP32Add` (0..3); blocks must then arrive at
        least ``add_stages + 1`` cycles apart.

    Members
    -------
    As for :class:`BlockAccumulator`.
    """

    def __init__(self, sum_width, lsb_exp, *, round_stages=2, add_stages=0):
        super().__init__(sum_width, lsb_exp)
        self.rounder = RoundToFP32(sum_width, 11, stages=round_stages)
        self.adder = FP32Add(stages=add_stages)

    @property
    def latency(self):
        """Cycles from a group's last block at the inputs to ``o_valid``."""
        return 1 + self.rounder.latency + 1 + self.adder.latency + 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.rounder = rounder = self.rounder
        m.submodules.adder = adder = self.adder

        # Entry register, then the rounder; the sideband travels alongside.
        side = [Signal(name="e_valid"), Signal(name="e_first"), Signal(name="e_last"),
                Signal(name="e_nan")]
        e_sum = Signal(signed(self.sum_width))
        e_exp = Signal(signed(11))
        m.d.sync += [
            side[0].eq(self.valid), side[1].eq(self.first), side[2].eq(self.last),
            side[3].eq(self.nan),
            e_sum.eq(self.sum),
            e_exp.eq(self.scale_sum + (self.lsb_exp - 254)),
        ]
        m.d.comb += [
            rounder.sign.eq(e_sum < 0),
            rounder.mag.eq(Mux(e_sum < 0, -e_sum, e_sum)),
            rounder.exp.eq(e_exp),
            rounder.sticky.eq(0),
        ]
        r = delay(m, Cat(*side), rounder.latency, "r")
        valid, first, last, nan = r[0], r[1], r[2], r[3]

        # Block value as FP32 (NaN block -> NaN), registered before the loop.
        x_valid, x_first, x_last = Signal(), Signal(), Signal()
        x = Signal(32)
        m.d.sync += [
            x_valid.eq(valid), x_first.eq(first), x_last.eq(last),
            x.eq(Mux(nan, QNAN, rounder.o)),
        ]

        acc = Signal(32)
        m.d.comb += [
            adder.a.eq(Mux(x_first, 0, acc)),       # +0.0 at a group's first block
            adder.b.eq(x),
        ]
        # The sum leaves the adder adder.latency cycles after its block went in.
        s = delay(m, Cat(x_valid, x_last), adder.latency, "s")
        s_valid, s_last = s[0], s[1]
        with m.If(s_valid):
            m.d.sync += acc.eq(adder.o)
        m.d.sync += [
            self.o_valid.eq(s_valid & s_last),
            self.o.eq(adder.o),
        ]
        return m
