# amaranth: UnusedElaboratable=no
"""The stream shell's event counters in Amaranth's simulator: the registered "count != 0" flag
follows the true count every cycle, although the count register adds the events a cycle late."""

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.sim import Simulator

from hdl.common.stream_shell import _nonzero_counter


class _Counter(Elaboratable):
    def __init__(self, init, limit):
        self.init, self.limit = init, limit
        self.up, self.down, self.flag = Signal(), Signal(), Signal()

    def elaborate(self, platform):
        m = Module()
        flag = _nonzero_counter(m, "count", self.init, self.limit, self.up, self.down)
        m.d.comb += self.flag.eq(flag)
        return m


@pytest.mark.parametrize("init, limit, p_up, p_down", [
    (0, 5, 0.5, 0.5),        # a FIFO's stored results: starts empty
    (4, 4, 0.4, 0.6),        # credits: starts full, mostly drained
    (3, 3, 0.7, 0.3),        # mostly at the limit
    (0, 1, 0.5, 0.5),        # one entry: the flag toggles often
], ids=["fifo", "credits", "near-limit", "depth-1"])
def test_flag_is_the_true_count_nonzero(init, limit, p_up, p_down):
    """Random up/down events (never below 0 or above the limit, both at once included): every
    cycle the flag says whether the true count is nonzero."""
    dut = _Counter(init, limit)
    rng = np.random.default_rng(limit * 7 + init)
    checked = []

    async def tb(ctx):
        count = init
        for _ in range(3_000):
            assert ctx.get(dut.flag) == (count != 0), (count, len(checked))
            checked.append(count)
            up = count < limit and rng.random() < p_up
            down = count > 0 and rng.random() < p_down
            ctx.set(dut.up, up)
            ctx.set(dut.down, down)
            await ctx.tick()
            count += int(up) - int(down)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert len(checked) == 3_000
    assert {0, limit} <= set(checked)      # both ends were reached
