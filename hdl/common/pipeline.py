"""Valid/ready bookkeeping for register stages of a stream pipeline."""

from amaranth.hdl import Signal

__all__ = ["block_throughput", "delay", "pipeline_stage"]


def pipeline_stage(m, *, valid, valid_in, ready_out, name=None):
    """Drive the valid bit of one register stage; return ``(ready, load)``.

    A stage holds one beat. It may take a new beat when it is empty or when its own beat leaves
    this cycle, so a chain of such stages runs at one beat per cycle under a held ``ready`` and
    stalls without losing or duplicating beats. ``ready`` depends combinationally on
    ``ready_out`` (the usual stream rule: ready may wait for ready, valid never waits for ready).

    Parameters
    ----------
    m : Module
        Module to add the logic to.
    valid : Signal(1)
        The stage's valid register (driven here, ``sync`` domain). Its payload registers must be
        written exactly when ``load`` is high and held otherwise.
    valid_in : Value
        Upstream offers a beat.
    ready_out : Value
        Downstream takes this stage's beat this cycle if ``valid`` is high (for a multi-beat
        stage: takes its *last* beat).
    name : str
        Prefix of the two returned signals.

    Returns
    -------
    ready : Signal
        The stage accepts a beat this cycle (to upstream's ``ready``).
    load : Signal
        ``valid_in & ready``: write the payload registers.
    """
    prefix = f"{name}_" if name else ""
    ready = Signal(name=f"{prefix}ready")
    load = Signal(name=f"{prefix}load")
    m.d.comb += [
        ready.eq(~valid | ready_out),
        load.eq(valid_in & ready),
    ]
    with m.If(ready):
        m.d.sync += valid.eq(valid_in)
    return ready, load


def block_throughput(side: str, lanes: int, beats_per_block: int) -> str:
    """The ``throughput`` text of a block core moving ``lanes`` values per ``side`` beat."""
    return (f"1 {side} beat per cycle ({lanes} values); "
            + ("1 block per cycle" if beats_per_block == 1
               else f"1 block every {beats_per_block} cycles"))


def delay(m, value, cycles, name):
    """``value`` delayed by ``cycles`` free-running ``sync`` registers (no enable)."""
    for k in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{k}")
        m.d.sync += reg.eq(value)
        value = reg
    return value
