"""The generic cocotb stream testbench: one driver, one monitor, one scoreboard for every core.

Loaded by the simulator (never imported by the host side). ``sim.runner`` writes a job file and
names it in ``NARROWGEN_TB_JOB``; the job holds the input beats, the expected output beats (both
as little-endian payload bytes, one row per beat) and the traffic settings. The testbench drives
``i`` with random idle cycles, holds ``o.ready`` low at random (backpressure), compares every
output beat with the expected one in order, and ends when the expected number of output beats has
arrived — never on a timer. A watchdog only catches a core that stops moving.

It writes back ``result.npz``: every output beat the hardware produced, the cycle count, the
number of mismatching beats and the index of the first one. The host decodes and reports them.

Sampling scheme: inputs change only just after the falling clock edge; handshakes are read in the
``ReadOnly`` phase of that half cycle, i.e. exactly what the flops see at the next rising edge.
This stays correct when a core's ``i.ready`` depends combinationally on ``o.ready``.
"""

from __future__ import annotations

import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

JOB_ENV = "NARROWGEN_TB_JOB"
RESULT_NAME = "result.npz"

#: cycles of quiet after the last expected beat in which an extra output beat is an error
DRAIN_CYCLES = 32


def _rows_to_ints(rows: np.ndarray) -> list[int]:
    return [int.from_bytes(r.tobytes(), "little") for r in rows]


def _ints_to_rows(values: list[int], nbytes: int) -> np.ndarray:
    out = np.zeros((len(values), nbytes), dtype=np.uint8)
    for k, v in enumerate(values):
        out[k] = np.frombuffer(v.to_bytes(nbytes, "little"), dtype=np.uint8)
    return out


class StreamTB:
    """Owns the clock, the reset and the traffic generators of one run."""

    def __init__(self, dut, job):
        self.dut = dut
        self.in_beats = _rows_to_ints(job["in_beats"])
        self.expected = _rows_to_ints(job["out_expected"])
        self.out_bytes = int(job["out_bytes"])
        rng = np.random.default_rng(int(job["seed"]))
        horizon = 4 * (len(self.in_beats) + len(self.expected)) + 1024
        # Precomputed traffic decisions: True means "offer a beat" / "accept a beat" this cycle.
        self.offer = rng.random(horizon) >= float(job["idle_prob"])
        self.accept = rng.random(horizon) >= float(job["stall_prob"])
        self.watchdog = int(job["watchdog_cycles"])

    async def reset(self):
        dut = self.dut
        dut.i__valid.value = 0
        dut.i__payload.value = 0
        dut.o__ready.value = 0
        dut.rst.value = 1
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        for _ in range(3):
            await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.rst.value = 0

    async def run(self):
        dut = self.dut
        n_in, n_out = len(self.in_beats), len(self.expected)
        sent = got = cycle = idle_run = 0
        actual: list[int] = []
        mismatches, first_mismatch = 0, -1
        offering = False
        horizon = len(self.offer)
        drain_left = DRAIN_CYCLES
        while True:
            await FallingEdge(dut.clk)
            cycle += 1
            k = cycle % horizon
            # Driver: a beat once offered stays on the bus until taken (stream rule).
            if not offering:
                if sent < n_in and self.offer[k]:
                    dut.i__payload.value = self.in_beats[sent]
                    dut.i__valid.value = 1
                    offering = True
                else:
                    dut.i__valid.value = 0
            dut.o__ready.value = 1 if (got >= n_out or self.accept[k]) else 0
            await ReadOnly()
            moved = False
            if offering and dut.i__ready.value == 1:
                sent += 1
                offering = False
                moved = True        # a taken input beat is progress too (e.g. weight loads)
            if dut.o__valid.value == 1 and dut.o__ready.value == 1:
                value = dut.o__payload.value
                # A 1-bit payload reads as a Logic, which has no to_unsigned().
                beat = value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)
                actual.append(beat)
                moved = True
                if got < n_out and beat != self.expected[got]:
                    mismatches += 1
                    if first_mismatch < 0:
                        first_mismatch = got
                got += 1
            idle_run = 0 if moved else idle_run + 1
            if got >= n_out:
                drain_left -= 1
                if drain_left == 0:
                    break
            if idle_run > self.watchdog:
                break
        return actual, cycle, mismatches, first_mismatch


@cocotb.test()
async def stream_scoreboard(dut):
    """Drive every input beat, check every output beat, in order, bit for bit."""
    job_path = os.environ[JOB_ENV]
    job = np.load(job_path)
    tb = StreamTB(dut, job)
    t0 = time.perf_counter()
    await tb.reset()
    actual, cycles, mismatches, first = await tb.run()
    wall = time.perf_counter() - t0
    np.savez(os.path.join(os.path.dirname(job_path), RESULT_NAME),
             out_actual=_ints_to_rows(actual, tb.out_bytes), cycles=cycles,
             mismatches=mismatches, first_mismatch=first, wall=wall)
    n_out = len(tb.expected)
    assert len(actual) >= n_out, (
        f"core stalled: {len(actual)} of {n_out} output beats after {cycles} cycles "
        f"(no beat taken or produced for {tb.watchdog} cycles)")
    assert len(actual) == n_out, f"{len(actual) - n_out} unexpected extra output beats"
    assert mismatches == 0, f"{mismatches} of {n_out} output beats differ; first at beat {first}"
