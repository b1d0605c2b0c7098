"""FP32 accumulation of MX block sums across a group (MX_SPEC §11, mode ``fp32``): each block sum
rounded RNE to FP32, then added in order into an FP32 accumulator, RNE after every add."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.common import is_int
from hdl.common.fp32 import FP32Add, RoundToFP32

from .dequantize import QNAN

__all__ = ["FP32Accumulator"]


class FP32Accumulator(wiring.Component):
    """Ordered FP32 accumulation, one block per cycle.

    The block sum is rounded to FP32 in a pipelined :class:`RoundToFP32`; the accumulation itself
    is a one-cycle loop through a combinational :class:`FP32Add` (starting from +0.0 at a group's
    first block), because the §11 order — every add rounded before the next — leaves nothing to
    overlap when the blocks of one group arrive back to back. That adder bounds this mode's clock.

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

    Members
    -------
    valid, first, last, sum, scale_sum, nan :
        As for :class:`hdl.mx.exact_accumulator.ExactAccumulator`.
    o_valid : Out(1)
    o : Out(32)
    """

    def __init__(self, sum_width, lsb_exp, *, round_stages=2):
        if not (is_int(sum_width) and 2 <= sum_width <= 128):
            raise ValueError(f"sum_width must be an integer in 2..128, not {sum_width!r}")
        if not (is_int(lsb_exp) and -64 <= lsb_exp <= 0):
            raise ValueError(f"lsb_exp must be an integer in -64..0, not {lsb_exp!r}")
        self.sum_width, self.lsb_exp = sum_width, lsb_exp
        self.rounder = RoundToFP32(sum_width, 11, stages=round_stages)
        super().__init__({
            "valid": In(1), "first": In(1), "last": In(1),
            "sum": In(signed(sum_width)),
            "scale_sum": In(9),
            "nan": In(1),
            "o_valid": Out(1),
            "o": Out(32),
        })

    @property
    def latency(self):
        """Cycles from a group's last block at the inputs to ``o_valid``."""
        return 1 + self.rounder.latency + 1 + 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.rounder = rounder = self.rounder
        m.submodules.adder = adder = FP32Add()

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
        for k in range(rounder.latency):
            nxt = [Signal.like(s, name=f"r{k}_{n}") for s, n in
                   zip(side, ("valid", "first", "last", "nan"))]
            m.d.sync += [d.eq(s) for d, s in zip(nxt, side)]
            side = nxt
        valid, first, last, nan = side

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
        with m.If(x_valid):
            m.d.sync += acc.eq(adder.o)
        m.d.sync += [
            self.o_valid.eq(x_valid & x_last),
            self.o.eq(adder.o),
        ]
        return m
