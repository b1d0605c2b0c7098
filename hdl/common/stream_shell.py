"""The stream edge of a free-running datapath: registered input, group tracking, credited FIFO."""

from amaranth.hdl import Signal
from amaranth.lib import fifo

__all__ = ["stream_shell"]


def stream_shell(m, i, o, *, result_valid, result, depth):
    """Wrap a free-running datapath (no enables, no backpressure inside) in stream ports.

    Each accepted input beat is registered and offered to the datapath with ``valid``; ``first``
    marks the first beat after reset or after a beat with ``last`` set (``i.payload.last``), so a
    group is the run of beats up to and including a ``last``. The datapath pulses
    ``result_valid`` with ``result`` once per group, some fixed number of cycles later. Results go
    into a FIFO of ``depth`` entries; ``i.ready`` is high only while the FIFO has room for every
    group already accepted whose result has not been written yet (a credit count), so no result
    is ever dropped and ``o.ready`` never has to reach into the datapath. ``depth`` must exceed
    the datapath latency for the input to run at full rate behind an always-ready consumer.

    Parameters
    ----------
    m : Module
    i, o : stream interfaces
        ``i.payload`` must have a ``last`` field; ``o.payload`` is written from ``result``.
    result_valid : Value
    result : Value
        As wide as ``o.payload``.
    depth : int

    Returns
    -------
    valid, first, last : Signal
        Control of the registered beat (``valid`` for one cycle per accepted beat).
    payload : Signal
        The registered input payload (don't-care while ``valid`` is low).
    """
    m.submodules.results = out = fifo.SyncFIFOBuffered(width=len(result), depth=depth)
    # Free FIFO entries not yet promised to an accepted group: a group's last beat takes one,
    # a result read from the FIFO gives one back (a result written moves from promised to
    # stored, which changes nothing). One register, so i.ready is a short path.
    credits = Signal(range(depth + 1), init=depth)
    take = i.valid & i.ready
    m.d.comb += i.ready.eq(credits != 0)
    m.d.sync += credits.eq(credits - (take & i.payload.last) + (out.r_rdy & o.ready))

    first = Signal(init=1)                 # the next accepted beat starts a group
    with m.If(take):
        m.d.sync += first.eq(i.payload.last)
    valid, start, last = Signal(name="in_valid"), Signal(name="in_first"), Signal(name="in_last")
    payload = Signal.like(i.payload, name="in_payload")
    m.d.sync += [valid.eq(take), start.eq(first), last.eq(i.payload.last),
                 payload.eq(i.payload)]
    m.d.comb += [
        out.w_en.eq(result_valid),
        out.w_data.eq(result),
        o.valid.eq(out.r_rdy),
        o.payload.as_value().eq(out.r_data),
        out.r_en.eq(o.ready),
    ]
    return valid, start, last, payload
