"""Leading-zero count."""

from amaranth.hdl import Const, Module, Mux, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LeadingZeroCount", "count_leading_zeros"]


def count_leading_zeros(value):
    """Number of leading zeros of ``value`` as a combinational expression.

    Written as a priority chain (the highest set bit wins); synthesis (ABC) restructures it, and
    it keeps Amaranth's simulator fast. An all-zero ``value`` gives ``len(value)``. The result is
    ``unsigned(bits_for(len(value)))``.
    """
    value = Value.cast(value)
    width = len(value)
    if width == 0:
        raise ValueError("value must be at least 1 bit wide, not 0")
    count = Const(width, range(width + 1))
    for bit in range(width):
        count = Mux(value[bit], width - 1 - bit, count)
    return count


class LeadingZeroCount(wiring.Component):
    """Combinational leading-zero counter.

    Parameters
    ----------
    width : int
        Width of the input.

    Members
    -------
    i : In(width)
        Value to examine.
    o : Out(range(width + 1))
        Number of zeros above the most significant one of ``i``; ``width`` when ``i == 0``.
    """

    def __init__(self, width):
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        self.width = width
        super().__init__({"i": In(width), "o": Out(range(width + 1))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(count_leading_zeros(self.i))
        return m
