"""cocotb testbench of a whole board top (:class:`boards.board_top.SimTop`) over its serial pins.

No board is attached to our machines, so the host talks to the simulated top the way it would
talk to a real one: :class:`SimUartTransport` bit-bangs a serial line on the top's ``rx`` pin and
decodes its ``tx`` pin, and implements the async flavour of the transport interface of
:mod:`boards.host` (``write(bytes)``, ``read(timeout) -> bytes``). Everything above the transport
is the production host code: :class:`boards.host.AsyncHostLink` runs the same
:class:`boards.host.LinkProtocol` operations as the blocking :class:`boards.host.HostLink` does over
a serial port, and both frame and check with :mod:`boards.link`.

Timeouts of the host code are seconds at a nominal line rate (``NOMINAL_BAUD``): ``t`` seconds of
silence are ``t * NOMINAL_BAUD`` bit times of the simulated line, whatever its divisor.

Loaded by the simulator; the job (``NARROWGEN_BOARD_JOB``, an ``.npz``) holds the input beats,
the expected output beats and the top's parameters. ``board_vectors`` writes the beats the board
returned to ``result.npz`` next to the job.
"""

from __future__ import annotations

import math
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, First

from boards.host import AsyncHostLink, run_vectors
from boards.link import (
    ERR_CRC,
    ERR_FRAMING,
    ERR_MALFORMED,
    ERR_OVERFLOW,
    ERR_TIMEOUT,
    SOF,
    TYPE_DATA,
    encode_frame,
)

JOB_ENV = "NARROWGEN_BOARD_JOB"
RESULT_NAME = "result.npz"
NOMINAL_BAUD = 115200
#: silence timeout for the host operations (seconds at NOMINAL_BAUD: 0.05 s = 5760 bit times)
TIMEOUT = 0.05
#: silence that proves nothing more is coming (576 bit times: > 4 frames' worth of gap)
QUIET = 0.005


