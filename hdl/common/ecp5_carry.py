"""Adders on ECP5 carry chains (``CCU2C``) that do extra work in the chain's own LUT4s.

A CCU2C half has a LUT4 (the propagate ``P = INIT[{D, C, B, A}]``) and a LUT2 on A and B taken
from INIT bits 3..0 (the generate ``G``, used when ``P`` is 0): ``S = P ^ cin``,
``cout = cin if P else G``. Yosys maps an inferred ``+`` onto the same cells with ``P = A ^ B``;
any logic in front of its operands costs LUT4s of its own. The two adders here put that logic
into ``P`` and ``G``:

- :func:`clearable_add`: ``(0 if clear else acc) + addend + cin``. Inferred, the clear costs a
  LUT4 per bit in front of Yosys's adder (or a synchronous reset on the accumulator register,
  which then shares the adder output with any other register that needs it, and nextpnr packs
  only one register per sum bit beside the chain). Here the register fed by the sum is its only
  load and sits beside its carry chain.
- :func:`xor_add`: ``(a ^ -a_neg) + (b ^ -b_neg) + cin``, the sum of two sign-magnitude operands
  in ones' complement (the caller adds the two ``+neg`` corrections, one as ``cin``). Inferred,
  each XOR is a LUT4 per bit in front of the adder.

Simulation uses ``sim/models/CCU2C.v``.
"""

from amaranth.hdl import Const, Instance, Signal

__all__ = ["ADDERS", "CLEARABLE_ADD_INIT", "XOR_ADD_INIT", "clearable_add", "xor_add"]

#: The ``adders`` choices of the cores that use these: ``"generic"`` (inferred ``+``, any device)
#: or ``"ecp5-ccu2c"`` (the adders here, ECP5 only).
ADDERS = ("generic", "ecp5-ccu2c")

#: INIT of both CCU2C halves of :func:`clearable_add` (A = acc, B = addend, C = clear, D tied
#: high): bits 15..12 (D=1, C=1) ``P = B``; bits 11..8 (D=1, C=0) ``P = A ^ B``; bits 7..4 unused;
#: bits 3..0 the generate LUT2 ``G = B`` (``P = 0`` means the masked acc equals B).
CLEARABLE_ADD_INIT = Const(0xC60C, 16)

#: INIT of both CCU2C halves of :func:`xor_add` (A = a, B = a_neg, C = b, D = b_neg):
#: ``P = A ^ B ^ C ^ D``; bits 3..0 (C = D = 0) give the generate ``G = A ^ B``, the operand bit
#: ``a ^ a_neg`` (``P = 0`` means both operand bits are equal).
XOR_ADD_INIT = Const(0x6996, 16)


def _chain(m, init, width, cin, inputs, name):
    """A ``width``-bit (even) CCU2C chain with ``init`` in every half; ``inputs(i)`` gives the
    (A, B, C, D) of bit ``i``. Returns the ``width + 1``-bit sum (its top bit the carry out)."""
    total = Signal(width + 1, name=f"{name}_sum")
    carry = cin
    for i in range(0, width, 2):
        cout = Signal(name=f"{name}_c{i + 2}")
        ports = {}
        for half in (0, 1):
            a, b, c, d = inputs(i + half)
            ports.update({f"i_A{half}": a, f"i_B{half}": b, f"i_C{half}": c, f"i_D{half}": d,
                          f"o_S{half}": total[i + half]})
        m.submodules[f"{name}_ccu{i // 2}"] = Instance(
            "CCU2C", p_INIT0=init, p_INIT1=init, p_INJECT1_0="NO", p_INJECT1_1="NO",
            i_CIN=carry, o_COUT=cout, **ports)
        carry = cout
    m.d.comb += total[width].eq(carry)
    return total


def clearable_add(m, acc, addend, cin, clear, name):
    """``(0 if clear else acc) + addend + cin`` on a chain of ``len(acc) / 2`` CCU2C cells;
    returns the ``len(acc) + 1``-bit sum (its top bit the carry out). ``acc`` and ``addend`` have
    the same even width; ``cin`` and ``clear`` are 1 bit."""
    width = len(acc)
    if len(addend) != width or width % 2:
        raise ValueError(f"clearable_add needs operands of one even width, not {width} and "
                         f"{len(addend)}")
    return _chain(m, CLEARABLE_ADD_INIT, width, cin,
                  lambda i: (acc[i], addend[i], clear, 1), name)


def xor_add(m, a, a_neg, b, b_neg, cin, name):
    """``(a ^ -a_neg) + (b ^ -b_neg) + cin`` as a signed ``len(a) + 2``-bit value: ``a`` and
    ``b`` are unsigned magnitudes of one width, each zero-extended by a bit and then inverted
    when its ``neg`` is set (a ``len(a) + 1``-bit ones' complement), on a chain of
    ``ceil((len(a) + 2) / 2)`` CCU2C cells. With ``cin = a_neg`` the result is
    ``(-a if a_neg else a) + (-b if b_neg else b) - b_neg``."""
    width = len(a)
    if len(b) != width:
        raise ValueError(f"xor_add needs operands of one width, not {width} and {len(b)}")
    zero = Const(0, 1)
    chain_width = width + 2 + (width % 2)

    def inputs(i):
        return (a[i] if i < width else zero, a_neg, b[i] if i < width else zero, b_neg)

    return _chain(m, XOR_ADD_INIT, chain_width, cin, inputs, name)[:width + 2].as_signed()
