"""A board top-level around any stream core: UART host link in, core, UART host link out.

Data path::

    rx pin -> UARTRx -> Deframer -> input FIFO -> core.i        core.o -> Framer -> UARTTx -> tx pin
                          |  (CRC-checked beats only)                       ^
                          +-- error pulses, INFO requests --------------------+

Flow control: the UART has none, so the device cannot hold the host off. The host keeps at most
``fifo_depth`` input beats unanswered (:mod:`boards.host` does this, reading ``fifo_depth`` from
the INFO frame); the input FIFO then never overflows however long the core is held up by the
output UART. A beat that arrives at a full FIFO anyway is dropped and reported (``ERR_OVERFLOW``).

LEDs: ``led[0]`` is a heartbeat (1 Hz blink, so a loaded bitstream is visibly alive), ``led[1]``
lights for a quarter second on every reported error. On an amaranth-boards platform the
heartbeat goes to ``led_g`` (or ``led`` 0) and the error light to ``led_r`` (or ``led`` 1).

Clocking: the core runs directly from the board oscillator (12 MHz on the iCEBreaker, 25 MHz on
the ULX3S) with the platform's default ``sync`` domain; no PLL is instantiated. Both give an
exact-enough divisor for 115200 baud (104: +0.16 %, 217: +0.01 %), and a UART link is the
bottleneck long before the core's clock is.
"""

from __future__ import annotations

from amaranth.build import ResourceError
from amaranth.hdl import Cat, Elaboratable, Module, Shape, Signal, Value
from amaranth.lib import fifo, io, stream, wiring
from amaranth.lib.wiring import In, Out

from .link import INFO_VERSION, Deframer, Framer, Info
from .uart import UARTRx, UARTTx, check_divisor

__all__ = ["BoardTop", "SimTop", "core_widths"]


def core_widths(core) -> tuple[int, int]:
    """Payload widths of a stream core's ``i`` and ``o`` ports; check it has them."""
    members = getattr(getattr(core, "signature", None), "members", None)
    if members is None:
        raise TypeError(f"core must be a wiring.Component with stream ports 'i' and 'o', "
                        f"not {core!r}")
    widths = []
    for name, flow in (("i", In), ("o", Out)):
        member = members[name] if name in members else None
        if member is None or not member.is_signature \
                or not isinstance(member.signature, stream.Signature) or member.flow != flow:
            raise TypeError(f"core {type(core).__name__} needs a port {name!r} of type "
                            f"{flow.name}(stream.Signature(...)), not {member!r}")
        widths.append(Shape.cast(member.signature.members["payload"].shape).width)
    return widths[0], widths[1]


