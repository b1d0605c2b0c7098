"""Host side of the board link: send stimulus beats to a board, read the core's output beats.

Layers:

* :class:`LinkProtocol` is the whole host logic with no I/O of its own (frames via
  :mod:`boards.link`, output queues, error bookkeeping, windowing). Each blocking operation is a
  generator that yields :class:`Write` and :class:`Read` requests and is sent back what a read
  returned.
* :class:`HostLink` runs those operations against a blocking transport (e.g.
  :class:`SerialTransport`); :class:`AsyncHostLink` runs the *same* operations against an
  ``async`` transport (the cocotb serial-line model in :mod:`sim.tb.board_tb`). Only the transport
  differs between a real board and the simulated one.

A transport has two methods: ``write(data: bytes)`` and ``read(timeout: float) -> bytes`` (what
has arrived, waiting at most ``timeout`` seconds for the first byte; ``b""`` on timeout); the
async flavour has the same methods as coroutines. Every ``timeout`` here is a *silence*
timeout: an operation fails when nothing arrives for that long (wall-clock seconds on a serial
port; simulated line time, scaled to a nominal baud rate, in co-simulation).

Windowing (no UART flow control): the device cannot hold the host off, so the host keeps at most
``window`` input beats unanswered — by default the device's input FIFO depth, read from its INFO
frame. An input beat counts as answered once the output beats it leads to have arrived. Cores
may map ``a`` input beats to ``b`` output beats (``a:b = n_in:n_out`` in lowest terms, e.g. the
beats of one MX block); the window is rounded down to whole such groups, and is at least one
group, which is always safe: with one group in flight the core has nothing else to do.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .link import (
    ERROR_NAMES,
    TYPE_DATA,
    TYPE_ERROR,
    TYPE_INFO,
    TYPE_NAMES,
    FrameDecoder,
    Info,
    decode_error,
    encode_frame,
)

__all__ = ["LinkError", "DeviceError", "LinkStats", "Write", "Read", "LinkProtocol", "HostLink",
           "AsyncHostLink", "SerialTransport", "run_vectors"]

#: Default silence timeout in seconds (≈ 11 000 characters at 115200 baud).
DEFAULT_TIMEOUT = 1.0


class LinkError(RuntimeError):
    """The link failed: a timeout, a corrupted frame from the device, or a wrong bitstream."""


class DeviceError(LinkError):
    """The device reported an error (a frame it dropped); ``reports`` holds ``(code, count)``."""

    def __init__(self, reports: list[tuple[int, int]]):
        self.reports = reports
        text = ", ".join(f"{ERROR_NAMES.get(c, f'code {c}')} (total {n})" for c, n in reports)
        super().__init__(f"the device reported dropped frames: {text}")


@dataclass
class LinkStats:
    frames_sent: int = 0
    beats_sent: int = 0
    frames_received: int = 0
    beats_received: int = 0
    #: frames from the device that failed the host's CRC check / had an impossible header
    rx_crc_errors: int = 0
    rx_malformed: int = 0
    rx_skipped_bytes: int = 0
    #: ERROR frames received, and the device's latest running count per error kind
    error_reports: int = 0
    device_errors: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not (self.rx_crc_errors or self.rx_malformed or self.error_reports)


class Write(NamedTuple):
    data: bytes


class Read(NamedTuple):
    timeout: float


Op = Generator[Write | Read, bytes | None, object]


def _rows(rows, what: str) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.dtype != np.uint8:
        raise ValueError(f"{what} must be a uint8 array [n_beats, bytes_per_beat], not "
                         f"{rows.dtype} {rows.shape}")
    return np.ascontiguousarray(rows)


class LinkProtocol:
    """The host logic, free of I/O. Operations are generators; see the module docstring."""

    def __init__(self):
        self.decoder = FrameDecoder()
        self.beats: deque[bytes] = deque()
        self.reports: deque[tuple[int, int]] = deque()   # device error reports not yet taken
        self.infos: deque[Info] = deque()
        self.frames_sent = self.beats_sent = self.beats_received = self.error_reports = 0
        self.device_errors: dict[int, int] = {}
        self.unexpected: list[str] = []

    # --- bookkeeping

    @property
    def stats(self) -> LinkStats:
        d = self.decoder
        return LinkStats(
            frames_sent=self.frames_sent, beats_sent=self.beats_sent,
            frames_received=d.frames, beats_received=self.beats_received,
            rx_crc_errors=d.crc_errors, rx_malformed=d.malformed, rx_skipped_bytes=d.skipped,
            error_reports=self.error_reports,
            device_errors={ERROR_NAMES.get(c, str(c)): n for c, n in self.device_errors.items()})

    def ingest(self, data: bytes) -> None:
        """Feed received bytes; queue the beats, error reports and INFO replies they complete."""
        for frame in self.decoder.feed(data):
            if frame.type == TYPE_DATA:
                self.beats.append(frame.payload)
                self.beats_received += 1
            elif frame.type == TYPE_ERROR:
                code, count = decode_error(frame.payload)
                self.reports.append((code, count))
                self.device_errors[code] = count
                self.error_reports += 1
            elif frame.type == TYPE_INFO:
                self.infos.append(Info.decode(frame.payload))
            else:                                  # pragma: no cover - decoder filters types
                self.unexpected.append(TYPE_NAMES.get(frame.type, hex(frame.type)))

    def discard(self) -> int:
        """Drop queued output beats and error reports; return how many beats were dropped."""
        n = len(self.beats)
        self.beats.clear()
        self.reports.clear()
        return n

    def take_reports(self) -> list[tuple[int, int]]:
        """Device error reports ``(code, running count)`` received and not yet taken."""
        out = list(self.reports)
        self.reports.clear()
        return out

    def _check(self, rx_bad: int) -> None:
        if self.reports:
            raise DeviceError(self.take_reports())
        bad = self.decoder.crc_errors + self.decoder.malformed
        if bad != rx_bad:
            raise LinkError(f"{bad - rx_bad} corrupted frame(s) from the device "
                            f"(CRC or header check failed on the host)")

    # --- operations (generators)

    def op_send_raw(self, data: bytes) -> Op:
        """Send bytes as they are (diagnostics and tests)."""
        yield Write(bytes(data))

    def op_send_beats(self, rows) -> Op:
        """Send each row of ``rows`` (``uint8 [n, in_bytes]``) as one DATA frame."""
        rows = _rows(rows, "rows")
        if rows.shape[0]:
            yield Write(b"".join(encode_frame(TYPE_DATA, r.tobytes()) for r in rows))
            self.frames_sent += rows.shape[0]
            self.beats_sent += rows.shape[0]

    def op_wait(self, done: Callable[[], bool], timeout: float, what: str, *,
                strict: bool = True) -> Op:
        """Read until ``done()``; raise on silence longer than ``timeout`` (and, if ``strict``,
        on any error report or corrupted frame from the device)."""
        rx_bad = self.decoder.crc_errors + self.decoder.malformed
        while True:
            if strict:
                self._check(rx_bad)
            if done():
                return
            data = yield Read(timeout)
            if not data:
                raise LinkError(f"timed out after {timeout:g} s of silence waiting for {what}")
            self.ingest(data)

    def op_poll(self, timeout: float) -> Op:
        """Take in whatever arrives until the line has been silent for ``timeout``."""
        while True:
            data = yield Read(timeout)
            if not data:
                return
            self.ingest(data)

    def op_resync(self, quiet: float) -> Op:
        """Stay silent until the device has been quiet for ``quiet`` s, then drop everything
        received (beats, error reports): a clean start after the host or the device was
        interrupted mid-frame. ``quiet`` must exceed the device's inter-byte timeout
        (``BoardTop(timeout_bytes=1024)``: ~90 ms at 115200 baud), which abandons a half-received
        frame. Returns the number of output beats dropped."""
        yield from self.op_poll(quiet)
        self.decoder.reset()
        return self.discard()

    def op_recv_beats(self, n: int, out_bytes: int, timeout: float) -> Op:
        """Wait for ``n`` output beats of ``out_bytes`` each; return ``uint8 [n, out_bytes]``."""
        self.decoder.lengths[TYPE_DATA] = out_bytes
        yield from self.op_wait(lambda: len(self.beats) >= n, timeout,
                                f"{n} output beat(s) ({len(self.beats)} received)")
        return self._pop(n, out_bytes)

    def _pop(self, n: int, out_bytes: int) -> np.ndarray:
        out = np.empty((n, out_bytes), dtype=np.uint8)
        for k in range(n):
            payload = self.beats.popleft()
            if len(payload) != out_bytes:
                raise LinkError(f"device sent a {len(payload)}-byte output beat, expected "
                                f"{out_bytes}: is the right bitstream loaded?")
            out[k] = np.frombuffer(payload, dtype=np.uint8)
        return out

    def op_info(self, timeout: float) -> Op:
        """Ask the device what it is (:class:`~boards.link.Info`)."""
        self.infos.clear()
        yield Write(encode_frame(TYPE_INFO))
        self.frames_sent += 1
        yield from self.op_wait(lambda: bool(self.infos), timeout, "the INFO reply")
        return self.infos.popleft()

    def op_wait_reports(self, timeout: float) -> Op:
        """Wait for at least one device error report; return (and take) all received."""
        yield from self.op_wait(lambda: bool(self.reports), timeout, "an ERROR report",
                                strict=False)
        return self.take_reports()

    def op_run_vectors(self, in_rows, out_bytes: int, n_out: int, *, window: int | None,
                       timeout: float) -> Op:
        """Send every input beat, windowed, and collect ``n_out`` output beats."""
        in_rows = _rows(in_rows, "in_rows")
        n_in = in_rows.shape[0]
        if n_in == 0 or n_out <= 0:
            raise ValueError(f"need at least one input and one output beat, not {n_in} "
                             f"and {n_out}")
        groups = math.gcd(n_in, n_out)
        in_g, out_g = n_in // groups, n_out // groups
        if window is None:
            info = yield from self.op_info(timeout)
            if info.in_bytes != in_rows.shape[1] or info.out_bytes != out_bytes:
                raise LinkError(
                    f"the device takes {info.in_bytes}-byte input and gives {info.out_bytes}-"
                    f"byte output beats ({info.in_width}/{info.out_width} bits), but the "
                    f"vectors have {in_rows.shape[1]}/{out_bytes}: is the right bitstream "
                    f"loaded?")
            window = info.fifo_depth
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive int (input beats), not {window!r}")
        in_flight = max(1, window // in_g)          # whole groups
        if self.beats:
            raise LinkError(f"{len(self.beats)} output beat(s) from an earlier exchange are "
                            f"still queued; discard() them first")

        self.decoder.lengths[TYPE_DATA] = out_bytes
        out = np.empty((n_out, out_bytes), dtype=np.uint8)
        got = sent = 0                              # output beats / input groups
        while got < n_out:
            done = got // out_g
            stop = min(groups, done + in_flight)
            if sent < stop:
                yield from self.op_send_beats(in_rows[sent * in_g:stop * in_g])
                sent = stop
            need = min(n_out, (done + 1) * out_g) - got
            yield from self.op_wait(lambda need=need: len(self.beats) >= need, timeout,
                                    f"output beat {got + need - 1} of {n_out} "
                                    f"({sent * in_g} of {n_in} input beats sent)")
            take = min(len(self.beats), n_out - got)
            out[got:got + take] = self._pop(take, out_bytes)
            got += take
        return out


class _LinkAPI:
    """The public operations; ``_run`` makes them blocking or awaitable."""

    def __init__(self, transport):
        self.transport = transport
        self.protocol = LinkProtocol()

    @property
    def stats(self) -> LinkStats:
        return self.protocol.stats

    def take_reports(self) -> list[tuple[int, int]]:
        return self.protocol.take_reports()

    def discard(self) -> int:
        return self.protocol.discard()

    @property
    def queued_beats(self) -> int:
        return len(self.protocol.beats)

    def send_raw(self, data: bytes):
        return self._run(self.protocol.op_send_raw(data))

    def send_beats(self, rows):
        """Send ``rows`` (``uint8 [n, in_bytes]``), one DATA frame per beat (no windowing)."""
        return self._run(self.protocol.op_send_beats(rows))

    def recv_beats(self, n: int, out_bytes: int, timeout: float = DEFAULT_TIMEOUT):
        """Return the next ``n`` output beats, ``uint8 [n, out_bytes]``.

        Raises :class:`DeviceError` if the device reports a dropped frame first and
        :class:`LinkError` on a corrupted frame from the device or ``timeout`` s of silence.
        """
        return self._run(self.protocol.op_recv_beats(n, out_bytes, timeout))

    def info(self, timeout: float = DEFAULT_TIMEOUT):
        """Ask the device for its :class:`~boards.link.Info` (beat widths, FIFO depth)."""
        return self._run(self.protocol.op_info(timeout))

    def poll(self, timeout: float):
        """Take in whatever the device sends until ``timeout`` s of silence."""
        return self._run(self.protocol.op_poll(timeout))

    def resync(self, quiet: float = 0.25):
        """Start clean: wait for ``quiet`` s of silence, then drop whatever arrived (see
        :meth:`LinkProtocol.op_resync`). Call it once after opening a port."""
        return self._run(self.protocol.op_resync(quiet))

    def wait_reports(self, timeout: float = DEFAULT_TIMEOUT):
        """Wait for device error reports; return ``[(code, running count), ...]``."""
        return self._run(self.protocol.op_wait_reports(timeout))

    def run_vectors(self, in_rows, out_bytes: int, n_out: int, *, window: int | None = None,
                    timeout: float = DEFAULT_TIMEOUT):
        """See :func:`run_vectors`."""
        return self._run(self.protocol.op_run_vectors(in_rows, out_bytes, n_out, window=window,
                                                      timeout=timeout))


class HostLink(_LinkAPI):
    """Blocking host link over a transport with ``write(bytes)`` and ``read(timeout) -> bytes``."""

    def _run(self, op: Op):
        try:
            request = next(op)
            while True:
                if isinstance(request, Write):
                    self.transport.write(request.data)
                    request = op.send(None)
                else:
                    request = op.send(self.transport.read(request.timeout))
        except StopIteration as stop:
            return stop.value


class AsyncHostLink(_LinkAPI):
    """The same operations as :class:`HostLink`, awaitable, over an async transport."""

    async def _run(self, op: Op):
        try:
            request = next(op)
            while True:
                if isinstance(request, Write):
                    await self.transport.write(request.data)
                    request = op.send(None)
                else:
                    request = op.send(await self.transport.read(request.timeout))
        except StopIteration as stop:
            return stop.value


def run_vectors(link: _LinkAPI, in_rows, out_bytes: int, n_out: int, *,
                window: int | None = None, timeout: float = DEFAULT_TIMEOUT):
    """Run stimulus through the board and return its output beats, ``uint8 [n_out, out_bytes]``.

    Parameters
    ----------
    link : HostLink or AsyncHostLink
        (With an :class:`AsyncHostLink` the result is awaitable.)
    in_rows : uint8 [n_in, in_bytes]
        Input beats, rows of :func:`gen.payload.pack_beats`.
    out_bytes, n_out : int
        Bytes per output beat and how many output beats the inputs produce.
    window : int or None
        Most input beats unanswered at any time; default: the device's input FIFO depth (from an
        INFO exchange, which also checks the beat widths against the loaded bitstream).
    timeout : float
        Silence, in seconds, after which the run fails.

    Raises
    ------
    DeviceError
        The device dropped a frame (bad CRC, overflow, ...): the outputs would be incomplete.
    LinkError
        A timeout, a corrupted frame from the device, or beat widths that do not match.
    """
    return link.run_vectors(in_rows, out_bytes, n_out, window=window, timeout=timeout)


class SerialTransport:
    """A serial port through pyserial (8N1, no flow control).

    Parameters
    ----------
    port : str
        Device name, e.g. ``/dev/ttyUSB1`` (the iCEBreaker's second FTDI channel is the UART).
    baud : int
        Must match the bitstream (``build_bitstream(..., baud=...)``).
    """

    def __init__(self, port: str, baud: int = 115200):
        try:
            import serial
        except ImportError:
            raise LinkError("pyserial is not installed: pip install pyserial") from None
        try:
            self._port = serial.Serial(port, baud, bytesize=8, parity="N", stopbits=1,
                                       timeout=DEFAULT_TIMEOUT, rtscts=False, xonxoff=False)
        except serial.SerialException as exc:
            raise LinkError(f"cannot open serial port {port}: {exc}") from None
        self._port.reset_input_buffer()

    def write(self, data: bytes) -> None:
        self._port.write(data)

    def read(self, timeout: float) -> bytes:
        self._port.timeout = timeout
        first = self._port.read(1)
        if not first:
            return b""
        waiting = self._port.in_waiting
        return first + (self._port.read(waiting) if waiting else b"")

    def close(self) -> None:
        self._port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
