# amaranth: UnusedElaboratable=no
"""MXDequantize against an independent reference: ml_dtypes element decode, exact float64 product,
numpy's RNE cast to float32 (which overflows to ±Inf and is exact in the subnormal range)."""

import random
import zlib

import ml_dtypes
import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.sim import Simulator

from hdl.formats import mx_format
from hdl.mx import ElementDecoder, MXDequantize
from sim.runner import TB_PORTS
from tests.hdl.stream_helpers import pack, run_stream, stream_get, stream_put, unpack

ALL_FORMATS = ["mxfp8_e5m2", "mxfp8_e4m3", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4_e2m1", "mxint8"]
WIDTH = {"mxfp8_e5m2": 8, "mxfp8_e4m3": 8, "mxfp6_e3m2": 6, "mxfp6_e2m3": 6, "mxfp4_e2m1": 4,
         "mxint8": 8}
DTYPE = {"mxfp8_e5m2": ml_dtypes.float8_e5m2, "mxfp8_e4m3": ml_dtypes.float8_e4m3fn,
         "mxfp6_e3m2": ml_dtypes.float6_e3m2fn, "mxfp6_e2m3": ml_dtypes.float6_e2m3fn,
         "mxfp4_e2m1": ml_dtypes.float4_e2m1fn}
QNAN = 0x7FC00000
SCALES = (0, 1, 127, 200, 254, 255)


def element_value(code, fmt):
    if fmt == "mxint8":
        return float(code - 256 if code & 0x80 else code) / 64
    return float(np.uint8(code).view(DTYPE[fmt]))


def ref_dequantize(scale, codes, fmt):
    if scale == 255:
        return [QNAN] * len(codes)
    out = []
    for code in codes:
        v = element_value(code, fmt)
        if np.isnan(v):
            out.append(QNAN)
            continue
        with np.errstate(over="ignore"):
            out.append(int(np.float32(v * 2.0 ** (scale - 127)).view(np.uint32)))
    return out


def test_reference_corners():
    assert ref_dequantize(254, [0x7F], "mxint8") == [0x7F7E0000]        # 127/64 * 2**127
    assert ref_dequantize(254, [0x7E], "mxfp8_e4m3") == [0x7F800000]    # 448 * 2**127 -> Inf
    assert ref_dequantize(0, [0x01], "mxfp8_e5m2") == [1 << 6]          # 2**-143
    assert ref_dequantize(0, [0x80], "mxfp8_e4m3") == [0x80000000]      # -0
    assert ref_dequantize(0, [0x80], "mxint8") == [0x80800000]          # -2 * 2**-127
    assert ref_dequantize(127, [0xFC], "mxfp8_e5m2") == [0xFF800000]    # -Inf
    assert ref_dequantize(127, [0xFF], "mxfp8_e4m3") == [QNAN]


# --- stimulus -------------------------------------------------------------------------------------

def all_code_blocks(fmt, block_size, rng):
    """Every element code with every scale of SCALES, plus random blocks."""
    codes = list(range(1 << WIDTH[fmt]))
    blocks = []
    for scale in SCALES:
        shuffled = codes[:]
        rng.shuffle(shuffled)
        while len(shuffled) % block_size:
            shuffled.append(rng.choice(codes))
        blocks += [(scale, shuffled[k:k + block_size])
                   for k in range(0, len(shuffled), block_size)]
    return blocks


def random_blocks(fmt, block_size, rng, count):
    return [(rng.choice([rng.randrange(256), rng.randrange(240, 256), rng.randrange(0, 20)]),
             [rng.randrange(1 << WIDTH[fmt]) for _ in range(block_size)]) for _ in range(count)]


def to_input(block, width):
    scale, codes = block
    return scale | pack(codes, width) << 8


def check_blocks(dut, blocks, *, seed, idle, stall):
    rng = random.Random(seed)
    width, n, lanes = dut.elem.width, dut.beats_per_block, dut.lanes
    run = run_stream(dut, [to_input(b, width) for b in blocks], n * len(blocks), rng=rng,
                     idle=idle, stall=stall)
    for k, block in enumerate(blocks):
        got = [v for word in run.outputs[k * n:(k + 1) * n] for v in unpack(word, 32, lanes)]
        want = ref_dequantize(*block, dut.fmt.name)
        assert got == want, (
            f"block {k} (seed {seed}) of {dut.fmt.name}: scale {block[0]} codes "
            f"{[hex(c) for c in block[1]]}\n  expected {[hex(v) for v in want]}\n"
            f"  got      {[hex(v) for v in got]}")
    return run


CONFIGS = [
    # (fmt, block_size, lanes)
    *[(fmt, 32, lanes) for fmt in ALL_FORMATS for lanes in (32, 4)],
    ("mxfp8_e5m2", 32, 1), ("mxint8", 32, 1), ("mxfp4_e2m1", 64, 16),
    *[(fmt, 2, lanes) for fmt in ALL_FORMATS for lanes in (1, 2)],
]


@pytest.mark.parametrize("fmt,block_size,lanes", CONFIGS)
def test_dequantize(fmt, block_size, lanes):
    seed = zlib.crc32(repr((fmt, block_size, lanes)).encode())
    rng = random.Random(seed)
    dut = MXDequantize(fmt, block_size=block_size, lanes=lanes)
    blocks = all_code_blocks(fmt, block_size, rng) + random_blocks(fmt, block_size, rng, 10)
    check_blocks(dut, blocks, seed=seed, idle=0.3, stall=0.3)


# --- one element, every code with every scale (combinational) ------------------------------------

@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_element_decoder_exhaustive(fmt):
    codes = np.arange(1 << WIDTH[fmt])
    if fmt == "mxint8":
        values = codes.astype(np.uint8).view(np.int8).astype(np.float64) / 64
    else:
        values = codes.astype(np.uint8).view(DTYPE[fmt]).astype(np.float64)
    with np.errstate(over="ignore"):
        want = (values[None, :] * np.ldexp(1.0, np.arange(256) - 127)[:, None]) \
            .astype(np.float32).view(np.uint32)
    want[np.isnan(values)[None, :].repeat(256, axis=0)] = QNAN
    want[255, :] = QNAN
    dut = ElementDecoder(mx_format(fmt).element)
    got = np.zeros_like(want)

    async def bench(ctx):
        for scale in range(256):
            ctx.set(dut.scale, scale)
            for code in codes:
                ctx.set(dut.code, int(code))
                got[scale, code] = ctx.get(dut.value)

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    bad = np.argwhere(got != want)
    assert not len(bad), "; ".join(f"scale {s} code {c:#x}: expected {want[s, c]:#010x}, "
                                   f"got {got[s, c]:#010x}" for s, c in bad[:5])


# --- timing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("block_size,lanes", [(32, 32), (32, 8), (2, 1), (4, 1)])
def test_latency_and_throughput(block_size, lanes):
    dut = MXDequantize("mxfp8_e4m3", block_size=block_size, lanes=lanes)
    blocks = random_blocks("mxfp8_e4m3", block_size, random.Random(3), 5)
    run = check_blocks(dut, blocks, seed=3, idle=0.0, stall=0.0)
    n = dut.beats_per_block
    first = run.in_cycles[0] + dut.latency
    assert run.out_valid_cycles[0] == first
    assert run.out_cycles == list(range(first, first + n * len(blocks)))  # one beat per cycle
    assert run.out_valid_cycles == run.out_cycles
    # Each block is accepted while its predecessor's last beat leaves the block register.
    assert [o - i for i, o in zip(run.in_cycles, run.out_cycles[::n])] == \
        [dut.latency] * len(blocks)


@pytest.mark.parametrize("lanes", [1, 4])
def test_backpressure_fills_and_drains(lanes):
    dut = MXDequantize("mxint8", block_size=4, lanes=lanes)
    n = dut.beats_per_block
    blocks = random_blocks("mxint8", 4, random.Random(4), 4)
    words = [to_input(b, 8) for b in blocks]
    outputs = []

    async def bench(ctx):
        accepted = 0
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 1)
        for _ in range(10):
            ctx.set(Value.cast(dut.i.payload), words[accepted])
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            accepted += ready
        # Output register holds beat 0; the block register holds the rest of block 0 (n > 1)
        # or block 1 (n == 1).
        assert accepted == (1 if n > 1 else 2)
        ctx.set(dut.i.valid, 0)
        for _ in blocks:
            for _ in range(n):
                outputs.append(await stream_get(ctx, dut.o))
            if accepted < len(blocks):
                await stream_put(ctx, dut.i, words[accepted])
                accepted += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    got = [v for word in outputs for v in unpack(word, 32, lanes)]
    assert got == [v for b in blocks for v in ref_dequantize(*b, "mxint8")]


