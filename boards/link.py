"""The host link: one framed protocol over a UART, defined once for the gateware and the host.

Frame format (all multi-byte fields little-endian)::

    +------+------+--------+---------------------+--------+
    | SOF  | type | length | payload             | CRC-16 |
    | 0xA5 | u8   | u16 LE | ``length`` bytes    | u16 LE |
    +------+------+--------+---------------------+--------+

The CRC is CRC-16/IBM-3740, better known as CRC-16/CCITT-FALSE (``amaranth.lib.crc.catalog.
CRC16_IBM_3740``: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR, check value
0x29B1 for ``b"123456789"``). It covers ``type``, ``length`` and the payload, not the SOF byte.
The host computes it with that catalog entry's software model (:func:`crc16`) and the gateware
with its hardware :class:`~amaranth.lib.crc.Processor`: one definition for both ends.

Frame types and their payloads:

========  =====  ==========  ====================================================================
type      value  direction   payload
========  =====  ==========  ====================================================================
DATA      0x44   both        one stream beat: ``ceil(width / 8)`` little-endian bytes, exactly a
                             row of :func:`gen.payload.pack_beats` (host -> device: a beat for the
                             core's ``i``; device -> host: a beat from its ``o``). Padding bits
                             above the payload width are sent as 0 and ignored on receipt.
INFO      0x49   both        host -> device: empty (a request). device -> host: 6 bytes
                             ``version u8, fifo_depth u8, in_width u16, out_width u16`` (widths in
                             bits): what the loaded bitstream expects. See :class:`Info`.
ERROR     0x45   dev->host   3 bytes ``code u8, count u16``: the device counted an error of kind
                             ``code``; ``count`` is its running total of that kind (mod 2**16).
                             Several errors of one kind may be reported by one frame.
========  =====  ==========  ====================================================================

Error codes: :data:`ERR_CRC` (a frame failed its CRC: it was dropped, never computed on),
:data:`ERR_OVERFLOW` (a good DATA frame arrived while the device's input FIFO was full: dropped),
:data:`ERR_MALFORMED` (unknown type, or a length that type cannot have: the frame is abandoned at
its header), :data:`ERR_TIMEOUT` (a frame stopped arriving mid-way: abandoned),
:data:`ERR_FRAMING` (a UART character had a low stop bit).

Resynchronisation: a receiver hunts for SOF; after a bad CRC, a malformed header or a timeout it
hunts again. The host decoder rescans from the byte after the failed SOF (so a real frame hidden
inside garbage is still found); the gateware deframer simply hunts from the next byte it receives.

This module holds the Python side (:func:`encode_frame`, :class:`FrameDecoder`) and the gateware
side (:class:`Deframer`, :class:`Framer`). It imports amaranth only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import crc, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "SOF", "TYPE_DATA", "TYPE_INFO", "TYPE_ERROR", "TYPE_NAMES", "CRC_ALGORITHM", "CRC",
    "HEADER_BYTES", "CRC_BYTES", "OVERHEAD_BYTES", "MAX_PAYLOAD",
    "ERR_CRC", "ERR_OVERFLOW", "ERR_MALFORMED", "ERR_TIMEOUT", "ERR_FRAMING", "ERROR_NAMES",
    "ERROR_CODES", "ERROR_PAYLOAD_BYTES", "INFO_VERSION", "INFO_PAYLOAD_BYTES",
    "beat_bytes", "crc16", "encode_frame", "encode_error", "decode_error", "Frame", "Info",
    "FrameDecoder", "Deframer", "Framer",
]

SOF = 0xA5
TYPE_DATA = 0x44        # 'D'
TYPE_INFO = 0x49        # 'I'
TYPE_ERROR = 0x45       # 'E'
TYPE_NAMES = {TYPE_DATA: "DATA", TYPE_INFO: "INFO", TYPE_ERROR: "ERROR"}

#: CRC-16/IBM-3740 (CCITT-FALSE): poly 0x1021, init 0xFFFF, unreflected, no final XOR.
CRC_ALGORITHM = crc.catalog.CRC16_IBM_3740
CRC = CRC_ALGORITHM(data_width=8)

HEADER_BYTES = 4        # SOF, type, length (u16)
CRC_BYTES = 2
OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES
MAX_PAYLOAD = 0xFFFF

ERR_CRC = 1
ERR_OVERFLOW = 2
ERR_MALFORMED = 3
ERR_TIMEOUT = 4
ERR_FRAMING = 5
ERROR_NAMES = {ERR_CRC: "crc", ERR_OVERFLOW: "overflow", ERR_MALFORMED: "malformed",
               ERR_TIMEOUT: "timeout", ERR_FRAMING: "framing"}
ERROR_CODES = tuple(ERROR_NAMES)
ERROR_PAYLOAD_BYTES = 3

INFO_VERSION = 1
INFO_PAYLOAD_BYTES = 6


def beat_bytes(width: int) -> int:
    """Bytes of one beat of a ``width``-bit payload on the link (``ceil(width / 8)``)."""
    return (width + 7) // 8


# --------------------------------------------------------------------------------------------
# Python side


def crc16(data: bytes) -> int:
    """The link's CRC of ``data`` (the software model of :data:`CRC`)."""
    return CRC.compute(data)


