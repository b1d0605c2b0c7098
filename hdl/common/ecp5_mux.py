"""4:1 multiplexers on ECP5 slices: two LUT4s and the slice's PFUMX.

An ECP5 slice has two LUT4s and a PFUMX that selects between their outputs. A 4:1 mux with a
2-bit select therefore fits one slice: each LUT4 is a 2:1 mux on ``sel[0]``, the PFUMX picks one
of them on ``sel[1]``. Inferred, Yosys (abc9) sees a 6-input function and maps it as a LUT6, four
LUT4s behind two PFUMXs and an L6MUX21 (measured: a registered 32-bit 4:1 mux is 128 LUT4
inferred, 64 this way). The PFUMX is part of the slice and takes no LUT4 site.

Simulation uses ``sim/models/LUT4.v`` and ``sim/models/PFUMX.v``.
"""

from amaranth.hdl import Const, Instance, Signal

__all__ = ["MUXES", "MUX2_INIT", "mux4"]

#: The ``muxes`` choices of the cores that use this: ``"generic"`` (inferred, any device) or
#: ``"ecp5-pfumx"`` (:func:`mux4`, ECP5 only).
MUXES = ("generic", "ecp5-pfumx")

#: INIT of a LUT4 as a 2:1 mux, ``Z = C if A else B`` (A = the select, on the LUT's fastest
#: input; B, C = the options; D unused): set where ``A = 0, B = 1`` or ``A = 1, C = 1``.
MUX2_INIT = Const(0xE4E4, 16)


def mux4(m, sel, options, name):
    """``options[sel]`` for a 2-bit ``sel`` and four options of one width, one ECP5 slice per
    bit (two LUT4s, one PFUMX). Returns the selected value (a new signal)."""
    if len(options) != 4 or len({len(o) for o in options}) != 1 or len(sel) != 2:
        raise ValueError("mux4 needs a 2-bit select and four options of one width")
    width = len(options[0])
    out = Signal(width, name=name)
    for b in range(width):
        low, high = Signal(name=f"{name}_lo{b}"), Signal(name=f"{name}_hi{b}")
        for half, (z, x, y) in (("lo", (low, options[0], options[1])),
                                ("hi", (high, options[2], options[3]))):
            m.submodules[f"{name}_{half}{b}"] = Instance(
                "LUT4", p_INIT=MUX2_INIT, i_A=sel[0], i_B=x[b], i_C=y[b], i_D=Const(0, 1),
                o_Z=z)
        m.submodules[f"{name}_mux{b}"] = Instance(
            "PFUMX", i_ALUT=high, i_BLUT=low, i_C0=sel[1], o_Z=out[b])
    return out
