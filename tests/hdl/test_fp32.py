# amaranth: UnusedElaboratable=no
"""RoundToFP32 against the Python-int oracle ``round_to_fp32``; FP32Add against numpy float32."""

import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.sim import Simulator

from hdl.common import FP32Add, RoundToFP32
from sim.golden.mx import round_to_fp32

SEED = 0x5EED32
INF, QNAN, MAX_FINITE = 0x7F800000, 0x7FC00000, 0x7F7FFFFF

# --------------------------------------------------------------------------------------------
# RoundToFP32


def ref_round(sign, mag, exp, sticky):
    """Sticky is a bit far below mag's LSB: (mag * 2**200 + 1) * 2**(exp - 200)."""
    if mag == 0:
        return (sign << 31) if sticky else 0
    num = (mag << 200) + sticky
    return round_to_fp32(-num if sign else num, exp - 200)


def round_vectors(rng, mag_width, exp_width, n_random):
    """(sign, mag, exp, sticky) tuples: random over the whole range plus directed corners."""
    exp_lo, exp_hi = -(1 << (exp_width - 1)), (1 << (exp_width - 1)) - 1
    top = (1 << mag_width) - 1

    def fit(mag, exp):
        """Scale mag * 2**exp (mag may be wider than mag_width) to fit the ports, or None."""
        while mag > top:
            if mag & 1:
                return None
            mag, exp = mag >> 1, exp + 1
        while mag and mag << 1 <= top and exp > exp_lo and rng.random() < 0.5:
            mag, exp = mag << 1, exp - 1
        return (mag, exp) if exp_lo <= exp <= exp_hi else None

    vecs = []
    for _ in range(n_random):
        bits = rng.randint(0, mag_width)
        mag = rng.getrandbits(bits) | (1 << bits >> 1)
        if rng.random() < 0.2:
            exp = rng.randint(exp_lo, exp_hi)
        else:                                   # value's binade uniform over FP32 and around
            exp = min(max(rng.randint(-185, 135) - bits, exp_lo), exp_hi)
        vecs.append((rng.getrandbits(1), mag, exp, rng.getrandbits(1)))

    corners = [
        (2**25 - 1, 103),                       # 2**128 - 2**103: the overflow boundary (Inf)
        ((2**25 - 1) * 2**20 - 1, 83),          # one below it: max finite
        (2**24 - 1, 104),                       # max finite exactly
        (2**24, 104),                           # 2**128
        (1, 127), (1, 128), (3, 127),
        (2**25 - 1, 0), (2**25 - 1, -30),       # guard carry into the next binade
        (2**24 - 1, -150),                      # max subnormal + half ulp -> min normal (tie)
        (2**24 - 3, -150),                      # tie below it, stays subnormal (even)
        (2**23 - 1, -149), (2**23, -149),       # max subnormal, min normal exactly
        (1, -149), (1, -150), (3, -151), (1, -151), (1, -400), (2**mag_width - 1, -300),
        (5, -150), (7, -150),                   # subnormal ties, odd and even below
        (0, 0), (0, -200), (0, 50),
    ]
    for sig in (2**23, 2**23 + 1, 2**24 - 2, 2**24 - 1, 0xABCDEF):
        for j in (0, 7, 30):                    # exact ties at the normal grid and their nbours
            for off in (-1, 0, 1):
                corners.append((((2 * sig + 1) << j) + off, rng.randint(-140, 80)))
    for mag, exp in corners:
        fitted = fit(mag, exp)
        if fitted is None:
            continue
        for sign in (0, 1):
            for sticky in (0, 1):
                vecs.append((sign, *fitted, sticky))
    rng.shuffle(vecs)
    return vecs


class Packed(Elaboratable):
    """``dut`` with its input ports driven from one wide signal: pysim settles on every
    ``ctx.set``, so one set per vector instead of one per port is several times faster."""

    def __init__(self, dut, names):
        self.dut = dut
        self.ports = [getattr(dut, name) for name in names]
        self.i = Signal(sum(len(port) for port in self.ports))

    def pack(self, values):
        word, offset = 0, 0
        for port, value in zip(self.ports, values):
            word |= (value & ((1 << len(port)) - 1)) << offset
            offset += len(port)
        return word

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        offset = 0
        for port in self.ports:
            m.d.comb += port.eq(self.i[offset:offset + len(port)])
            offset += len(port)
        return m


