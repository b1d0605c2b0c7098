# amaranth: UnusedElaboratable=no
"""MXQuantize against an independent exact reference (Python Fractions + ml_dtypes tables).

The reference follows MX_SPEC §4.1/§11 literally: s = floor(log2 max|v|) - emax_elem clamped to
>= -127, each v / 2**s rounded to the nearest finite element value (ties per mode), which also
saturates. It never looks at exponent fields or shift amounts the way the RTL does.
"""

import random
import zlib
from bisect import bisect_left
from dataclasses import dataclass
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.sim import Simulator

from hdl.common import LeadingZeroCount
from hdl.formats import mx_format
from hdl.mx import ElementQuantizer, MXQuantize
from sim.runner import TB_PORTS
from tests.hdl.stream_helpers import pack, run_stream, stream_get, stream_put, unpack

ALL_FORMATS = ["mxfp8_e5m2", "mxfp8_e4m3", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4_e2m1", "mxint8"]


@dataclass(frozen=True)
class RefFormat:
    width: int
    emax: int                 # MX_SPEC §2 table, typed in here rather than read from hdl.formats
    is_int: bool
    mags: tuple               # ascending finite magnitudes (Fractions)
    codes: tuple              # their codes (sign bit clear)
    dtype: object = None


def _ref_format(name):
    if name == "mxint8":
        return RefFormat(8, 0, True, tuple(Fraction(q, 64) for q in range(128)), tuple(range(128)))
    dtype, width, emax = {
        "mxfp8_e5m2": (ml_dtypes.float8_e5m2, 8, 15),
        "mxfp8_e4m3": (ml_dtypes.float8_e4m3fn, 8, 8),
        "mxfp6_e3m2": (ml_dtypes.float6_e3m2fn, 6, 4),
        "mxfp6_e2m3": (ml_dtypes.float6_e2m3fn, 6, 2),
        "mxfp4_e2m1": (ml_dtypes.float4_e2m1fn, 4, 2),
    }[name]
    codes = np.arange(1 << (width - 1), dtype=np.uint8)
    values = codes.view(dtype).astype(np.float64)
    finite = np.isfinite(values)
    mags = tuple(Fraction(float(v)) for v in values[finite])
    assert list(mags) == sorted(mags)
    return RefFormat(width, emax, False, mags, tuple(int(c) for c in codes[finite]), dtype)


REF = {name: _ref_format(name) for name in ALL_FORMATS}


def f32_magnitude(bits):
    return Fraction(float(np.uint32(bits & 0x7FFFFFFF).view(np.float32)))


def floor_log2(x):
    e = x.numerator.bit_length() - x.denominator.bit_length()
    return e - 1 if Fraction(2) ** e > x else e


def ref_element(sign, a, ref, rounding):
    """Round magnitude ``a`` (already divided by the scale) to an element code with ``sign``."""
    mags = ref.mags
    i = bisect_left(mags, a)
    if i == len(mags):
        k = i - 1                                   # above max: saturate
    elif mags[i] == a:
        k = i
    else:
        lo, hi = i - 1, i
        below, above = a - mags[lo], mags[hi] - a
        if below != above:
            k = lo if below < above else hi
        elif rounding == "nearest":
            k = hi
        else:
            k = lo if ref.codes[lo] % 2 == 0 else hi
    code = ref.codes[k]
    if ref.is_int:
        return (-code) & 0xFF if sign else code
    return (sign << (ref.width - 1)) | code


def ref_quantize(block, fmt, rounding):
    """Reference for one block of FP32 bit patterns → (scale code, element codes)."""
    ref = REF[fmt]
    n = len(block)
    if any((b >> 23) & 0xFF == 0xFF for b in block):
        return 0xFF, [0] * n
    mags = [f32_magnitude(b) for b in block]
    amax = max(mags)
    if amax == 0:
        return 0, [0] * n
    s = max(floor_log2(amax) - ref.emax, -127)
    assert s <= 127
    x = Fraction(2) ** s
    return s + 127, [ref_element(b >> 31, a / x, ref, rounding) for b, a in zip(block, mags)]


# --- stimulus ------------------------------------------------------------------------------------

def f32_bits(x):
    return int(np.float32(x).view(np.uint32))


def random_block(rng, n):
    top = rng.randrange(0, 255)
    block = []
    for _ in range(n):
        r = rng.random()
        if r < 0.08:
            block.append(rng.choice([0, 0x80000000]))
            continue
        exp = top - min(int(rng.expovariate(0.35)), top) if r < 0.9 else rng.randrange(0, top + 1)
        block.append((rng.randrange(2) << 31) | (exp << 23) | rng.randrange(1 << 23))
    return block


def tie_block(rng, n, fmt):
    """Exact midpoints between neighbouring element values at a random scale, plus one element
    that pins the scale (2**(emax + s)), plus values that round across a binade or saturate."""
    ref = REF[fmt]
    s = rng.randrange(-100, 100)
    x = Fraction(2) ** s
    block = [f32_bits(float(Fraction(2) ** (ref.emax + s)))]
    while len(block) < n:
        r = rng.random()
        if r < 0.7:
            k = rng.randrange(len(ref.mags) - 1)
            v = (ref.mags[k] + ref.mags[k + 1]) / 2 * x
        elif r < 0.85:                              # just below 2**(emax+1): rounds up, saturates
            v = Fraction(2) ** (ref.emax + 1) * x * (1 - Fraction(1, 1 << rng.randrange(3, 24)))
        else:                                       # tiny: rounds to (signed) zero
            v = Fraction(2) ** (s - rng.randrange(20, 40))
        bits = f32_bits(float(v))
        assert f32_magnitude(bits) == v
        block.append(bits | (rng.randrange(2) << 31))
    rng.shuffle(block)
    return block


def directed_blocks(rng, n, fmt):
    def fill(*specials):
        block = random_block(rng, n)
        for v in specials:
            block[rng.randrange(n)] = v
        return block

    flt_max, flt_min_sub, max_sub = 0x7F7FFFFF, 0x00000001, 0x007FFFFF
    blocks = [
        fill(0x7FC00000), fill(0xFFC00000), fill(0x7F800001),           # NaNs
        fill(0x7F800000), fill(0xFF800000),                             # ±Inf
        [rng.choice([0, 0x80000000]) for _ in range(n)],                # all zero, with -0
        [0x80000000] * n,
        [0] * (n - 1) + [flt_min_sub],                                  # one FP32 subnormal
        [rng.randrange(1 << 23) | (rng.randrange(2) << 31) for _ in range(n)],  # subnormals
        [max_sub] + [rng.choice([0x80000000, flt_min_sub, 0x80000003]) for _ in range(n - 1)],
        fill(flt_max), fill(flt_max | 1 << 31), [flt_max] * n,
        # Largest value in the block just below a power of two (log2 would round it up).
        fill(0x3FFFFFFF), fill(0x4B7FFFFF | 1 << 31),
        # Scale clamped at -127: small normals with exponent fields below emax_elem.
        [(rng.randrange(0, 16) << 23) | rng.randrange(1 << 23) for _ in range(n)],
        # -0 and tiny negatives in a normal block keep the FP sign.
        fill(0x80000000, 0x80000001, f32_bits(-1e-30), f32_bits(1e10)),
    ]
    blocks += [tie_block(rng, n, fmt) for _ in range(6)]
    return blocks


# --- simulation ----------------------------------------------------------------------------------

def to_beats(blocks, lanes):
    beats = []
    for block in blocks:
        for b in range(0, len(block), lanes):
            beats.append(pack(block[b:b + lanes], 32))
    return beats


def from_output(word, width, block_size):
    return word & 0xFF, unpack(word >> 8, width, block_size)


def check_blocks(dut, blocks, *, seed, idle, stall):
    rng = random.Random(seed)
    run = run_stream(dut, to_beats(blocks, dut.lanes), len(blocks), rng=rng, idle=idle,
                     stall=stall)
    width = dut.elem.width
    for k, (block, word) in enumerate(zip(blocks, run.outputs)):
        got = from_output(word, width, dut.block_size)
        want = ref_quantize(block, dut.fmt.name, dut.rounding)
        assert got == want, (
            f"block {k} (seed {seed}) of {dut.fmt.name}/{dut.rounding}: "
            f"input {[hex(v) for v in block]}\n  expected scale {want[0]:#x} "
            f"codes {[hex(c) for c in want[1]]}\n  got      scale {got[0]:#x} "
            f"codes {[hex(c) for c in got[1]]}")
    return run


# Building the simulator dominates the cost of a block-32 configuration, so each format
# gets one configuration per rounding mode, with the lane count varied across them.
CONFIGS = [
    # (fmt, rounding, block_size, lanes, random blocks)
    ("mxfp8_e5m2", "even", 32, 32, 80), ("mxfp8_e5m2", "nearest", 32, 4, 20),
    ("mxfp8_e4m3", "even", 32, 4, 20), ("mxfp8_e4m3", "nearest", 32, 32, 80),
    ("mxfp6_e3m2", "even", 32, 32, 80), ("mxfp6_e3m2", "nearest", 32, 1, 4),
    ("mxfp6_e2m3", "even", 32, 1, 4), ("mxfp6_e2m3", "nearest", 32, 32, 80),
    ("mxfp4_e2m1", "even", 32, 8, 40), ("mxfp4_e2m1", "nearest", 32, 32, 80),
    ("mxint8", "even", 32, 32, 80), ("mxint8", "nearest", 32, 16, 40),
    ("mxfp4_e2m1", "even", 64, 16, 10), ("mxint8", "nearest", 64, 64, 10),
    *[(fmt, rnd, 2, lanes, 300) for fmt in ALL_FORMATS for rnd in ("even", "nearest")
      for lanes in (1, 2)],
]


def config_seed(*params):
    return zlib.crc32(repr(params).encode())


@pytest.mark.parametrize("fmt,rounding,block_size,lanes,n_random", CONFIGS)
def test_quantize(fmt, rounding, block_size, lanes, n_random):
    seed = config_seed(fmt, rounding, block_size, lanes)
    rng = random.Random(seed)
    dut = MXQuantize(fmt, block_size=block_size, rounding=rounding, lanes=lanes)
    blocks = directed_blocks(rng, block_size, fmt) + \
        [random_block(rng, block_size) for _ in range(n_random)]
    rng.shuffle(blocks)
    check_blocks(dut, blocks, seed=seed, idle=0.3, stall=0.3)


def test_quantize_block2_exhaustive_ties():
    """block_size 2: every element midpoint of every format, paired with the scale-pinning value."""
    for fmt in ALL_FORMATS:
        ref = REF[fmt]
        for rounding in ("even", "nearest"):
            dut = MXQuantize(fmt, block_size=2, rounding=rounding, lanes=2)
            blocks = []
            for k in range(len(ref.mags) - 1):
                mid = (ref.mags[k] + ref.mags[k + 1]) / 2
                for sign in (0, 1 << 31):
                    blocks.append([f32_bits(float(Fraction(2) ** ref.emax)),
                                   f32_bits(float(mid)) | sign])
            check_blocks(dut, blocks, seed=1, idle=0.0, stall=0.0)


# --- one element, many values (combinational, fast) ----------------------------------------------

@pytest.mark.parametrize("rounding", ["even", "nearest"])
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_element_quantizer(fmt, rounding):
    """Random FP32 values against scales a block containing them could have picked:
    scale = max(E_block - emax_elem, 0) with E_block >= the value's exponent field (INT8 needs
    that); FP elements also get arbitrary scales."""
    ref = REF[fmt]
    rng = random.Random(config_seed("element", fmt, rounding))
    vectors = []
    for _ in range(3000):
        exp = rng.choice([rng.randrange(255), rng.randrange(3), rng.randrange(100, 160)])
        value = (rng.randrange(2) << 31) | (exp << 23) | (rng.randrange(1 << 23) >>
                                                         rng.choice([0, 0, rng.randrange(24)]))
        block_exp = min(exp + rng.choice([0, 0, 1, 2, rng.randrange(40)]), 254)
        scale = max(block_exp - ref.emax, 0)
        if not ref.is_int and rng.random() < 0.2:
            scale = rng.randrange(255)              # FP elements are exact for any scale
        vectors.append((value, scale))
    dut = ElementQuantizer(mx_format(fmt).element, rounding)
    got = []

    async def bench(ctx):
        for value, scale in vectors:
            ctx.set(dut.value, value)
            ctx.set(dut.scale, scale)
            got.append(ctx.get(dut.code))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    for (value, scale), code in zip(vectors, got):
        want = ref_element(value >> 31, f32_magnitude(value) / Fraction(2) ** (scale - 127), ref,
                           rounding)
        assert code == want, f"{fmt}/{rounding}: value {value:#010x} scale {scale}: " \
                             f"expected {want:#x}, got {code:#x}"


def test_leading_zero_count():
    dut = LeadingZeroCount(24)

    async def bench(ctx):
        for x in [0, 1, (1 << 24) - 1, *[1 << k for k in range(24)],
                  *[random.Random(k).getrandbits(24) >> k for k in range(25)]]:
            ctx.set(dut.i, x)
            assert ctx.get(dut.o) == 24 - x.bit_length(), x

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


# --- timing --------------------------------------------------------------------------------------

@pytest.mark.parametrize("block_size,lanes", [(32, 32), (8, 2), (2, 1), (4, 1)])
def test_latency_and_throughput(block_size, lanes):
    dut = MXQuantize("mxfp8_e4m3", block_size=block_size, lanes=lanes)
    rng = random.Random(5)
    blocks = [random_block(rng, block_size) for _ in range(6)]
    run = check_blocks(dut, blocks, seed=5, idle=0.0, stall=0.0)
    n = dut.beats_per_block
    assert len(run.in_cycles) == n * len(blocks)
    assert run.in_wait_cycles == 0                             # one input beat every cycle
    assert run.in_cycles == list(range(len(run.in_cycles)))
    last_beats = run.in_cycles[n - 1::n]
    assert [o - i for i, o in zip(last_beats, run.out_valid_cycles)] == [dut.latency] * len(blocks)
    assert run.out_cycles == run.out_valid_cycles


def test_backpressure_fills_and_drains():
    """With o.ready low the core fills its output register, middle stages, block register and
    staging beats, then stops taking input; nothing is lost or reordered when it drains."""
    dut = MXQuantize("mxint8", block_size=4, lanes=2)
    n = dut.beats_per_block
    rng = random.Random(2)
    blocks = [random_block(rng, 4) for _ in range(5)]
    beats = to_beats(blocks, dut.lanes)
    outputs = []

    async def bench(ctx):
        accepted = 0
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 1)
        for _ in range(4 * n + 5):
            ctx.set(Value.cast(dut.i.payload), beats[accepted])
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            accepted += ready
        held = dut.latency                      # output register, middle stages, block register
        assert accepted == held * n + (n - 1)
        ctx.set(dut.i.valid, 0)
        for _ in range(held):
            outputs.append(await stream_get(ctx, dut.o))
        for k in range(held, len(blocks)):
            while accepted < (k + 1) * n:
                await stream_put(ctx, dut.i, beats[accepted])
                accepted += 1
            outputs.append(await stream_get(ctx, dut.o))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [from_output(w, 8, 4) for w in outputs] == \
        [ref_quantize(b, "mxint8", "even") for b in blocks]


