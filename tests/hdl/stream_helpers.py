"""Stream drivers for Amaranth-simulator unit tests of stream cores.

``stream_put`` / ``stream_get`` are the helpers of the Amaranth stream documentation, with raw
integer payloads and a timeout.
``run_stream`` drives a core's ``i`` stream with random idle cycles, consumes its ``o`` stream
with random backpressure, checks the stream rules on ``o`` (payload and valid held while
``valid & ~ready``, no extra beats afterwards) and records when every handshake happened.
Payloads are raw integers (first layout field at the LSB), which keeps the simulator loop fast.
"""

from dataclasses import dataclass, field

from amaranth.hdl import Value
from amaranth.sim import Simulator

__all__ = ["StreamRun", "pack", "run_stream", "stream_get", "stream_put", "unpack"]


async def stream_put(ctx, stream, payload, *, timeout=1000):
    """Offer one beat (a raw integer payload) and wait for its handshake."""
    ctx.set(stream.valid, 1)
    ctx.set(Value.cast(stream.payload), payload)
    for _ in range(timeout):
        _, _, ready = await ctx.tick().sample(stream.ready)
        if ready:
            break
    else:
        raise AssertionError(f"beat not accepted within {timeout} cycles")
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, *, timeout=1000):
    """Take one beat; return its payload as a raw integer."""
    ctx.set(stream.ready, 1)
    for _ in range(timeout):
        _, _, valid, payload = await ctx.tick().sample(stream.valid, Value.cast(stream.payload))
        if valid:
            break
    else:
        raise AssertionError(f"no beat within {timeout} cycles")
    ctx.set(stream.ready, 0)
    return payload


def pack(values, width):
    """Integers → one integer, element 0 in the low ``width`` bits."""
    word = 0
    for k, v in enumerate(values):
        assert 0 <= v < (1 << width), (v, width)
        word |= int(v) << (k * width)
    return word


def unpack(word, width, count):
    mask = (1 << width) - 1
    return [(word >> (k * width)) & mask for k in range(count)]


@dataclass
class StreamRun:
    outputs: list = field(default_factory=list)        # output payloads in order
    in_cycles: list = field(default_factory=list)      # cycle of each input handshake
    out_valid_cycles: list = field(default_factory=list)  # first cycle each output beat was valid
    out_cycles: list = field(default_factory=list)     # cycle of each output handshake
    in_wait_cycles: int = 0                            # cycles an offered input beat waited
    cycles: int = 0


def run_stream(dut, inputs, n_outputs, *, rng, idle=0.0, stall=0.0, drain=4, max_cycles=None):
    """Simulate ``dut`` on ``inputs`` (raw ``i.payload`` integers) until ``n_outputs`` output
    beats have been taken, then ``drain`` more cycles with ``o.ready`` high (no beat may appear).

    ``idle``: probability of an idle cycle before each input beat. ``stall``: probability that
    ``o.ready`` is low in a cycle. Returns a :class:`StreamRun`.
    """
    run = StreamRun()
    if max_cycles is None:
        max_cycles = 50 + 4 * (len(inputs) + n_outputs) * (1 + int(10 * max(idle, stall)))
    i_payload = Value.cast(dut.i.payload)
    o_payload = Value.cast(dut.o.payload)

    async def producer(ctx):
        cycle = 0
        for beat in inputs:
            while rng.random() < idle:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
                cycle += 1
            ctx.set(dut.i.valid, 1)
            ctx.set(i_payload, beat)
            while True:
                _, _, ready = await ctx.tick().sample(dut.i.ready)
                cycle += 1
                if ready:
                    run.in_cycles.append(cycle - 1)
                    break
                run.in_wait_cycles += 1
                assert cycle < max_cycles, f"input beat {len(run.in_cycles)} never accepted"
        ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        cycle = 0
        held = None                                    # payload of a valid beat not taken
        while len(run.outputs) < n_outputs:
            ready = rng.random() >= stall
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, o_payload)
            if held is not None:
                assert valid, f"cycle {cycle}: o.valid dropped while output {len(run.outputs)} " \
                              f"was waiting for ready"
                assert payload == held, f"cycle {cycle}: o.payload changed while stalled"
            elif valid:
                run.out_valid_cycles.append(cycle)
            if valid and ready:
                run.outputs.append(payload)
                run.out_cycles.append(cycle)
                held = None
            elif valid:
                held = payload
            cycle += 1
            assert cycle < max_cycles, \
                f"timeout: {len(run.outputs)} of {n_outputs} outputs after {cycle} cycles"
        ctx.set(dut.o.ready, 1)
        for _ in range(drain):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid, f"cycle {cycle}: unexpected extra output beat"
            cycle += 1
        run.cycles = cycle

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert len(run.in_cycles) == len(inputs)
    assert len(run.outputs) == n_outputs
    return run
