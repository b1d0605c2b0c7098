"""The stream edge of a free-running datapath: registered input, group tracking, credited FIFO."""

from amaranth.hdl import Mux, Signal, unsigned
from amaranth.lib.memory import Memory

from .ecp5_ebr import EBR_DEPTH, ebr_ram
from .params import check_choice

__all__ = ["RESULT_RAMS", "extra_read_cycles", "stream_shell"]

#: Where the result FIFO lives: ``"generic"`` (an inferred memory: LUT RAM with the output
#: register, else whatever synthesis picks) or ``"ecp5-ebr"`` (an ECP5 block RAM with its own
#: output register, :mod:`hdl.common.ecp5_ebr`; ECP5 only).
RESULT_RAMS = ("generic", "ecp5-ebr")


def extra_read_cycles(ram):
    """Cycles the result FIFO's read takes beyond the output register's one: 1 for
    ``"ecp5-ebr"`` (the block's address register), else 0. The FIFO has as many entries more
    than ``depth``, and a core's latency as many cycles more."""
    return 1 if check_choice("ram", ram, RESULT_RAMS) == "ecp5-ebr" else 0


def _step(up, down):
    """``up - down`` as one signed addend in -1..1: a counter update is then one carry chain,
    not a subtract and an add in series (the credit counter was a critical path at 200 MHz)."""
    return Mux(up == down, 0, Mux(up, 1, -1))


def _nonzero_counter(m, name, init, limit, up, down):
    """A count of events (``init`` at reset; ``up`` adds one, ``down`` takes one; it stays in
    ``0..limit``) as one register, next cycle's value of ``count != 0``.

    ``up`` and ``down`` may come from the ports (a take of ``i``, ``o.ready``): they reach no
    adder. The count register adds the events one cycle late, from registers, and the flag's
    next value is a mux of compares of that register. (With the ports' events in the adder,
    the upstream's or the consumer's register -> event -> step -> carry chain was a critical
    path of mx-dot at 200 MHz, 5.0-5.5 ns, 3-4 ns of it routing: those registers are placed
    wherever their own logic is.)"""
    up_r, down_r = Signal(name=f"{name}_up"), Signal(name=f"{name}_down")
    # count = true count - up_r + down_r, so it is in -1 .. limit + 1.
    count = Signal(range(-1, limit + 2), init=init, name=name)
    flag = Signal(init=init != 0, name=f"{name}_nonzero")
    m.d.sync += [up_r.eq(up), down_r.eq(down), count.eq(count + _step(up_r, down_r))]
    rises, falls = up_r & ~down_r, down_r & ~up_r
    # count == k for k in -1..2, registered beside it (from the compares of its value now and
    # the step it is taking, all registers), so the flag's compares are one LUT level.
    equals = {k: Signal(name=f"{name}_is{k}".replace("-", "m"), init=init == k)
              for k in range(-1, 3)}
    m.d.sync += [eq.eq(Mux(rises, count == k - 1, Mux(falls, count == k + 1, count == k)))
                 for k, eq in equals.items()]
    # The true count compared with 0 and 1.
    is_zero = Mux(rises, equals[-1], Mux(falls, equals[1], equals[0]))
    is_one = Mux(rises, equals[0], Mux(falls, equals[2], equals[1]))
    # Next cycle's true count is nonzero unless it is 0 and stays, or 1 and goes down.
    m.d.sync += flag.eq(Mux(up & ~down, 1, Mux(down & ~up, ~is_zero & ~is_one, ~is_zero)))
    return flag