# --- construction, Verilog ------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_verilog(fmt):
    dut = MXDequantize(fmt, block_size=4, lanes=2)
    text = verilog.convert(dut, name=f"mx_dequantize_{fmt}", emit_src=False)
    width = WIDTH[fmt]
    for port in (f"input [{8 + 4 * width - 1}:0] i__payload;", "input i__valid;",
                 "output i__ready;", "output [63:0] o__payload;", "output o__valid;",
                 "input o__ready;", "input clk;", "input rst;"):
        assert port in text, port


def test_verilog_default_config():
    dut = MXDequantize("mxfp8_e4m3")
    text = verilog.convert(dut, name="mx_dequantize_mxfp8_e4m3", emit_src=False)
    assert "module mx_dequantize_mxfp8_e4m3(" in text
    for port in TB_PORTS:                       # what the co-simulation testbench drives
        assert f" {port};" in text, port


def test_properties():
    dut = MXDequantize("mxfp6_e3m2", block_size=16, lanes=4)
    assert dut.beats_per_block == 4
    assert isinstance(dut.latency, int) and dut.latency >= 1
    assert "1 output beat per cycle" in dut.throughput
    default = MXDequantize("mxfp6_e3m2")
    assert (default.block_size, default.lanes, default.beats_per_block) == (32, 32, 1)


@pytest.mark.parametrize("kwargs,message", [
    ({"fmt": "fp8"}, (r"^fmt must be one of mxfp8_e5m2, mxfp8_e4m3, mxfp6_e3m2, mxfp6_e2m3, "
                      r"mxfp4_e2m1, mxint8; not 'fp8'$")),
    ({"fmt": None}, r"^fmt must be one of .*; not None$"),
    ({"fmt": "mxfp4_e2m1", "block_size": 48},
     r"^block_size must be a power of two in 2\.\.64, not 48$"),
    ({"fmt": "mxfp4_e2m1", "block_size": True},
     r"^block_size must be a power of two in 2\.\.64, not True$"),
    ({"fmt": "mxfp4_e2m1", "block_size": 4, "lanes": 3},
     r"^lanes must be a power of two that divides block_size \(4\): 1, 2, 4; not 3$"),
    ({"fmt": "mxfp4_e2m1", "lanes": 64}, r"^lanes must be .*\(32\).*; not 64$"),
])
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MXDequantize(**kwargs)