# --- reference self-check, construction, Verilog -------------------------------------------------

@pytest.mark.parametrize("fmt", [f for f in ALL_FORMATS if f != "mxint8"])
def test_reference_matches_ml_dtypes_rne(fmt):
    """The Fraction reference agrees with ml_dtypes' RNE cast (after clamping to ±max)."""
    ref = REF[fmt]
    rng = np.random.default_rng(0)
    top = float(ref.mags[-1])
    xs = np.concatenate([rng.uniform(-1.2 * top, 1.2 * top, 3000),
                         np.ldexp(rng.uniform(-1, 1, 2000), rng.integers(-25, 3, 2000)),
                         [float((a + b) / 2) for a, b in zip(ref.mags, ref.mags[1:])]])
    want = np.clip(xs, -top, top).astype(ref.dtype).view(np.uint8)
    for x, w in zip(xs, want):
        got = ref_element(int(x < 0 or (x == 0 and np.signbit(x))), abs(Fraction(float(x))), ref,
                          "even")
        assert got == int(w), (fmt, x, got, int(w))


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_verilog(fmt):
    dut = MXQuantize(fmt, block_size=4, lanes=2)
    text = verilog.convert(dut, name=f"mx_quantize_{fmt}", emit_src=False)
    width = dut.elem.width
    for port in ("input [63:0] i__payload;", "input i__valid;", "output i__ready;",
                 f"output [{8 + 4 * width - 1}:0] o__payload;", "output o__valid;",
                 "input o__ready;", "input clk;", "input rst;"):
        assert port in text, port