class BoardTop(Elaboratable):
    """UART host link around ``core``.

    Parameters
    ----------
    core : wiring.Component
        Any core with ``i: In(stream.Signature(...))`` and ``o: Out(stream.Signature(...))``.
    divisor : int
        Clock cycles per UART bit (see :func:`boards.uart.divisor_for`).
    fifo_depth : int
        Input beats buffered between the deframer and ``core.i`` (1..255); reported in INFO.
    timeout_bytes : int
        A frame that stops arriving for this many character times is abandoned (default 1024,
        ~90 ms at 115200 baud: far above USB-serial gaps, far below a human's patience).
    clk_freq : float or None
        Clock frequency in Hz, for the LED timing only. Default: the platform's clock, or
        ``2**22`` cycles per heartbeat half-period standalone.

    Attributes
    ----------
    rx : Signal, in
    tx : Signal, out
    led : Signal(2), out
        Standalone (``platform is None``) ports; under a platform they are wired to the board's
        ``uart`` and LED resources.
    in_width, out_width : int
        The core's payload widths.
    info : Info
        What the device reports in its INFO frame.
    """

    def __init__(self, core, *, divisor: int, fifo_depth: int = 4, timeout_bytes: int = 1024,
                 clk_freq: float | None = None):
        self.core = core
        self.in_width, self.out_width = core_widths(core)
        self.divisor = check_divisor(divisor)
        if isinstance(fifo_depth, bool) or not isinstance(fifo_depth, int) \
                or not 1 <= fifo_depth <= 255:
            raise ValueError(f"fifo_depth must be an int in 1..255, not {fifo_depth!r}")
        if isinstance(timeout_bytes, bool) or not isinstance(timeout_bytes, int) \
                or timeout_bytes < 2:
            raise ValueError(f"timeout_bytes must be an int >= 2, not {timeout_bytes!r}")
        self.fifo_depth = fifo_depth
        self.timeout_bytes = timeout_bytes
        self.clk_freq = clk_freq
        self.info = Info(INFO_VERSION, fifo_depth, self.in_width, self.out_width)
        self.rx = Signal(init=1)
        self.tx = Signal(init=1)
        self.led = Signal(2)

    @staticmethod
    def _request_led(platform, *candidates):
        for name, number in candidates:
            try:
                return platform.request(name, number, dir="-")
            except ResourceError:
                continue
        return None

    def elaborate(self, platform):
        m = Module()
        clk_freq = self.clk_freq
        if clk_freq is None and platform is not None:
            clk_freq = platform.default_clk_frequency

        m.submodules.uart_rx = rx = UARTRx(self.divisor)
        m.submodules.uart_tx = tx = UARTTx(self.divisor)
        m.submodules.deframer = deframer = Deframer(
            self.in_width, timeout_cycles=self.timeout_bytes * 10 * self.divisor)
        m.submodules.framer = framer = Framer(self.out_width, info=self.info)
        m.submodules.in_fifo = in_fifo = fifo.SyncFIFOBuffered(width=self.in_width,
                                                               depth=self.fifo_depth)
        m.submodules.core = core = self.core

        m.d.comb += [
            rx.rx.eq(self.rx),
            self.tx.eq(tx.tx),
            # UART -> deframer: the deframer takes a byte every cycle.
            deframer.i.payload.eq(rx.o.payload),
            deframer.i.valid.eq(rx.o.valid),
            rx.o.ready.eq(deframer.i.ready),
            # deframer -> FIFO -> core.i
            in_fifo.w_data.eq(deframer.o.payload),
            in_fifo.w_en.eq(deframer.o.valid),
            deframer.o.ready.eq(in_fifo.w_rdy),
            Value.cast(core.i.payload).eq(in_fifo.r_data),
            core.i.valid.eq(in_fifo.r_rdy),
            in_fifo.r_en.eq(core.i.ready),
            # core.o -> framer -> UART
            framer.d.payload.eq(Value.cast(core.o.payload)),
            framer.d.valid.eq(core.o.valid),
            core.o.ready.eq(framer.d.ready),
            framer.info_request.eq(deframer.info_request),
            framer.errors.eq(Cat(deframer.crc_error, deframer.overflow | rx.overrun,
                                 deframer.malformed, deframer.timeout, rx.framing_error)),
            tx.i.payload.eq(framer.o.payload),
            tx.i.valid.eq(framer.o.valid),
            framer.o.ready.eq(tx.i.ready),
        ]

        # LEDs: heartbeat and a stretched error pulse.
        half_period = int(clk_freq // 2) if clk_freq else 1 << 22
        stretch = int(clk_freq // 4) if clk_freq else 1 << 20
        beat = Signal(range(max(half_period, 2)))
        blink = Signal()
        with m.If(beat == 0):
            m.d.sync += [beat.eq(half_period - 1), blink.eq(~blink)]
        with m.Else():
            m.d.sync += beat.eq(beat - 1)
        err_timer = Signal(range(stretch + 1))
        with m.If(framer.errors.any()):
            m.d.sync += err_timer.eq(stretch)
        with m.Elif(err_timer != 0):
            m.d.sync += err_timer.eq(err_timer - 1)
        m.d.comb += self.led.eq(Cat(blink, err_timer != 0))

        if platform is not None:
            uart = platform.request("uart", 0, dir="-")
            m.submodules.rx_buffer = rx_buffer = io.Buffer("i", uart.rx)
            m.submodules.tx_buffer = tx_buffer = io.Buffer("o", uart.tx)
            m.d.comb += [self.rx.eq(rx_buffer.i), tx_buffer.o.eq(self.tx)]
            leds = [self._request_led(platform, ("led_g", 0), ("led", 0)),
                    self._request_led(platform, ("led_r", 0), ("led", 1))]
            for k, port in enumerate(leds):
                if port is not None:
                    m.submodules[f"led_buffer_{k}"] = buffer = io.Buffer("o", port)
                    m.d.comb += buffer.o.eq(self.led[k])
        return m


class SimTop(wiring.Component):
    """:class:`BoardTop` with plain ports, for ``verilog.convert`` and co-simulation.

    Ports: ``rx`` (in, idle high), ``tx`` (out), ``led`` (out, 2 bits: heartbeat, error), plus
    ``clk`` and ``rst`` (synchronous, active high) added by the conversion. Keyword arguments go
    to :class:`BoardTop`.
    """

    def __init__(self, core, *, divisor: int, **kwargs):
        self.board = BoardTop(core, divisor=divisor, **kwargs)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "led": Out(2),
        })

    @property
    def info(self) -> Info:
        return self.board.info

    def elaborate(self, platform):
        m = Module()
        m.submodules.board = board = self.board
        m.d.comb += [board.rx.eq(self.rx), self.tx.eq(board.tx), self.led.eq(board.led)]
        return m
