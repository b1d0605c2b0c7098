"""8N1 UART transmitter and receiver with ``amaranth.lib.stream`` byte interfaces.

Both take ``divisor``, the number of clock cycles per bit (e.g. 12 MHz / 115200 baud -> 104).
The line is idle high; a character is a start bit (0), eight data bits LSB first and one stop
bit (1). There is no flow control: a UART cannot push back on its peer, so :class:`UARTRx` has an
``overrun`` flag for a byte it had to drop because the previous one was still not taken.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import cdc, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MIN_DIVISOR", "MAX_DIVISOR", "check_divisor", "divisor_for", "UARTTx", "UARTRx"]

#: Fewest clocks per bit: the receiver needs room for its 2-flop synchronizer and mid-bit sample.
MIN_DIVISOR = 4
#: Most clocks per bit (24-bit counters): 1 baud at 16 MHz, far beyond any real use.
MAX_DIVISOR = (1 << 24) - 1


def check_divisor(divisor: object) -> int:
    """Validate a clocks-per-bit value; return it as an ``int``."""
    if isinstance(divisor, bool) or not isinstance(divisor, int):
        raise TypeError(f"divisor must be an int (clock cycles per bit), not {divisor!r}")
    if not MIN_DIVISOR <= divisor <= MAX_DIVISOR:
        raise ValueError(f"divisor must be {MIN_DIVISOR}..{MAX_DIVISOR} clock cycles per bit, "
                         f"not {divisor}")
    return divisor


def divisor_for(clk_freq: float, baud: int, *, tolerance: float = 0.02) -> int:
    """Clocks per bit for ``baud`` at ``clk_freq`` Hz; refuse a rate error above ``tolerance``.

    An 8N1 receiver samples the stop bit 9.5 bit times after the start edge, so the two ends may
    differ by about 5 % in total; 2 % for this end leaves the rest to the peer.
    """
    if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"baud must be a positive int, not {baud!r}")
    divisor = round(clk_freq / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"baud {baud} is too fast for a {clk_freq / 1e6:g} MHz clock "
                         f"(needs at least {MIN_DIVISOR} clock cycles per bit)")
    error = abs(clk_freq / divisor - baud) / baud
    if error > tolerance:
        raise ValueError(f"baud {baud} at {clk_freq / 1e6:g} MHz: divisor {divisor} gives a "
                         f"{error:.1%} rate error (more than {tolerance:.0%})")
    return check_divisor(divisor)


class UARTTx(wiring.Component):
    """8N1 transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, ``MIN_DIVISOR..MAX_DIVISOR``.

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send; a byte is taken when the transmitter is idle.
    tx : Out(1)
        Serial line, idle high.
    busy : Out(1)
        A character is on the line.
    """

    def __init__(self, divisor):
        self.divisor = check_divisor(divisor)
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shreg = Signal(10, init=0x3FF)       # stop . data[7:0] . start, sent LSB first
        bits_left = Signal(range(11))

        m.d.comb += [
            self.tx.eq(shreg[0]),
            self.busy.eq(bits_left != 0),
            self.i.ready.eq(bits_left == 0),
        ]
        with m.If(bits_left == 0):
            with m.If(self.i.valid):
                m.d.sync += [
                    shreg.eq(Cat(0, self.i.payload, 1)),
                    bits_left.eq(10),
                    timer.eq(self.divisor - 1),
                ]
        with m.Elif(timer == 0):
            m.d.sync += [
                shreg.eq(Cat(shreg[1:], 1)),
                bits_left.eq(bits_left - 1),
                timer.eq(self.divisor - 1),
            ]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m


class UARTRx(wiring.Component):
    """8N1 receiver: 2-flop synchronizer, start-bit check at mid-bit, mid-bit data sampling.

    A falling edge starts a character; half a bit later the line must still be low (otherwise it
    was a glitch and the receiver goes back to idle). Each data bit and the stop bit are then
    sampled one bit time apart, i.e. in the middle of the bit. A low stop bit is a framing error:
    the byte is dropped, ``framing_error`` pulses, and the receiver waits for the line to go high
    before it looks for the next start bit (so a held-low line, a "break", counts once).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, ``MIN_DIVISOR..MAX_DIVISOR``.

    Members
    -------
    rx : In(1)
        Serial line (asynchronous; synchronized here), idle high.
    o : Out(stream.Signature(8))
        Received bytes. ``valid`` stays high until the byte is taken.
    framing_error : Out(1)
        One-cycle pulse: a character ended with a low stop bit and was dropped.
    overrun : Out(1)
        One-cycle pulse: a byte arrived while the previous one was still not taken; the new one
        was dropped.
    """

    def __init__(self, divisor):
        self.divisor = check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "framing_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync = cdc.FFSynchronizer(self.rx, rx, init=1, stages=2)

        timer = Signal(range(self.divisor))
        shreg = Signal(8)
        bit = Signal(range(8))

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):
                    m.next = "IDLE"                    # glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [
                        shreg.eq(Cat(shreg[1:], rx)),
                        timer.eq(self.divisor - 1),
                        bit.eq(bit + 1),
                    ]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):
                    # Back to IDLE at mid stop bit: half a bit of slack for rate mismatch.
                    with m.If(self.o.valid & ~self.o.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += self.framing_error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m
