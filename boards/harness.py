"""A registered LFSR / XOR-tree harness for out-of-context synthesis of cores with many ports.

A core such as ``mx-quantize`` at its defaults has 1,300+ port bits; an iCE40UP5K-SG48 has 39
usable pins. Place and route of the bare core fails on IO (or, if IO were ignored, its IO paths
would be unconstrained and its inputs free to optimise). :class:`Harness` gives the core a
realistic, pin-light surrounding instead, so that every bit of the core stays live and every
timing path starts and ends at a flip-flop.
"""

from __future__ import annotations

import random

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Harness", "io_bits", "needs_harness", "HARNESS_NAME", "LFSR_TAPS"]

#: Label recorded in synthesis reports when the harness is used (``"none"`` otherwise).
HARNESS_NAME = "lfsr-xor"

#: Feedback taps (0-based positions in the state) of the 32-bit maximal-length Fibonacci LFSR
#: ``x^32 + x^22 + x^2 + x + 1`` that heads the harness's shift register.
LFSR_TAPS = (31, 21, 1, 0)

_LFSR_HEAD = 32


def _ports(component):
    """``[(path, flow, value)]`` of every port bit-vector of ``component`` (flows are relative
    to the component: ``In`` = driven by its parent)."""
    return [(path, member.flow, Value.cast(value))
            for path, member, value in component.signature.flatten(component)]


def io_bits(component) -> int:
    """Pins the component needs as a top level: the widths of all its ports plus clk and rst."""
    return sum(len(v) for _, _, v in _ports(component)) + 2


def needs_harness(component, target) -> bool:
    """True when the core's own ports (payloads, valid/ready, clk, rst) exceed the target's usable
    IO pins (``target`` is a :class:`boards.targets.Target` or a target name)."""
    from .targets import get_target
    if isinstance(target, str):
        target = get_target(target)
    return io_bits(component) > target.resources["io"]


class Harness(wiring.Component):
    """Wrap a core in a registered pseudo-random driver and a registered XOR-reduction tree.

    What it adds around the core, in the ``sync`` domain of the core:

    * **Driver.** One shift register ``state`` with one bit per core input bit (for a stream
      core: ``i.payload``, ``i.valid`` and ``o.ready``), at least 32 bits. Its first 32 bits are
      the maximal-length Fibonacci LFSR :data:`LFSR_TAPS`; the rest are delayed copies of its
      output. Every core input is driven straight from its own flip-flop of ``state`` (distinct
      registers, distinct reset values from a fixed seed), so no two inputs are equal, none is
      constant, and the core sees ~50 % valid and ~50 % backpressure.
    * **Observer.** Every core output bit (``o.payload``, ``o.valid``, ``i.ready``) enters an
      XOR tree. Each tree level XORs groups of up to ``fan_in`` bits into *registered* bits
      (one LUT level per stage, a LUT4 on iCE40 / ECP5); levels repeat until at most ``pins``
      bits remain, which drive the output port ``out``. Every core output therefore reaches a
      pin, so synthesis cannot remove any logic that affects an output, and the harness adds no
      long combinational path: its own paths are flop → one LUT → flop.

    The top level's ports are ``clk``, ``rst`` and ``out`` (``pins`` bits or fewer): ~6 pins.

    Cost (the harness is included in the reported cells): ``len(state)`` flip-flops and one LUT
    for the LFSR feedback; about ``W / (fan_in - 1)`` LUTs and as many flip-flops for an output
    width ``W``. :attr:`cost` gives the nominal counts before optimisation. On iCE40 a flip-flop
    fed by a flip-flop still takes a logic cell, so the driver's ``len(state)`` flip-flops cost
    that many LCs; subtract :attr:`cost` from the reported numbers for a harness-free estimate.
    For ``mx-quantize`` at its defaults (1,026 input and 266 output bits) that is
    1,026 + 91 FFs and 92 LUTs.

    Parameters
    ----------
    core : wiring.Component
        The core (typically with stream ports ``i`` and ``o``; any port signature works: every
        port with flow ``In`` is driven, every ``Out`` port is observed).
    pins : int
        Most output pins of the harness (default 4).
    fan_in : int
        Bits XORed per tree node (default 4, one LUT4).
    seed : int
        Seed for the reset values of ``state`` (fixed, so the Verilog is reproducible).

    Attributes
    ----------
    core : wiring.Component
    out : Out(n)
        The registered XOR reductions, ``n <= pins`` (the harness's only port besides clk/rst).
    in_bits, out_bits : int
        Core input bits driven / core output bits observed.
    cost : dict
        ``{"ff": ..., "lut": ...}`` nominal harness cost.
    """

    def __init__(self, core, *, pins=4, fan_in=4, seed=1):
        if not isinstance(pins, int) or pins < 1:
            raise ValueError(f"pins must be a positive int, not {pins!r}")
        if not isinstance(fan_in, int) or fan_in < 2:
            raise ValueError(f"fan_in must be an int >= 2, not {fan_in!r}")
        self.core = core
        self.pins = pins
        self.fan_in = fan_in
        self.seed = seed
        ports = _ports(core)
        self._inputs = [v for _, flow, v in ports if flow == In]
        self._outputs = [v for _, flow, v in ports if flow == Out]
        self.in_bits = sum(len(v) for v in self._inputs)
        self.out_bits = sum(len(v) for v in self._outputs)
        if self.out_bits == 0:
            raise ValueError("the core has no output bits to observe")
        self._levels = self._tree_widths(self.out_bits)
        super().__init__({"out": Out(self._levels[-1])})

    def _tree_widths(self, width):
        levels = []
        while width > self.pins or not levels:
            width = -(-width // self.fan_in)
            levels.append(width)
            if width == 1:
                break
        return levels

    @property
    def state_bits(self) -> int:
        return max(self.in_bits, _LFSR_HEAD)

    @property
    def cost(self) -> dict:
        tree_ff = sum(self._levels)
        return {"ff": self.state_bits + tree_ff, "lut": 1 + tree_ff}

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = self.core

        n = self.state_bits
        rng = random.Random(self.seed)
        init = rng.getrandbits(n) | 1                      # non-zero LFSR head
        state = Signal(n, init=init)
        feedback = Cat(*(state[t] for t in LFSR_TAPS)).xor()
        m.d.sync += state.eq(Cat(feedback, state[:-1]))

        offset = 0                                         # LSB first, in signature order
        for v in self._inputs:
            m.d.comb += v.eq(state[offset:offset + len(v)])
            offset += len(v)

        level = Cat(*self._outputs)
        for i, width in enumerate(self._levels):
            nxt = Signal(width, name=f"xor_l{i}", reset_less=True)
            for j in range(width):
                m.d.sync += nxt[j].eq(level[j * self.fan_in:(j + 1) * self.fan_in].xor())
            level = nxt
        m.d.comb += self.out.eq(level)
        return m
