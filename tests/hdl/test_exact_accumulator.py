# amaranth: UnusedElaboratable=no
"""ExactAccumulator in the Amaranth simulator against the exact sum rounded by ``round_to_fp32``.

The core-level co-simulation drives it with random MX blocks; here the group values are built on
purpose around what the accumulator's pieces make hard: a leading one at the bottom of a piece
(the result's low bits come from the piece under it), ties broken or not by a bit far below,
cancellation down to a few bits, negative sums, and groups past the capacity.

Both piece-adder and both candidate-chain implementations run. The Amaranth simulator cannot run
the ECP5 ``CCU2C`` cells of ``adders="ecp5-ccu2c"`` or the LUT4 / PFUMX slices of
``muxes="ecp5-pfumx"``, so there :func:`hdl.common.ecp5_carry.clearable_add` and
:func:`hdl.common.ecp5_mux.mux4` are replaced by what they compute, which checks everything
around them (the clear one cycle after a group's last block, the flags taken from the piece
register, the grouped chain stages); the cells themselves are checked through ``sim/models/``
by the core co-simulation (tests/cores/test_mx_dot_cosim.py).
"""

import random

import pytest
from amaranth.hdl import Array, ClockDomain, Module, Mux, Signal
from amaranth.sim import Simulator

from hdl.mx import exact_accumulator
from hdl.mx.exact_accumulator import ADDERS, SCALE_SUM_MAX, ExactAccumulator
from sim.golden.mx import round_to_fp32

SUM_WIDTH, LSB_EXP = 14, -4              # MXFP4 x MXFP4 at block 32
DIGIT = SUM_WIDTH - 2                    # bits per block term when a value is spread over blocks
QNAN = 0x7FC00000


def behavioral_clearable_add(m, acc, addend, cin, clear, name):
    """What the CCU2C chain of ``clearable_add`` computes, for the Amaranth simulator."""
    total = Signal(len(acc) + 1, name=f"{name}_sum")
    m.d.comb += total.eq(Mux(clear, 0, acc) + addend + cin)
    return total


def behavioral_mux4(m, sel, options, name):
    """What the LUT4 / PFUMX slices of ``mux4`` compute, for the Amaranth simulator."""
    out = Signal(len(options[0]), name=name)
    m.d.comb += out.eq(Array(options)[sel])
    return out


#: (adders, muxes, chunk): each piece-adder and chain-mux implementation, and pieces of other
#: widths than 32 (not a power of two: the scale splits by a table).
ACC_CASES = ([(adders, "generic", 32) for adders in ADDERS]
             + [("ecp5-ccu2c", "ecp5-pfumx", 32), ("generic", "ecp5-pfumx", 40),
                ("ecp5-ccu2c", "generic", 40), ("generic", "generic", 56)])


@pytest.fixture(params=ACC_CASES, ids=["-".join(map(str, case)) for case in ACC_CASES])
def make_acc(request, monkeypatch):
    """``ExactAccumulator(SUM_WIDTH, LSB_EXP)`` for each of :data:`ACC_CASES`."""
    adders, muxes, chunk = request.param
    if adders == "ecp5-ccu2c":
        monkeypatch.setattr(exact_accumulator, "clearable_add", behavioral_clearable_add)
    if muxes == "ecp5-pfumx":
        monkeypatch.setattr(exact_accumulator, "mux4", behavioral_mux4)
    return lambda: ExactAccumulator(SUM_WIDTH, LSB_EXP, adders=adders, muxes=muxes,
                                    chunk=chunk)


def spread(value, low):
    """``value * 2**low`` as block terms ``(sum, scale_sum)`` of DIGIT-bit digits (a negative
    value as negative digits), or None if a digit would fall outside the scale range."""
    sign, mag, terms, pos = (-1 if value < 0 else 1), abs(value), [], low
    while mag:
        digit = mag & ((1 << DIGIT) - 1)
        if digit:
            if not 0 <= pos <= SCALE_SUM_MAX:
                return None
            terms.append((sign * digit, pos))
        mag, pos = mag >> DIGIT, pos + DIGIT
    return terms