def run_vectors(dut, names, vecs, latency=0):
    """Drive one vector per cycle; return ``dut.o`` for each, read ``latency`` cycles later."""
    top = Packed(dut, names)
    words = [top.pack(vec) for vec in vecs]
    got = []

    async def bench(ctx):
        for i in range(len(words) + latency):
            ctx.set(top.i, words[min(i, len(words) - 1)])
            if i >= latency:
                got.append(ctx.get(dut.o))
            if latency:
                await ctx.tick()

    sim = Simulator(top)
    if latency:
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


def run_round(dut, vecs):
    return run_vectors(dut, ["sign", "mag", "exp", "sticky"], vecs, dut.latency)


def check_round(vecs, got):
    assert len(got) == len(vecs) > 0
    for vec, out in zip(vecs, got):
        expected = ref_round(*vec)
        assert out == expected, (
            f"sign, mag, exp, sticky = {vec}: expected {expected:#010x}, got {out:#010x}")


@pytest.mark.parametrize("mag_width, exp_width, n_random", [
    (70, 11, 4000), (65, 11, 1500), (30, 9, 1500), (21, 11, 1500), (8, 6, 800), (1, 2, 100),
    (40, 16, 1500),
])
def test_round_to_fp32(mag_width, exp_width, n_random):
    rng = random.Random(SEED + mag_width)
    vecs = round_vectors(rng, mag_width, exp_width, n_random)
    check_round(vecs, run_round(RoundToFP32(mag_width, exp_width), vecs))


def test_round_to_fp32_corner_results():
    """The directed corners give the results the spec names (not only what the oracle says)."""
    vecs = [(0, 2**25 - 1, 103, 0), (1, 2**25 - 1, 103, 0), (0, 2**25 - 2, 103, 1),
            (0, (2**25 - 1) * 2**20 - 1, 83, 1), (1, 0, 5, 0), (1, 1, -151, 0),
            (1, 1, -150, 0), (1, 1, -150, 1), (0, 2**24 - 1, -150, 0), (0, 2**25 - 1, 0, 0)]
    expected = [INF, 0x80000000 | INF, MAX_FINITE, MAX_FINITE, 0, 0x80000000,
                0x80000000, 0x80000001, 0x00800000, 0x4C000000]
    got = run_round(RoundToFP32(70, 11), vecs)
    assert [hex(g) for g in got] == [hex(e) for e in expected]
    check_round(vecs, got)


@pytest.mark.parametrize("mag_width", [70, 21])
@pytest.mark.parametrize("stages", [0, 1, 2, 3, 4, 5, 6])
def test_round_to_fp32_stages(stages, mag_width):
    """A new vector every cycle; each result appears ``latency`` cycles later, same as stages=0."""
    dut = RoundToFP32(mag_width, 11, stages=stages)
    assert dut.latency == stages
    vecs = round_vectors(random.Random(SEED + stages), mag_width, 11, 1000)
    got = run_round(dut, vecs)
    check_round(vecs, got)
    assert got == run_round(RoundToFP32(mag_width, 11), vecs)


@pytest.mark.parametrize("kwargs, match", [
    ({"mag_width": 0, "exp_width": 11}, r"^mag_width must be an integer in 1\.\.256, not 0$"),
    ({"mag_width": 70.0, "exp_width": 11},
     r"^mag_width must be an integer in 1\.\.256, not 70\.0$"),
    ({"mag_width": 70, "exp_width": 1}, r"^exp_width must be an integer in 2\.\.32, not 1$"),
    ({"mag_width": 70, "exp_width": True},
     r"^exp_width must be an integer in 2\.\.32, not True$"),
    ({"mag_width": 70, "exp_width": 11, "stages": 7},
     r"^stages must be an integer in 0\.\.6, not 7$"),
    ({"mag_width": 70, "exp_width": 11, "stages": -1},
     r"^stages must be an integer in 0\.\.6, not -1$"),
])
def test_round_to_fp32_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RoundToFP32(**kwargs)


# --------------------------------------------------------------------------------------------
# FP32Add


def f32(bits):
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def special_values():
    vals = [0, INF, QNAN, 0x7F800001, 0x7FFFFFFF, 1, 2, 0x007FFFFF, 0x00800000, 0x00800001,
            MAX_FINITE, 0x7F7FFFFE, 0x3F800000, 0x3FC00000, 0x33800000, 0x34000000]
    return vals + [v | 0x80000000 for v in vals]