def stream_shell(m, i, o, *, result_valid, result, depth, last=None, accept=1,
                 output_register=False, ram="generic"):
    """Wrap a free-running datapath (no enables, no backpressure inside) in stream ports.

    Each accepted input beat is registered and offered to the datapath with ``valid``; ``first``
    marks the first beat after reset or after a beat with ``last`` set (``i.payload.last``), so a
    group is the run of beats up to and including a ``last``. The datapath pulses
    ``result_valid`` with ``result`` once per group, some fixed number of cycles later. Results go
    into a FIFO of ``depth`` entries; ``i.ready`` is high only while the FIFO has room for every
    group already accepted whose result has not been written yet (a credit count), so no result
    is ever dropped and ``o.ready`` never has to reach into the datapath. ``depth`` must exceed
    the datapath latency for the input to run at full rate behind an always-ready consumer.

    ``last`` overrides ``i.payload.last`` (e.g. ``1`` when every beat is its own group, or a
    beat-kind compare when some beats, such as weight loads, produce no result and take no
    credit); ``accept`` is ANDed into ``i.ready`` (e.g. to hold a beat until the datapath has
    drained), and may depend on ``i.payload`` but never on ``o.ready``.

    ``output_register`` puts a register between the FIFO and ``o`` (one cycle more latency, the
    same throughput): ``o.payload`` and ``o.valid`` then come straight from flip-flops instead of
    through the LUT RAM read and the mux of its banks (5.8 ns on the ECP5-85F behind a FIFO of
    more than 16 entries, the critical path of mx-dot once its datapath was faster), and the FIFO
    stays in LUT RAM at any depth.

    ``ram="ecp5-ebr"`` puts the FIFO into ECP5 block RAM and ``o.payload`` comes from the
    block's output register (``output_register`` does not apply): no LUT4 for the storage, its
    read mux or an output register, and one cycle more latency than with ``output_register``.
    The FIFO then has ``depth + 1`` entries, for that cycle.

    Parameters
    ----------
    m : Module
    i, o : stream interfaces
        ``i.payload`` must have a ``last`` field unless ``last`` is given; ``o.payload`` is
        written from ``result``.
    result_valid : Value
    result : Value
        As wide as ``o.payload``.
    depth : int
    ram : {"generic", "ecp5-ebr"}
        See :data:`RESULT_RAMS`.

    Returns
    -------
    valid, first, last : Signal
        Control of the registered beat (``valid`` for one cycle per accepted beat).
    payload : Signal
        The registered input payload (don't-care while ``valid`` is low).
    """
    # Result FIFO: ``depth`` entries of LUT RAM, read asynchronously at the read pointer, so
    # ``o.payload`` needs no output register (and no load enable fanning out to every payload
    # bit). The credits below guarantee a free entry for every result, so the write needs no
    # fullness check either: the RAM's write enable is ``result_valid`` itself. (A stock
    # SyncFIFOBuffered put a level compare on the write enable and a wide enable on its output
    # register; both showed up as critical paths.)
    # With the output register the RAM is LUT RAM: Yosys maps a FIFO of more than 48 entries to
    # an ECP5 block RAM, whose clock-to-output (6.5 ns in nextpnr's model) was then the critical
    # path of the FP8 x FP8 pairs.
    requested, depth = depth, depth + extra_read_cycles(ram)
    if ram == "ecp5-ebr" and depth > EBR_DEPTH:
        raise ValueError(f"depth must be below {EBR_DEPTH} with ram='ecp5-ebr', not {requested}")
    wptr = Signal(range(depth), name="results_wptr")
    rptr = Signal(range(depth), name="results_rptr")
    pop = Signal(name="results_pop")                   # a result leaves the RAM
    # Results in the RAM, as "one can be read".
    nonempty = _nonzero_counter(m, "results_stored", 0, depth, result_valid, pop)
    leave = Signal(name="results_leave")               # a result leaves on ``o``
    if ram == "ecp5-ebr":
        # The block's read is a two-stage pipeline (its address register, then its output
        # register, which is ``o.payload``); it advances unless a result waits on ``o``. A read
        # is issued into it whenever it advances and the RAM holds a result. Every entry stays
        # promised (no credit back) until it leaves on ``o``, so no write lands on one being
        # read.
        read_valid = Signal(name="results_read_valid")       # a read in the address register
        out_valid = Signal(name="results_out_valid")
        advance = Signal(name="results_advance")
        m.d.comb += [
            advance.eq(~out_valid | o.ready),
            pop.eq(nonempty & advance),
            o.valid.eq(out_valid),
            leave.eq(out_valid & o.ready),
        ]
        with m.If(advance):
            m.d.sync += [read_valid.eq(pop), out_valid.eq(read_valid)]
        rdata = ebr_ram(m, len(result), "results", w_addr=wptr, w_data=result,
                        w_en=result_valid, r_addr=rptr, r_en=advance)
        m.d.comb += o.payload.as_value().eq(rdata)
    else:
        attrs = {"ram_style": "distributed"} if output_register else None
        m.submodules.results = mem = Memory(shape=unsigned(len(result)), depth=depth, init=[],
                                            attrs=attrs)
        wr = mem.write_port()
        rd = mem.read_port(domain="comb")
        m.d.comb += [wr.addr.eq(wptr), wr.data.eq(result), wr.en.eq(result_valid),
                     rd.addr.eq(rptr)]
        if output_register:
            # One result ahead of the RAM: refilled whenever it is empty or being taken, so an
            # always-ready consumer gets a result every cycle.
            out_valid = Signal(name="results_out_valid")
            out_data = Signal(len(result), name="results_out", reset_less=True)
            m.d.comb += [
                o.valid.eq(out_valid),
                o.payload.as_value().eq(out_data),
                leave.eq(out_valid & o.ready),
                pop.eq(nonempty & (~out_valid | o.ready)),
            ]
            with m.If(pop):
                m.d.sync += [out_valid.eq(1), out_data.eq(rd.data)]
            with m.Elif(o.ready):
                m.d.sync += out_valid.eq(0)
        else:
            m.d.comb += [
                o.valid.eq(nonempty),
                o.payload.as_value().eq(rd.data),
                pop.eq(nonempty & o.ready),
                leave.eq(pop),
            ]
    with m.If(result_valid):
        m.d.sync += wptr.eq(Mux(wptr == depth - 1, 0, wptr + 1))
    with m.If(pop):
        m.d.sync += rptr.eq(Mux(rptr == depth - 1, 0, rptr + 1))

    # Free FIFO entries not yet promised to an accepted group: a group's last beat takes one,
    # a result leaving on ``o`` gives one back (a result written moves from promised to stored,
    # which changes nothing; the output register is one entry more than the credits count).
    take = i.valid & i.ready
    if last is None:
        last = i.payload.last
    has_credit = _nonzero_counter(m, "credits", depth, depth, leave, take & last)
    m.d.comb += i.ready.eq(has_credit & accept)

    first = Signal(init=1)                 # the next accepted beat starts a group
    with m.If(take):
        m.d.sync += first.eq(last)
    valid, start, in_last = Signal(name="in_valid"), Signal(name="in_first"), Signal(name="in_last")
    payload = Signal.like(i.payload, name="in_payload")
    m.d.sync += [valid.eq(take), start.eq(first), in_last.eq(last), payload.eq(i.payload)]
    return valid, start, in_last, payload