class SimUartTransport:
    """A serial port on the simulated top's pins: 8N1, ``divisor`` clock cycles per bit."""

    def __init__(self, dut, divisor: int, *, nominal_baud: int = NOMINAL_BAUD):
        self.dut = dut
        self.divisor = divisor
        self.nominal_baud = nominal_baud
        self._rx = bytearray()
        self._arrived = Event()
        self.framing_errors = 0
        self._task = None

    def start(self) -> None:
        self._task = cocotb.start_soon(self._monitor())

    async def _monitor(self):
        tx, clk, d = self.dut.tx, self.dut.clk, self.divisor
        while True:
            if tx.value != 0:
                await FallingEdge(tx)
            await ClockCycles(clk, d // 2)              # middle of the start bit
            if tx.value != 0:
                continue                                # glitch
            byte = 0
            for k in range(8):
                await ClockCycles(clk, d)
                byte |= int(tx.value) << k
            await ClockCycles(clk, d)                   # middle of the stop bit
            if tx.value != 1:
                self.framing_errors += 1
                while tx.value != 1:
                    await ClockCycles(clk, 1)
                continue
            self._rx.append(byte)
            self._arrived.set()

    async def write(self, data: bytes) -> None:
        rx, clk, d = self.dut.rx, self.dut.clk, self.divisor
        for byte in data:
            for bit in (0, *((byte >> k) & 1 for k in range(8)), 1):
                rx.value = bit
                await ClockCycles(clk, d)

    async def send_break(self, bits: int) -> None:
        """Hold the line low for ``bits`` bit times (a character with a low stop bit)."""
        self.dut.rx.value = 0
        await ClockCycles(self.dut.clk, bits * self.divisor)
        self.dut.rx.value = 1
        await ClockCycles(self.dut.clk, self.divisor)

    async def read(self, timeout: float) -> bytes:
        if not self._rx:
            self._arrived.clear()
            cycles = max(1, math.ceil(timeout * self.nominal_baud * self.divisor))
            await First(self._arrived.wait(), ClockCycles(self.dut.clk, cycles))
        data = bytes(self._rx)
        self._rx.clear()
        return data


def _load_job() -> tuple[dict, str]:
    path = os.environ[JOB_ENV]
    with np.load(path) as z:
        job = {k: z[k] for k in z.files}
    return job, os.path.dirname(path)


async def _start(dut, job) -> tuple[AsyncHostLink, SimUartTransport]:
    """Clock, reset (every test starts from a reset device), and a host link on the pins."""
    dut.rx.value = 1
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    transport = SimUartTransport(dut, int(job["divisor"]))
    transport.start()
    return AsyncHostLink(transport), transport


def _first_diff(actual: np.ndarray, expected: np.ndarray) -> str:
    bad = np.nonzero((actual != expected).any(axis=1))[0]
    if not bad.size:
        return "none"
    k = int(bad[0])
    return (f"{bad.size} beats differ; first at beat {k}: expected {expected[k].tobytes().hex()}, "
            f"got {actual[k].tobytes().hex()}")


@cocotb.test()
async def board_info(dut):
    """The device describes itself: link version, FIFO depth, beat widths."""
    job, _ = _load_job()
    link, _ = await _start(dut, job)
    info = await link.info(TIMEOUT)
    assert (info.in_width, info.out_width, info.fifo_depth) == (
        int(job["in_width"]), int(job["out_width"]), int(job["fifo_depth"])), info
    assert link.stats.clean, link.stats


@cocotb.test()
async def board_vectors(dut):
    """Every input beat through the link; every output beat back, bit for bit, in order."""
    job, out_dir = _load_job()
    link, transport = await _start(dut, job)
    in_rows, expected = job["in_rows"], job["expected"]
    actual = await run_vectors(link, in_rows, expected.shape[1], expected.shape[0],
                               timeout=TIMEOUT)
    await link.poll(QUIET)
    np.savez(os.path.join(out_dir, RESULT_NAME), actual=actual)
    assert np.array_equal(actual, expected), _first_diff(actual, expected)
    assert link.queued_beats == 0, f"{link.queued_beats} extra output beats"
    assert link.stats.clean and transport.framing_errors == 0, link.stats


@cocotb.test()
async def board_bad_frames(dut):
    """Corrupted frames are reported and dropped, never computed on; the link carries on."""
    job, _ = _load_job()
    link, transport = await _start(dut, job)
    in_rows, expected = job["in_rows"], job["expected"]
    n_in, out_bytes = in_rows.shape[0], expected.shape[1]
    per = expected.shape[0] // n_in                     # output beats per input beat
    k = int(job["corrupt"])

    first = await run_vectors(link, in_rows[:k], out_bytes, k * per, timeout=TIMEOUT)
    assert np.array_equal(first, expected[:k * per]), _first_diff(first, expected[:k * per])

    # A flipped payload byte: CRC error reported, the beat is not computed on.
    frame = bytearray(encode_frame(TYPE_DATA, in_rows[k].tobytes()))
    frame[4] ^= 0x5A
    await link.send_raw(bytes(frame))
    assert await link.wait_reports(TIMEOUT) == [(ERR_CRC, 1)]
    assert link.queued_beats == 0, "the corrupted beat produced output"

    # The following good frames still work, and give exactly their own outputs.
    rest = await run_vectors(link, in_rows[k + 1:], out_bytes, (n_in - k - 1) * per,
                             timeout=TIMEOUT)
    assert np.array_equal(rest, expected[(k + 1) * per:]), \
        _first_diff(rest, expected[(k + 1) * per:])

    # A wrong length for the type: malformed, abandoned at the header.
    for filler in range(256):
        bad = encode_frame(TYPE_DATA, in_rows[0].tobytes() + bytes([filler]))
        if SOF not in bad[1:]:
            break
    await link.send_raw(bad)
    assert await link.wait_reports(TIMEOUT) == [(ERR_MALFORMED, 1)]

    # A damaged CRC byte: the running count goes to 2.
    frame = bytearray(encode_frame(TYPE_DATA, in_rows[1].tobytes()))
    frame[-1] ^= 0xFF
    await link.send_raw(bytes(frame))
    assert await link.wait_reports(TIMEOUT) == [(ERR_CRC, 2)]

    # A frame that stops half-way: abandoned after the inter-byte timeout.
    await link.send_raw(encode_frame(TYPE_DATA, in_rows[2].tobytes())[:5])
    assert await link.wait_reports(TIMEOUT) == [(ERR_TIMEOUT, 1)]

    # A character with a low stop bit (a break): one UART framing error.
    await transport.send_break(12)
    assert await link.wait_reports(TIMEOUT) == [(ERR_FRAMING, 1)]

    # Still alive, and nothing computed on any of the bad frames.
    again = await run_vectors(link, in_rows[:2], out_bytes, 2 * per, timeout=TIMEOUT)
    assert np.array_equal(again, expected[:2 * per])
    await link.poll(QUIET)
    assert link.queued_beats == 0, f"{link.queued_beats} output beats from bad frames"
    stats = link.stats
    assert stats.device_errors == {"crc": 2, "malformed": 1, "timeout": 1, "framing": 1}, stats
    assert stats.rx_crc_errors == 0 and stats.rx_malformed == 0, stats


@cocotb.test()
async def board_overflow(dut):
    """Without windowing the input FIFO overflows: every beat is either answered or reported."""
    job, _ = _load_job()
    link, _ = await _start(dut, job)
    in_rows, expected = job["in_rows"], job["expected"]
    n_in, out_bytes = in_rows.shape[0], expected.shape[1]
    per = expected.shape[0] // n_in
    await link.send_beats(in_rows)                      # all at once: no window
    await link.poll(QUIET)
    received = link.protocol._pop(link.queued_beats, out_bytes)
    dropped = link.stats.device_errors.get("overflow", 0)
    assert dropped > 0, "expected the flood to overflow the input FIFO"
    assert received.shape[0] == (n_in - dropped) * per, (received.shape[0], dropped)
    # Every received group is the expected output of some input beat, in order.
    j = 0
    for g in range(received.shape[0] // per):
        got = received[g * per:(g + 1) * per]
        while j < n_in and not np.array_equal(got, expected[j * per:(j + 1) * per]):
            j += 1
        assert j < n_in, f"output group {g} matches no input beat in order"
        j += 1
    assert {c for c, _ in link.take_reports()} == {ERR_OVERFLOW}
    # Windowed again, the device works normally.
    again = await run_vectors(link, in_rows[:3], out_bytes, 3 * per, timeout=TIMEOUT)
    assert np.array_equal(again, expected[:3 * per])