def group_values(rng, chunk):
    """(kind, list of (sum, scale_sum)) for one group."""
    kind = rng.choice(["random", "piece-bottom", "tie", "tie-broken", "cancel"])
    if kind == "random":
        base = rng.randrange(0, SCALE_SUM_MAX + 1)
        return kind, [(rng.randrange(-(1 << (SUM_WIDTH - 1)), 1 << (SUM_WIDTH - 1)),
                       min(max(base + rng.randrange(-40, 41), 0), SCALE_SUM_MAX))
                      for _ in range(rng.randrange(1, 6))]
    if kind == "cancel":
        big = rng.getrandbits(60) | 1 << 59
        small = rng.getrandbits(rng.randrange(1, 30))
        low = rng.randrange(0, SCALE_SUM_MAX - 70)
        return kind, (spread(big, low) or []) + (spread(-(big - small), low) or [])
    if kind == "piece-bottom":
        # Leading one at bit 0 or 1 of a piece; 30 random bits under it, across two pieces.
        top = chunk * rng.randrange(1, SCALE_SUM_MAX // chunk) + rng.randrange(2)
        value = 1 << 30 | rng.getrandbits(30)
        low = top - 30
    else:
        # m + 1/2 in units of the FP32 LSB: a tie; "tie-broken" adds a bit far below it.
        below = rng.randrange(1, 20) if kind == "tie-broken" else 0
        value = ((rng.getrandbits(23) | 1 << 23) << 1 | 1) << below | (1 if below else 0)
        low = rng.randrange(0, SCALE_SUM_MAX - 40)
    if rng.random() < 0.5:
        value = -value
    return kind, spread(value, low) or []


def reference(terms, nan):
    if nan:
        return QNAN
    return round_to_fp32(sum(s << scale for s, scale in terms), LSB_EXP - 254)


def run(acc, groups, rng, reset_before=None):
    """Drive ``groups`` (lists of (sum, scale_sum, nan)) one block per cycle with random idle
    cycles; return the results in order. ``reset_before``: index of a group before whose last
    block the domain reset is pulsed for one cycle (that group and any result in flight are
    lost)."""
    blocks = []
    for g, terms in enumerate(groups):
        if g == reset_before:
            terms = terms[:-1]
        blocks += [(k == 0, k == len(terms) - 1, block) for k, block in enumerate(terms)]
        if g == reset_before:
            blocks.append(RESET)
    return simulate(acc, blocks, rng)


#: A :func:`simulate` entry that pulses the domain reset for one cycle.
RESET = None


def simulate(acc, blocks, rng):
    """Drive ``blocks`` ((first, last, (sum, scale_sum, nan)), or :data:`RESET`) one per cycle
    with random idle cycles after each; return the results in order, ``"reset"`` where the
    reset was pulsed."""
    results = []
    m = Module()
    m.domains.sync = sync = ClockDomain()
    m.submodules.acc = acc

    async def bench(ctx):
        async def tick():
            await ctx.tick()
            if ctx.get(acc.o_valid):
                results.append(ctx.get(acc.o))

        for entry in blocks:
            if entry is RESET:
                ctx.set(acc.valid, 0)
                ctx.set(sync.rst, 1)
                await ctx.tick()
                ctx.set(sync.rst, 0)
                results.append("reset")
                continue
            first, last, (s, scale, nan) = entry
            ctx.set(acc.valid, 1)
            ctx.set(acc.first, first)
            ctx.set(acc.last, last)
            ctx.set(acc.sum, s)
            ctx.set(acc.scale_sum, scale)
            ctx.set(acc.nan, nan)
            await tick()
            while rng.random() < 0.2:
                ctx.set(acc.valid, 0)
                await tick()
        ctx.set(acc.valid, 0)
        for _ in range(acc.latency + 2):
            await tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def test_exact_accumulator_hard_values(make_acc):
    rng = random.Random(0xACC)
    acc = make_acc()
    groups, expected, kinds = [], [], {}
    while len(groups) < 400:
        kind, terms = group_values(rng, acc.chunk)
        if not terms:
            continue
        rng.shuffle(terms)
        groups.append([(s, scale, 0) for s, scale in terms])
        expected.append(reference(terms, False))
        kinds[kind] = kinds.get(kind, 0) + 1
    got = run(acc, groups, rng)
    assert len(got) == len(groups)
    bad = [(i, hex(g), hex(e)) for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    assert not bad, bad[:10]
    assert min(kinds.values()) >= 40, kinds


def test_exact_accumulator_capacity_and_nan(make_acc):
    """Past ``max_blocks`` a group is NaN, and so is a group with a NaN block; the next group is
    exact again (``max_blocks`` lowered to 4 so that the limit is reachable)."""
    rng = random.Random(4)
    acc = make_acc()
    acc.max_blocks = 4
    groups, expected = [], []
    for length, nan_at in [(4, None), (5, None), (1, None), (9, None), (4, None), (3, 1),
                           (2, None), (4, 3), (4, None)]:
        terms = [(rng.randrange(-4000, 4000), rng.randrange(200, 300)) for _ in range(length)]
        groups.append([(s, scale, int(k == nan_at)) for k, (s, scale) in enumerate(terms)])
        expected.append(QNAN if length > 4 or nan_at is not None else reference(terms, False))
    assert run(acc, groups, rng) == expected


def test_exact_accumulator_one_cycle_reset(make_acc):
    """A one-cycle reset in the middle of a group, with the groups before it still in flight:
    what was in flight is dropped and every group after the reset is exact."""
    rng = random.Random(7)
    acc = make_acc()
    groups, expected = [], []
    for _ in range(12):
        terms = [(rng.randrange(-4000, 4000), rng.randrange(0, 509)) for _ in range(3)]
        groups.append([(s, scale, 0) for s, scale in terms])
        expected.append(reference(terms, False))
    got = run(acc, groups, random.Random(0), reset_before=6)
    # Some of groups 0..5 are still in flight at the reset; after it, exactly groups 7..11.
    before = got[:got.index("reset")]
    assert before == expected[:len(before)] and len(before) < 6
    assert got[got.index("reset") + 1:] == expected[7:]


def test_ecp5_ccu2c_adders_cost_a_cycle_and_no_piece_copy():
    """The piece register is the chain's piece: one cycle more latency, same capacity."""
    generic = ExactAccumulator(SUM_WIDTH, LSB_EXP)
    ccu2c = ExactAccumulator(SUM_WIDTH, LSB_EXP, adders="ecp5-ccu2c")
    assert ccu2c.latency == generic.latency + 1
    assert (ccu2c.width, ccu2c.max_blocks) == (generic.width, generic.max_blocks)


def test_adders_error_names_the_parameter():
    with pytest.raises(ValueError, match="adders must be one of 'generic', 'ecp5-ccu2c'; "
                                         "not 'ccu2c'"):
        ExactAccumulator(SUM_WIDTH, LSB_EXP, adders="ccu2c")


def run_contexts(acc, streams, rng):
    """Drive one stream of groups (lists of (sum, scale_sum, nan)) per context, their blocks
    interleaved in context order (0, 1, .., 0, 1, ..) with random idle cycles, as the PEs of an
    mx-array row that share an accumulator send them. Every stream has the same number of
    blocks. Returns the results in order and the (context, group) each one should be."""
    blocks = [[(g, k, len(group), block) for g, group in enumerate(stream)
               for k, block in enumerate(group)] for stream in streams]
    assert len({len(b) for b in blocks}) == 1
    order = [(c, g) for step in zip(*blocks) for c, (g, k, n, _) in enumerate(step)
             if k == n - 1]
    interleaved = [(k == 0, k == n - 1, block) for step in zip(*blocks)
                   for _, k, n, block in step]
    return simulate(acc, interleaved, rng), order


def _streams(rng, contexts, groups, make_group):
    """``groups`` groups per context from ``make_group()`` ((terms with nan flags, expected)),
    topped up with one-block groups so that every context has the same number of blocks."""
    streams = [[make_group() for _ in range(groups)] for _ in range(contexts)]
    most = max(sum(len(t) for t, _ in s) for s in streams)
    for s in streams:
        while sum(len(t) for t, _ in s) < most:
            term = (rng.randrange(-4000, 4000), rng.randrange(0, 509))
            s.append(([(*term, 0)], reference([term], False)))
    return streams


CONTEXT_CASES = [(adders, "generic", contexts) for adders in ADDERS for contexts in (2, 4)] \
    + [("ecp5-ccu2c", "ecp5-pfumx", 3)]


@pytest.mark.parametrize("adders, muxes, contexts", CONTEXT_CASES,
                         ids=["-".join(map(str, c)) for c in CONTEXT_CASES])
def test_exact_accumulator_contexts(adders, muxes, contexts, monkeypatch):
    """Interleaved groups of several contexts (an accumulator shared by the PEs of an mx-array
    row): each context's groups are exact, and capacity and NaN are per context too."""
    monkeypatch.setattr(exact_accumulator, "clearable_add", behavioral_clearable_add)
    monkeypatch.setattr(exact_accumulator, "mux4", behavioral_mux4)
    rng = random.Random(contexts)
    acc = ExactAccumulator(SUM_WIDTH, LSB_EXP, adders=adders, muxes=muxes, contexts=contexts)

    def hard_group():
        while True:
            _, terms = group_values(rng, acc.chunk)
            if terms and len(terms) <= acc.max_blocks:
                rng.shuffle(terms)
                return [(s, scale, 0) for s, scale in terms], reference(terms, False)

    streams = _streams(rng, contexts, 60, hard_group)
    got, order = run_contexts(acc, [[t for t, _ in s] for s in streams], rng)
    expected = [streams[c][g][1] for c, g in order]
    assert len(got) == len(expected) >= 60 * contexts
    bad = [(i, hex(g), hex(e)) for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    assert not bad, bad[:10]

    # Capacity (lowered to 4 blocks) and NaN blocks, per context.
    acc = ExactAccumulator(SUM_WIDTH, LSB_EXP, adders=adders, muxes=muxes, contexts=contexts)
    acc.max_blocks = 4

    def limit_group():
        n = rng.randrange(1, 7)
        nan_at = rng.randrange(n) if rng.random() < 0.3 else None
        terms = [(rng.randrange(-4000, 4000), rng.randrange(200, 300)) for _ in range(n)]
        return ([(s, scale, int(k == nan_at)) for k, (s, scale) in enumerate(terms)],
                QNAN if n > 4 or nan_at is not None else reference(terms, False))

    streams = _streams(rng, contexts, 30, limit_group)
    got, order = run_contexts(acc, [[t for t, _ in s] for s in streams], rng)
    expected = [streams[c][g][1] for c, g in order]
    assert got == expected
    assert QNAN in expected and len(set(expected)) > 20


def test_contexts_error_names_the_parameter():
    with pytest.raises(ValueError, match="contexts must be an integer in 1..16, not 0"):
        ExactAccumulator(SUM_WIDTH, LSB_EXP, contexts=0)