def encode_frame(type_: int, payload: bytes = b"") -> bytes:
    """One frame: SOF, ``type_``, length, ``payload``, CRC."""
    if not 0 <= type_ <= 0xFF:
        raise ValueError(f"frame type must be a byte, not {type_!r}")
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte limit")
    body = bytes([type_]) + struct.pack("<H", len(payload)) + payload
    return bytes([SOF]) + body + struct.pack("<H", crc16(body))


def encode_error(code: int, count: int) -> bytes:
    """The payload of an ERROR frame."""
    return struct.pack("<BH", code, count & 0xFFFF)


def decode_error(payload: bytes) -> tuple[int, int]:
    """``(code, count)`` from an ERROR frame's payload."""
    if len(payload) != ERROR_PAYLOAD_BYTES:
        raise ValueError(f"ERROR payload must be {ERROR_PAYLOAD_BYTES} bytes, not {len(payload)}")
    code, count = struct.unpack("<BH", payload)
    return code, count


@dataclass(frozen=True)
class Frame:
    type: int
    payload: bytes

    def __repr__(self):
        name = TYPE_NAMES.get(self.type, f"0x{self.type:02X}")
        return f"Frame({name}, {self.payload.hex()})"


@dataclass(frozen=True)
class Info:
    """What a device reports in an INFO frame: link version, input FIFO depth, beat widths."""

    version: int
    fifo_depth: int
    in_width: int
    out_width: int

    @property
    def in_bytes(self) -> int:
        return beat_bytes(self.in_width)

    @property
    def out_bytes(self) -> int:
        return beat_bytes(self.out_width)

    def encode(self) -> bytes:
        return struct.pack("<BBHH", self.version, self.fifo_depth, self.in_width, self.out_width)

    @classmethod
    def decode(cls, payload: bytes) -> Info:
        if len(payload) != INFO_PAYLOAD_BYTES:
            raise ValueError(f"INFO payload must be {INFO_PAYLOAD_BYTES} bytes, "
                             f"not {len(payload)}")
        return cls(*struct.unpack("<BBHH", payload))


#: Payload lengths a device may send (``None``: any length; set it with ``data_bytes``).
DEVICE_LENGTHS = {TYPE_DATA: None, TYPE_INFO: INFO_PAYLOAD_BYTES, TYPE_ERROR: ERROR_PAYLOAD_BYTES}


