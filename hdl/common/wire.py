"""Named combinational nodes."""

from amaranth.hdl import Signal, Value

__all__ = ["wire"]


def wire(m, name, value):
    """``value`` as a named comb signal of ``m``: one shared node for the simulator and the
    netlist, however often it is used (an expression or Array proxy is rebuilt at every use)."""
    sig = Signal(Value.cast(value).shape(), name=name)
    m.d.comb += sig.eq(value)
    return sig
