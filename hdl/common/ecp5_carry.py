"""An adder on ECP5 carry chains (``CCU2C``) whose accumulator operand can be cleared for free.

``total = (0 if clear else acc) + addend + cin``. Inferred, the clear costs a LUT4 per bit in front
of Yosys's adder (or a synchronous reset on the accumulator register, which then shares the adder
output with any other register that needs it, and nextpnr packs only one register per sum bit
beside the chain). Here each CCU2C half computes the masked sum in its own LUT4, so the register
fed by ``total`` is the only load and sits beside its carry chain.

A CCU2C half has a LUT4 (the propagate ``P``, input D tied high so only the upper 8 INIT bits
matter) and a LUT2 on A and B taken from INIT bits 3..0 (the generate ``G``, used when ``P`` is
0): ``S = P ^ cin``, ``cout = cin if P else G``. With A = acc, B = addend, C = clear:
``P = (A & ~C) ^ B`` and, since ``P = 0`` means the masked acc equals B, ``G = B``.

Simulation uses ``sim/models/CCU2C.v``.
"""

from amaranth.hdl import Const, Instance, Signal

__all__ = ["CLEARABLE_ADD_INIT", "clearable_add"]

#: INIT of both CCU2C halves: bits 15..12 (D=1, C=1) ``P = B``; bits 11..8 (D=1, C=0)
#: ``P = A ^ B``; bits 7..4 unused (D is tied high); bits 3..0 the generate LUT2 ``G = B``.
CLEARABLE_ADD_INIT = Const(0xC60C, 16)


def clearable_add(m, acc, addend, cin, clear, name):
    """``(0 if clear else acc) + addend + cin`` on a chain of ``len(acc) / 2`` CCU2C cells;
    returns the ``len(acc) + 1``-bit sum (its top bit the carry out). ``acc`` and ``addend`` have
    the same even width; ``cin`` and ``clear`` are 1 bit."""
    width = len(acc)
    if len(addend) != width or width % 2:
        raise ValueError(f"clearable_add needs operands of one even width, not {width} and "
                         f"{len(addend)}")
    total = Signal(width + 1, name=f"{name}_sum")
    carry = cin
    for i in range(0, width, 2):
        cout = Signal(name=f"{name}_c{i + 2}")
        m.submodules[f"{name}_ccu{i // 2}"] = Instance(
            "CCU2C", p_INIT0=CLEARABLE_ADD_INIT, p_INIT1=CLEARABLE_ADD_INIT,
            p_INJECT1_0="NO", p_INJECT1_1="NO",
            i_CIN=carry, i_A0=acc[i], i_B0=addend[i], i_C0=clear, i_D0=1,
            i_A1=acc[i + 1], i_B1=addend[i + 1], i_C1=clear, i_D1=1,
            o_S0=total[i], o_S1=total[i + 1], o_COUT=cout)
        carry = cout
    m.d.comb += total[width].eq(carry)
    return total