class FrameDecoder:
    """Incremental frame decoder: feed bytes as they arrive, get whole, CRC-checked frames.

    Parameters
    ----------
    lengths : dict or None
        Allowed payload length per frame type (``None`` as a value: any length up to
        ``max_payload``). A header with a type not in the dict, or a length it does not allow, is
        malformed. Default: what a device sends (:data:`DEVICE_LENGTHS`).
    data_bytes : int or None
        If given, the exact length of DATA payloads (overrides ``lengths``). Knowing it lets a
        corrupted length field be caught at the header instead of swallowing later frames.
    max_payload : int
        Longest payload accepted for a type whose length is ``None``.

    Attributes
    ----------
    crc_errors : int
        Frames whose CRC did not match (dropped).
    malformed : int
        Headers with an unknown type or an impossible length (dropped).
    skipped : int
        Bytes discarded while hunting for SOF.
    frames : int
        Good frames decoded.
    """

    def __init__(self, lengths: dict | None = None, *, data_bytes: int | None = None,
                 max_payload: int = MAX_PAYLOAD):
        self.lengths = dict(DEVICE_LENGTHS if lengths is None else lengths)
        if data_bytes is not None:
            self.lengths[TYPE_DATA] = data_bytes
        self.max_payload = max_payload
        self._buf = bytearray()
        self.crc_errors = self.malformed = self.skipped = self.frames = 0

    @property
    def pending(self) -> int:
        """Bytes held back: a frame that has started but not yet completed."""
        return len(self._buf)

    def reset(self) -> None:
        """Drop any partial frame (e.g. after a long silence)."""
        self.skipped += len(self._buf)
        self._buf.clear()

    def _length_ok(self, type_: int, length: int) -> bool:
        if type_ not in self.lengths:
            return False
        want = self.lengths[type_]
        return length <= self.max_payload if want is None else length == want

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return the frames they complete, in order."""
        buf = self._buf
        buf += data
        out = []
        while buf:
            start = buf.find(SOF)
            if start < 0:
                self.skipped += len(buf)
                buf.clear()
                break
            if start:
                self.skipped += start
                del buf[:start]
            if len(buf) < HEADER_BYTES:
                break
            type_, length = buf[1], buf[2] | buf[3] << 8
            if not self._length_ok(type_, length):
                self.malformed += 1
                self.skipped += 1
                del buf[:1]                      # rescan from the byte after this SOF
                continue
            total = OVERHEAD_BYTES + length
            if len(buf) < total:
                break
            body = bytes(buf[1:HEADER_BYTES + length])
            received = buf[total - 2] | buf[total - 1] << 8
            if crc16(body) != received:
                self.crc_errors += 1
                self.skipped += 1
                del buf[:1]
                continue
            out.append(Frame(type_, bytes(buf[HEADER_BYTES:HEADER_BYTES + length])))
            self.frames += 1
            del buf[:total]
        return out


# --------------------------------------------------------------------------------------------
# Gateware side


class Deframer(wiring.Component):
    """UART bytes -> CRC-checked beats for a core's ``i`` stream.

    Accepts DATA frames of exactly ``beat_bytes(width)`` payload bytes and empty INFO requests.
    The payload is assembled in a shift register; only when the CRC matches is the beat pushed
    to ``o`` (one cycle, ``valid`` high). ``o`` has no flow control towards the UART: if ``o.ready``
    is low at that moment the beat is dropped and ``overflow`` pulses. A bad CRC drops the frame
    and pulses ``crc_error``. An unknown type or a wrong length pulses ``malformed`` at the header
    and the deframer hunts for SOF again; so does a frame that stops arriving for
    ``timeout_cycles`` (``timeout``).

    Parameters
    ----------
    width : int
        Payload bits of one beat.
    timeout_cycles : int
        Clock cycles of silence inside a frame after which it is abandoned.

    Members
    -------
    i : In(stream.Signature(8))
        Received bytes; always ready.
    o : Out(stream.Signature(width))
        Good beats; pushed for one cycle, dropped if ``ready`` is low.
    info_request : Out(1)
        Pulse: a good INFO request arrived.
    crc_error, overflow, malformed, timeout : Out(1)
        One-cycle error pulses.
    """

    def __init__(self, width: int, *, timeout_cycles: int):
        if not isinstance(width, int) or not 1 <= width <= 8 * MAX_PAYLOAD:
            raise ValueError(f"width must be 1..{8 * MAX_PAYLOAD} bits, not {width!r}")
        if not isinstance(timeout_cycles, int) or timeout_cycles < 1:
            raise ValueError(f"timeout_cycles must be a positive int, not {timeout_cycles!r}")
        self.width = width
        self.nbytes = beat_bytes(width)
        self.timeout_cycles = timeout_cycles
        super().__init__({
            "i": In(stream.Signature(8)),
            "o": Out(stream.Signature(width)),
            "info_request": Out(1),
            "crc_error": Out(1),
            "overflow": Out(1),
            "malformed": Out(1),
            "timeout": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc_proc = CRC.create()

        byte = self.i.payload
        got = Signal()
        m.d.comb += [self.i.ready.eq(1), got.eq(self.i.valid), crc_proc.data.eq(byte)]

        type_ = Signal(8)
        len_lo = Signal(8)
        crc_lo = Signal(8)
        shreg = Signal(8 * self.nbytes)
        count = Signal(range(max(self.nbytes, 2)))
        timer = Signal(range(self.timeout_cycles + 1))
        length = Cat(len_lo, byte)
        m.d.comb += self.o.payload.eq(shreg[:self.width])

        def expire():
            # Inter-byte timeout inside a frame (HUNT waits forever): abandon the frame.
            with m.Elif(timer == 0):
                m.d.comb += self.timeout.eq(1)
                m.next = "HUNT"

        with m.FSM() as fsm:
            with m.State("HUNT"):
                with m.If(got & (byte == SOF)):
                    m.d.comb += crc_proc.start.eq(1)
                    m.next = "TYPE"
            with m.State("TYPE"):
                with m.If(got):
                    m.d.sync += type_.eq(byte)
                    m.d.comb += crc_proc.valid.eq(1)
                    m.next = "LEN_LO"
                expire()
            with m.State("LEN_LO"):
                with m.If(got):
                    m.d.sync += len_lo.eq(byte)
                    m.d.comb += crc_proc.valid.eq(1)
                    m.next = "LEN_HI"
                expire()
            with m.State("LEN_HI"):
                with m.If(got):
                    m.d.comb += crc_proc.valid.eq(1)
                    m.d.sync += count.eq(0)
                    with m.If((type_ == TYPE_DATA) & (length == self.nbytes)):
                        m.next = "PAYLOAD"
                    with m.Elif((type_ == TYPE_INFO) & (length == 0)):
                        m.next = "CRC_LO"
                    with m.Else():
                        m.d.comb += self.malformed.eq(1)
                        m.next = "HUNT"
                expire()
            with m.State("PAYLOAD"):
                with m.If(got):
                    m.d.comb += crc_proc.valid.eq(1)
                    m.d.sync += [shreg.eq(Cat(shreg[8:], byte)), count.eq(count + 1)]
                    with m.If(count == self.nbytes - 1):
                        m.next = "CRC_LO"
                expire()
            with m.State("CRC_LO"):
                with m.If(got):
                    m.d.sync += crc_lo.eq(byte)
                    m.next = "CRC_HI"
                expire()
            with m.State("CRC_HI"):
                with m.If(got):
                    with m.If(Cat(crc_lo, byte) != crc_proc.crc):
                        m.d.comb += self.crc_error.eq(1)
                    with m.Elif(type_ == TYPE_DATA):
                        m.d.comb += self.o.valid.eq(1)
                        with m.If(~self.o.ready):
                            m.d.comb += self.overflow.eq(1)
                    with m.Else():
                        m.d.comb += self.info_request.eq(1)
                    m.next = "HUNT"
                expire()

        with m.If(fsm.ongoing("HUNT") | got):
            m.d.sync += timer.eq(self.timeout_cycles)
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        return m


class Framer(wiring.Component):
    """Core ``o`` beats, INFO replies and error reports -> UART bytes, one frame at a time.

    Between frames the framer picks, in this order: a pending error report (lowest code first),
    a pending INFO reply, a DATA beat from ``d``. Error pulses are counted (16-bit, wrapping) and
    marked pending; the report carries the running count when it is sent, so errors that arrive
    while the line is busy are coalesced into one report whose count says how many there were.

    Parameters
    ----------
    width : int
        Payload bits of one ``d`` beat.
    info : Info
        The INFO reply payload (constant).

    Members
    -------
    d : In(stream.Signature(width))
        Beats to send as DATA frames.
    info_request : In(1)
        Pulse: send an INFO frame.
    errors : In(len(ERROR_CODES))
        Error pulses; bit ``k`` is error code ``k + 1``.
    o : Out(stream.Signature(8))
        Bytes for the UART transmitter.
    """

    def __init__(self, width: int, *, info: Info):
        if not isinstance(width, int) or not 1 <= width <= 8 * MAX_PAYLOAD:
            raise ValueError(f"width must be 1..{8 * MAX_PAYLOAD} bits, not {width!r}")
        self.width = width
        self.nbytes = beat_bytes(width)
        self.info = info
        super().__init__({
            "d": In(stream.Signature(width)),
            "info_request": In(1),
            "errors": In(len(ERROR_CODES)),
            "o": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc_proc = CRC.create()
        n_codes = len(ERROR_CODES)
        reg_bytes = max(self.nbytes, INFO_PAYLOAD_BYTES, ERROR_PAYLOAD_BYTES)

        counts = [Signal(16, name=f"count_{ERROR_NAMES[c]}") for c in ERROR_CODES]
        pending = Signal(n_codes)
        info_pending = Signal()
        for k in range(n_codes):
            with m.If(self.errors[k]):
                m.d.sync += counts[k].eq(counts[k] + 1)

        type_ = Signal(8)
        length = Signal(16)
        shreg = Signal(8 * reg_bytes)
        count = Signal(16)
        handshake = self.o.valid & self.o.ready
        m.d.comb += crc_proc.data.eq(self.o.payload)

        clear = Signal(n_codes)          # reports loaded this cycle
        clear_info = Signal()
        with m.FSM():
            with m.State("IDLE"):
                with m.If(pending.any()):
                    for k in reversed(range(n_codes)):   # last assignment wins: lowest code
                        with m.If(pending[k]):
                            m.d.sync += [
                                type_.eq(TYPE_ERROR),
                                length.eq(ERROR_PAYLOAD_BYTES),
                                shreg.eq(Cat(Const(ERROR_CODES[k], 8), counts[k])),
                            ]
                            m.d.comb += clear.eq(1 << k)
                    m.d.comb += crc_proc.start.eq(1)
                    m.next = "SOF"
                with m.Elif(info_pending):
                    m.d.sync += [
                        type_.eq(TYPE_INFO),
                        length.eq(INFO_PAYLOAD_BYTES),
                        shreg.eq(int.from_bytes(self.info.encode(), "little")),
                    ]
                    m.d.comb += [clear_info.eq(1), crc_proc.start.eq(1)]
                    m.next = "SOF"
                with m.Elif(self.d.valid):
                    m.d.comb += [self.d.ready.eq(1), crc_proc.start.eq(1)]
                    m.d.sync += [
                        type_.eq(TYPE_DATA),
                        length.eq(self.nbytes),
                        shreg.eq(self.d.payload),
                    ]
                    m.next = "SOF"
            with m.State("SOF"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(SOF)]
                with m.If(self.o.ready):
                    m.next = "TYPE"
            with m.State("TYPE"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(type_),
                             crc_proc.valid.eq(handshake)]
                with m.If(self.o.ready):
                    m.next = "LEN_LO"
            with m.State("LEN_LO"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(length[:8]),
                             crc_proc.valid.eq(handshake)]
                with m.If(self.o.ready):
                    m.next = "LEN_HI"
            with m.State("LEN_HI"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(length[8:]),
                             crc_proc.valid.eq(handshake)]
                with m.If(self.o.ready):
                    m.d.sync += count.eq(0)
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(shreg[:8]),
                             crc_proc.valid.eq(handshake)]
                with m.If(self.o.ready):
                    m.d.sync += [shreg.eq(shreg >> 8), count.eq(count + 1)]
                    with m.If(count == length - 1):
                        m.next = "CRC_LO"
            with m.State("CRC_LO"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(crc_proc.crc[:8])]
                with m.If(self.o.ready):
                    m.next = "CRC_HI"
            with m.State("CRC_HI"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(crc_proc.crc[8:])]
                with m.If(self.o.ready):
                    m.next = "IDLE"

        # Pending flags: a pulse in the same cycle as the load keeps the report pending.
        m.d.sync += [
            pending.eq((pending & ~clear) | self.errors),
            info_pending.eq((info_pending & ~clear_info) | self.info_request),
        ]
        return m
