"""An ECP5 ``MULT18X18D`` with its input and output registers in use.

Yosys maps a ``$mul`` to MULT18X18D with every internal register bypassed (there is no register
absorption pass for ECP5), so a multiply between fabric flip-flops costs the DSP's 4.45 ns
combinational delay plus the long routing to and from the DSP row. With REG_INPUTA/B and
REG_OUTPUT clocked, both routing hops end at a register inside the DSP.

Simulation uses ``sim/models/MULT18X18D.v`` (Yosys ships only a blackbox for this primitive):
a model of exactly this configuration, which stops the simulation for any other.
"""

from amaranth.hdl import ClockSignal, Const, Instance, Signal, signed

__all__ = ["MULT_LATENCY", "registered_multiply"]

#: Cycles from the operands to the product: the input registers, then the output register.
MULT_LATENCY = 2


def registered_multiply(m, a, b, name):
    """Signed ``a * b`` (each at most 18 bits) from an ECP5 DSP; the product is valid
    :data:`MULT_LATENCY` cycles after ``a`` and ``b``. Returns a signed 36-bit value."""
    if len(a) > 18 or len(b) > 18:
        raise ValueError(f"registered_multiply operands must be at most 18 bits, not "
                         f"{len(a)} and {len(b)}")
    a_ext = Signal(18, name=f"{name}_a")
    b_ext = Signal(18, name=f"{name}_b")
    m.d.comb += [a_ext.eq(a.as_signed()), b_ext.eq(b.as_signed())]
    product = Signal(signed(36), name=f"{name}_p")
    ports = {"p_REG_INPUTA_CLK": "CLK0", "p_REG_INPUTB_CLK": "CLK0",
             "p_REG_PIPELINE_CLK": "NONE", "p_REG_OUTPUT_CLK": "CLK0",
             "i_CLK0": ClockSignal(), "i_CE0": Const(1), "i_RST0": Const(0),
             "i_SIGNEDA": Const(1), "i_SIGNEDB": Const(1)}
    ports.update({f"i_A{k}": a_ext[k] for k in range(18)})
    ports.update({f"i_B{k}": b_ext[k] for k in range(18)})
    ports.update({f"o_P{k}": product[k] for k in range(36)})
    m.submodules[name] = Instance("MULT18X18D", **ports)
    return product