def test_verilog_default_config():
    dut = MXQuantize("mxfp8_e4m3")
    text = verilog.convert(dut, name="mx_quantize_mxfp8_e4m3", emit_src=False)
    assert "module mx_quantize_mxfp8_e4m3(" in text
    for port in TB_PORTS:                       # what the co-simulation testbench drives
        assert f" {port};" in text, port


def test_properties():
    dut = MXQuantize("mxfp4_e2m1", block_size=64, lanes=16)
    assert dut.beats_per_block == 4
    assert isinstance(dut.latency, int) and dut.latency >= 1
    assert "1 input beat per cycle" in dut.throughput
    assert MXQuantize("mxint8").lanes == 32
    assert MXQuantize("mxint8").rounding == "even"


@pytest.mark.parametrize("kwargs,message", [
    ({"fmt": "mxfp9"}, (r"^fmt must be one of mxfp8_e5m2, mxfp8_e4m3, mxfp6_e3m2, mxfp6_e2m3, "
                        r"mxfp4_e2m1, mxint8; not 'mxfp9'$")),
    ({"fmt": "mx9"}, r"^fmt must be one of .*; not 'mx9'$"),
    ({"fmt": "mxint8", "block_size": 3}, r"^block_size must be a power of two in 2\.\.64, not 3$"),
    ({"fmt": "mxint8", "block_size": 128},
     r"^block_size must be a power of two in 2\.\.64, not 128$"),
    ({"fmt": "mxint8", "block_size": 1}, r"^block_size must be a power of two in 2\.\.64, not 1$"),
    ({"fmt": "mxint8", "block_size": 32.0},
     r"^block_size must be a power of two in 2\.\.64, not 32\.0$"),
    ({"fmt": "mxint8", "rounding": "floor"},
     r"^rounding must be one of 'even', 'nearest'; not 'floor'$"),
    ({"fmt": "mxint8", "lanes": 5}, (r"^lanes must be a power of two that divides block_size "
                                  r"\(32\): 1, 2, 4, 8, 16, 32; not 5$")),
    ({"fmt": "mxint8", "block_size": 8, "lanes": 16},
     r"^lanes must be a power of two that divides block_size \(8\): 1, 2, 4, 8; not 16$"),
    ({"fmt": "mxint8", "lanes": 0}, r"^lanes must be .*; not 0$"),
])
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MXQuantize(**kwargs)
