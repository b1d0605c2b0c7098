"""What the two across-block accumulators of mx-dot share: their ports and argument checks."""

from amaranth.hdl import signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.common import is_int

__all__ = ["BlockAccumulator"]


class BlockAccumulator(wiring.Component):
    """Base of :class:`ExactAccumulator` and :class:`FP32Accumulator`: block sums in, one FP32
    result per group out, free-running (``valid`` travels with each block).

    Members
    -------
    valid, first, last : In(1)
        A block arrives; it starts / ends its group.
    sum : In(signed(sum_width))
        The exact block sum, in units of ``2**lsb_exp``.
    scale_sum : In(9)
        ``a_scale + b_scale`` codes, 0..508.
    nan : In(1)
        The block is NaN.
    o_valid : Out(1)
    o : Out(32)
        The group's FP32 result (bits), ``latency`` cycles after its last block.
    """

    def __init__(self, sum_width, lsb_exp):
        if not (is_int(sum_width) and 2 <= sum_width <= 128):
            raise ValueError(f"sum_width must be an integer in 2..128, not {sum_width!r}")
        if not (is_int(lsb_exp) and -64 <= lsb_exp <= 0):
            raise ValueError(f"lsb_exp must be an integer in -64..0, not {lsb_exp!r}")
        self.sum_width, self.lsb_exp = sum_width, lsb_exp
        super().__init__({
            "valid": In(1), "first": In(1), "last": In(1),
            "sum": In(signed(sum_width)),
            "scale_sum": In(9),
            "nan": In(1),
            "o_valid": Out(1),
            "o": Out(32),
        })