def add_vectors(rng):
    r32 = lambda: rng.getrandbits(32)                                      # noqa: E731
    pairs = [(a, b) for a in special_values() for b in special_values()]   # +-0, +-Inf, NaN, ...
    pairs += [(r32(), r32()) for _ in range(2000)]
    for _ in range(1500):                       # cancellation: |b| close to |a|, opposite sign
        a = r32() & 0x7FFFFFFF
        b = min(max(a + rng.randint(-(1 << rng.randint(0, 25)), 1 << rng.randint(0, 25)), 0),
                MAX_FINITE)
        pairs.append((a | rng.getrandbits(1) << 31, b | (~a & 0x80000000)))
    for _ in range(800):                        # subnormal pairs, and subnormal with min normals
        a = rng.getrandbits(23) | rng.getrandbits(1) << 31
        b = rng.getrandbits(23 + rng.randint(0, 2)) | rng.getrandbits(1) << 31
        pairs.append((a, b))
    for _ in range(200):                        # overflow region, mostly the same sign
        a = rng.randint(0x7E800000, MAX_FINITE)
        b = rng.randint(0x7E800000, MAX_FINITE)
        sign = rng.getrandbits(1) << 31
        pairs.append((a | sign, b | sign ^ (0x80000000 if rng.random() < 0.2 else 0)))
    for _ in range(2000):                       # exponent gaps around 24: ties and sticky bits
        ea = rng.randint(1, 254)
        eb = max(ea - rng.randint(0, 30), 0)
        fa = rng.choice([0, 1, 0x7FFFFF, 0x400000, rng.getrandbits(23)])
        fb = rng.choice([0, 1, 0x7FFFFF, 0x400000, 0x400001, rng.getrandbits(23)])
        pairs.append((ea << 23 | fa | rng.getrandbits(1) << 31,
                      eb << 23 | fb | rng.getrandbits(1) << 31))
    rng.shuffle(pairs)
    return [(a, b) if rng.random() < 0.5 else (b, a) for a, b in pairs]


def run_add(pairs):
    return run_vectors(FP32Add(), ["a", "b"], pairs)


def test_fp32_add():
    pairs = add_vectors(random.Random(SEED))
    got = run_add(pairs)
    assert len(got) == len(pairs) > 0
    a, b = (np.array(col, dtype=np.uint32) for col in zip(*pairs))
    with np.errstate(over="ignore", invalid="ignore"):
        ref = (f32(a) + f32(b)).view(np.uint32)
    for (x, y), out, exp in zip(pairs, got, ref.tolist()):
        if np.isnan(f32(exp)):
            assert out == QNAN, f"{x:#010x} + {y:#010x}: expected NaN {QNAN:#010x}, got {out:#010x}"
        else:
            assert out == exp, f"{x:#010x} + {y:#010x}: expected {exp:#010x}, got {out:#010x}"


@pytest.mark.parametrize("stages", [1, 2, 3])
def test_fp32_add_stages(stages):
    """A registered adder gives the combinational adder's sums, ``stages`` cycles later, for a
    new pair every cycle."""
    pairs = add_vectors(random.Random(SEED + stages))[:3000]
    dut = FP32Add(stages=stages)
    assert dut.latency == stages
    assert run_vectors(dut, ["a", "b"], pairs, latency=stages) == run_add(pairs)


def test_fp32_add_rejects_stages():
    with pytest.raises(ValueError, match="stages"):
        FP32Add(stages=4)


def test_fp32_add_directed():
    """Signed zeros, Inf - Inf, Inf - max, and the tie at the overflow boundary."""
    pairs = [(0, 0), (0, 0x80000000), (0x80000000, 0), (0x80000000, 0x80000000),
             (0x3F800000, 0xBF800000), (0xBF800000, 0x3F800000), (1, 0x80000001),
             (INF, 0xFF800000), (0xFFC00001, 0x3F800000), (INF, MAX_FINITE | 0x80000000),
             (MAX_FINITE, 0x73000000), (MAX_FINITE, 0x72FFFFFF), (0x80800000, 0x00000001)]
    expected = [0, 0, 0, 0x80000000, 0, 0, 0, QNAN, QNAN, INF, INF, MAX_FINITE, 0x807FFFFF]
    assert run_add(pairs) == expected


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: RoundToFP32(70, 11), lambda: RoundToFP32(8, 6, stages=5),
                                  FP32Add], ids=["round", "round-staged", "add"])
def test_converts_to_verilog(make):
    text = verilog.convert(make(), name="x", emit_src=False)
    assert "module x" in text
