"""A toy stream core registered only in tests: exercises the generic testbench and runner."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.params import Params, param
from gen.registry import Core

IN = data.StructLayout({"a": 8, "b": data.ArrayLayout(4, 3)})
OUT = data.StructLayout({"s": 10})


class ToySum(wiring.Component):
    """s = a + b[0] + b[1] + b[2] (+ ``bug``), through a 2-deep valid/ready pipeline."""

    latency = 2
    throughput = "1 transaction per cycle"

    def __init__(self, bug: int = 0, stall_after: int | None = None):
        self.bug = bug
        self.stall_after = stall_after
        super().__init__({"i": In(stream.Signature(IN)), "o": Out(stream.Signature(OUT))})

    def elaborate(self, platform):
        m = Module()
        v1, s1 = Signal(), Signal(10)
        adv2 = ~self.o.valid | self.o.ready
        adv1 = ~v1 | adv2
        taken = Signal(16)
        ok = Signal(init=1)
        if self.stall_after is not None:
            m.d.comb += ok.eq(taken < self.stall_after)
        m.d.comb += self.i.ready.eq(adv1 & ok)
        with m.If(adv1):
            m.d.sync += [v1.eq(self.i.valid & ok),
                         s1.eq(self.i.payload.a + self.i.payload.b[0] + self.i.payload.b[1]
                               + self.i.payload.b[2] + self.bug)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += taken.eq(taken + 1)
        with m.If(adv2):
            m.d.sync += [self.o.valid.eq(v1), self.o.payload.s.eq(s1)]
        return m


@dataclass(frozen=True)
class ToyParams(Params):
    bug: int = param(0, kind="int", choices=(0, 1), doc="add 1 to every result")
    stall_after: int = param(0, kind="int", doc="stop accepting after this many beats (0: never)")


def _golden(p, inputs):
    return {"s": inputs["a"].astype(np.int64) + inputs["b"].sum(axis=1)}


TOY = Core(
    name="toy-sum", description="test-only adder", params=ToyParams,
    build=lambda p: ToySum(p.bug, p.stall_after or None),
    top_name=lambda p: f"toy_sum_bug{p.bug}_stall{p.stall_after}",
    stimulus=lambda p, rng, n: {"a": rng.integers(0, 256, n), "b": rng.integers(0, 16, (n, 3))},
    check_vectors=lambda p, a: a, golden=_golden,
    to_beats=lambda p, x: {"a": x["a"], "b": x["b"]},
    expected_beats=lambda p, y: {"s": y["s"]},
    from_beats=lambda p, f, x: {"s": f["s"]},
    transactions=lambda p, x: len(x["a"]), out_beats_per_transaction=lambda p: 1,
    vectors_doc="a, b", dump_doc="s", formats=lambda p: [],
)
