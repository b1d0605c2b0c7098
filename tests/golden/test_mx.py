"""MX golden model: quantize/dequantize, §11 edge cases, packing and dot products.

Independent oracles: a slow pure-Python ``fractions`` reference (written from MX_SPEC §4/§6/§11,
sharing no code with ``sim.golden``), ml_dtypes / numpy float32 arithmetic, and hand-worked cases.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from hdl.formats import MX_FORMATS, mx_format
from sim.golden import mx

from .reference import REF, ref_element_value, ref_fp32_bits, ref_quantize_block

FORMATS = list(MX_FORMATS)
ROUNDINGS = ("even", "nearest", "floor")
F32_MAX = np.finfo(np.float32).max
NAN = 0x7FC00000


def f32(*v):
    return np.array(v, dtype=np.float32)


def bits(a):
    return np.asarray(a, dtype=np.float32).view(np.uint32)


# ----------------------------------------------------------------------------------------------
# random block generators (float32 blocks, mixed hazards)

def _gen_blocks(rng, name, n, bs):
    e = REF[name].elem
    out = np.empty((n, bs), dtype=np.float32)
    for i in range(n):
        kind = i % 6
        if kind == 0:                                           # heavy-tailed, any magnitude
            v = rng.standard_t(1.5, bs) * 2.0 ** rng.integers(-150, 120)
            v = np.clip(v, -F32_MAX, F32_MAX)
        elif kind == 1:                                         # tiny: subnormals, small normals
            u = rng.integers(0, 1 << 23, bs, dtype=np.uint32) | (
                rng.integers(0, 4, bs, dtype=np.uint32) << 23)
            v = (u | (rng.integers(0, 2, bs, dtype=np.uint32) << 31)).view(np.float32)
        elif kind == 2:                                         # huge
            u = rng.integers(0, 1 << 23, bs, dtype=np.uint32) | (
                rng.integers(248, 255, bs, dtype=np.uint32) << 23)
            v = (u | (rng.integers(0, 2, bs, dtype=np.uint32) << 31)).view(np.float32)
        elif kind == 3:                                         # near powers of two
            k = rng.integers(-140, 127)
            d = rng.integers(-64, 65, bs).astype(np.float64)
            v = 2.0 ** (k + rng.integers(-3, 1, bs)) * (1 + d * 2.0 ** -24)
        elif kind == 4:                                         # ties on the element grid
            s = int(rng.integers(-100, 100))
            vals = REF[name].vals
            j = rng.integers(0, len(vals) - 1, bs)
            mids = [(vals[a] + vals[a + 1]) / 2 for a in j]
            v = np.array([float(m * Fraction(2) ** s) for m in mids])
            v[0] = float(Fraction(2) ** (s + e.emax))           # fixes the scale at s
            v *= rng.choice([-1.0, 1.0], bs)
        else:                                                   # uniform, with zeros
            v = rng.uniform(-1, 1, bs) * 2.0 ** rng.integers(-130, 128)
            v[rng.random(bs) < 0.3] = 0.0
        v = np.asarray(v, dtype=np.float64).astype(np.float32)
        assert np.all(np.isfinite(v))
        if kind == 4:                                           # ... and one FP32 ulp either side
            nudge = rng.integers(-1, 2, bs)
            nudge[0] = 0
            v = np.where(nudge > 0, np.nextafter(v, np.float32(np.inf)),
                         np.where(nudge < 0, np.nextafter(v, np.float32(-np.inf)), v))
        out[i] = v
        if rng.random() < 0.2:
            out[i, rng.integers(0, bs)] = np.float32(-0.0)
    return out


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("name", FORMATS)
def test_quantize_matches_fraction_reference(name, rounding):
    rng = np.random.default_rng([FORMATS.index(name), ROUNDINGS.index(rounding)])
    for bs, n in ((32, 150), (8, 60), (1, 30)):
        blocks = _gen_blocks(rng, name, n, bs)
        flush = bs == 8
        scales, codes = mx.quantize_blocks(blocks.view(np.uint32), name, rounding, flush)
        assert scales.dtype == np.uint8 and codes.dtype == np.uint8
        for i in range(n):
            s_ref, c_ref = ref_quantize_block(blocks[i], name, rounding, flush)
            assert scales[i] == s_ref, (i, blocks[i])
            assert codes[i].tolist() == c_ref, (i, blocks[i], codes[i], c_ref)


@pytest.mark.parametrize("name", FORMATS)
def test_dequantize_matches_fraction_reference(name):
    """Random scales and codes: every output is X*P exactly, or +-Inf beyond FP32, or NaN."""
    rng = np.random.default_rng(100 + FORMATS.index(name))
    e = REF[name].elem
    scales = rng.integers(0, 256, 400).astype(np.uint8)
    scales[:8] = [0, 1, 2, 254, 253, 255, 127, 126]
    codes = rng.integers(0, 1 << e.width, (400, 32)).astype(np.uint8)
    got = mx.dequantize_blocks(scales, codes, name)
    assert got.dtype == np.uint32 and got.shape == codes.shape
    for i, j in itertools.product(range(400), range(32)):
        c = int(codes[i, j])
        if scales[i] == 255:
            assert got[i, j] == NAN
            continue
        p = ref_element_value(name, c)
        if p is None:
            want = (0xFF800000 if c >> 7 else 0x7F800000) if e.is_inf_code(c) else NAN
        else:
            v = p * Fraction(2) ** (int(scales[i]) - 127)
            want = ref_fp32_bits(v)
            if want & 0x7FFFFFFF < 0x7F800000:
                assert Fraction(float(np.uint32(want).view(np.float32))) == abs(v) * (
                    -1 if v < 0 else 1), "X*P must be exact"
            if p == 0 and e.is_float and c >> (e.width - 1):
                want = 0x80000000                              # -0 element keeps its sign
        assert got[i, j] == want, (scales[i], c)


# ----------------------------------------------------------------------------------------------
# E8M0 scales

@pytest.mark.parametrize("name", FORMATS)
def test_every_e8m0_code_through_dequantize(name):
    e = REF[name].elem
    one = REF[name].codes[REF[name].vals.index(1)]
    scales = np.arange(256, dtype=np.uint8)
    codes = np.full((256, 4), one, dtype=np.uint8)
    codes[:, 1] = 0
    q = mx.MXArray(scales=scales.reshape(1, 256), codes=codes.reshape(1, 1024),
                   fmt=mx_format(name), block_size=4, axis=1, shape=(1, 1024))
    y = mx.dequantize(q).reshape(256, 4)
    yb = mx.dequantize_bits(q).reshape(256, 4)
    want = np.ldexp(np.float32(1), np.arange(-127, 128)).astype(np.float32)
    assert want[0] == np.float32(2.0 ** -127) and want[0] < np.finfo(np.float32).tiny
    assert np.array_equal(bits(y[:255, 0]), bits(want))
    assert np.all(bits(y[:255, 1]) == 0)
    assert np.all(yb[255] == NAN)                              # whole block NaN
    # Largest element at the largest scale: beyond FP32 -> Inf, except INT8 (1.98 * 2**127).
    neg_max = e.max_code | (1 << (e.width - 1)) if e.is_float else 256 - e.max_code
    top = mx.dequantize_blocks(np.array([254, 254], np.uint8),
                               np.array([[e.max_code], [neg_max]]), name)[:, 0]
    if e.is_float:
        assert top.tolist() == [0x7F800000, 0xFF800000]
    else:
        assert top.view(np.float32).tolist() == [127 / 64 * 2.0 ** 127, -127 / 64 * 2.0 ** 127]
        assert mx.dequantize_blocks(np.array([254], np.uint8), np.array([[0x80]]),
                                    name)[0, 0] == 0xFF800000     # -2 * 2**127 = -2**128


def test_int8_0x80_decodes_to_minus_two():
    y = mx.dequantize_blocks(np.array([127, 130], np.uint8), np.array([[0x80], [0x80]]), "mxint8")
    assert y.view(np.float32)[:, 0].tolist() == [-2.0, -16.0]


# ----------------------------------------------------------------------------------------------
# §11 edge cases

@pytest.mark.parametrize("name", FORMATS)
def test_nan_and_inf_blocks(name):
    x = np.ones((4, 32), dtype=np.float32)
    x[0, 3] = np.nan
    x[1, 31] = np.inf
    x[2, 0] = -np.inf
    x[:3, 5] = 1e30
    q = mx.quantize(x, name)
    assert q.scales[:, 0].tolist() == [255, 255, 255, 127 - REF[name].elem.emax]
    assert np.all(q.codes[:3] == 0)
    y = mx.dequantize_bits(q)
    assert np.all(y[:3] == NAN)
    assert np.all(y[3] == bits(1.0))


@pytest.mark.parametrize("name", FORMATS)
def test_all_zero_blocks(name):
    x = np.zeros((3, 32), dtype=np.float32)
    x[1] = -0.0
    x[2, ::2] = -0.0
    q = mx.quantize(x, name)
    assert np.all(q.scales == 0) and np.all(q.codes == 0)
    assert np.all(mx.dequantize_bits(q) == 0)                  # +0.0 everywhere


@pytest.mark.parametrize("name", FORMATS)
def test_negative_zero_and_negative_tiny_in_nonzero_block(name):
    e = REF[name].elem
    x = f32(1.0, -0.0, -1e-30, 1e-30, 0.0, -1.0)
    q = mx.quantize(x, name, block_size=8)
    sign = 1 << (e.width - 1)
    c = q.codes[:6].tolist()
    if e.is_float:
        assert c[1:5] == [sign, sign, 0, 0]
        assert mx.dequantize_bits(q)[1:3].tolist() == [0x80000000, 0x80000000]
    else:
        assert c[1:5] == [0, 0, 0, 0]                          # INT8: one zero
        assert c[5] == 0xC0                                     # -64 (= -1.0 at X = 1)


@pytest.mark.parametrize("name", FORMATS)
def test_flt_max(name):
    e = REF[name].elem
    x = f32(F32_MAX, -F32_MAX, 1.0, 0.0)
    q = mx.quantize(x, name, block_size=4)
    assert q.scales.tolist() == [254 - e.emax]
    neg = e.max_code | (1 << (e.width - 1)) if e.is_float else 256 - e.max_code
    assert q.codes[:2].tolist() == [e.max_code, neg]           # saturated
    y = mx.dequantize(q)
    assert np.all(np.isfinite(y))
    assert y[0] == np.float32(float(e.max_value * Fraction(2) ** (127 - e.emax)))


@pytest.mark.parametrize("name", FORMATS)
def test_fp32_subnormal_inputs(name):
    tiny = np.finfo(np.float32).tiny
    sub = np.array([1, 2, 3, 0x7FFFFF, 0x400000], dtype=np.uint32).view(np.float32)
    x = np.concatenate([sub, -sub[:3]]).astype(np.float32)
    q = mx.quantize(x, name, block_size=8)
    assert q.scales.tolist() == [0]                            # block max subnormal -> s = -127
    s_ref, c_ref = ref_quantize_block(x, name, "even")
    assert s_ref == 0 and q.codes.tolist() == c_ref
    # Largest subnormal vs smallest normal: both give scale code max(E - emax, 0) with E = 0 / 1.
    q2 = mx.quantize(f32(tiny, 0), name, block_size=2)
    assert q2.scales.tolist() == [max(1 - REF[name].elem.emax, 0)]
    # flush_subnormals: an all-subnormal block becomes an all-zero block.
    qf = mx.quantize(x, name, block_size=8, flush_subnormals=True)
    assert qf.scales.tolist() == [0] and np.all(qf.codes == 0)
    # ... and a negative subnormal in a normal block becomes a signed zero.
    qf = mx.quantize(f32(1.0, -sub[0]), name, block_size=2, flush_subnormals=True)
    e = REF[name].elem
    assert qf.codes[1] == ((1 << (e.width - 1)) if e.is_float else 0)


@pytest.mark.parametrize("name", FORMATS)
def test_block_max_one_ulp_below_power_of_two(name):
    e = REF[name].elem
    for k in (-126, -100, -1, 0, 1, 50, 127):
        below = np.nextafter(np.float32(2.0 ** k), np.float32(0))
        q = mx.quantize(f32(below, 0.5 * below), name, block_size=2)
        assert q.scales[0] == max(k - 1 - e.emax, -127) + 127, k
        q = mx.quantize(f32(2.0 ** k), name, block_size=1)
        assert q.scales[0] == max(k - e.emax, -127) + 127, k
    # 2**-126 minus one ulp is the largest subnormal: scale code 0 for every format.
    below = np.nextafter(np.finfo(np.float32).tiny, np.float32(0))
    assert mx.quantize(f32(below), name, block_size=1).scales[0] == 0


@pytest.mark.parametrize("name", FORMATS)
def test_partial_last_block(name):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(40).astype(np.float32)
    q = mx.quantize(x, name)
    assert q.scales.shape == (2,) and q.codes.shape == (64,) and q.shape == (40,)
    assert np.all(q.codes[40:] == 0)
    padded = np.concatenate([x, np.zeros(24, np.float32)])
    qp = mx.quantize(padded, name)
    assert np.array_equal(q.scales, qp.scales) and np.array_equal(q.codes, qp.codes)
    y = mx.dequantize(q)
    assert y.shape == (40,) and y.dtype == np.float32
    assert np.array_equal(bits(y), bits(mx.dequantize(qp)[:40]))


@pytest.mark.parametrize("name", FORMATS)
def test_axis_not_last(name):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((3, 40, 5)) * 10).astype(np.float32)
    q = mx.quantize(x, name, axis=1, block_size=16)
    assert q.axis == 1 and q.shape == (3, 40, 5)
    assert q.scales.shape == (3, 3, 5) and q.codes.shape == (3, 48, 5)
    ref = mx.quantize(np.moveaxis(x, 1, -1), name, block_size=16)
    assert np.array_equal(q.scales, np.moveaxis(ref.scales, -1, 1))
    assert np.array_equal(q.codes, np.moveaxis(ref.codes, -1, 1))
    y = mx.dequantize(q)
    assert y.shape == x.shape
    assert np.array_equal(bits(y), bits(np.moveaxis(mx.dequantize(ref), -1, 1)))
    q0 = mx.quantize(x, name, axis=-3, block_size=2)
    assert q0.axis == 0 and q0.scales.shape == (2, 40, 5) and q0.codes.shape == (4, 40, 5)


def test_rounding_modes_on_exact_ties():
    # FP4 E2M1 with the block max 4.0 -> X = 1. Grid: 0 .5 1 1.5 2 3 4 6.
    x = f32(4.0, 2.5, 0.25, -2.5, 5.0, 0.75, 5.9, -5.9, 7.9, -0.25)
    got = {r: mx.quantize(x, "mxfp4_e2m1", block_size=16, rounding=r).codes[:10].tolist()
           for r in ROUNDINGS}
    assert got["even"] == [6, 4, 0, 0xC, 6, 2, 7, 0xF, 7, 0x8]
    assert got["nearest"] == [6, 5, 1, 0xD, 7, 2, 7, 0xF, 7, 0x9]
    assert got["floor"] == [6, 4, 0, 0xC, 6, 1, 6, 0xE, 7, 0x8]
    # INT8, block max 1.0 -> X = 1, q = 64 * v.
    x = f32(1.0, 1.5 / 64, 2.5 / 64, -0.5 / 64, -1.5 / 64, 0.3 / 64)
    got = {r: mx.quantize(x, "mxint8", block_size=8, rounding=r).codes[:6].tolist()
           for r in ROUNDINGS}
    assert got["even"] == [64, 2, 2, 0, 0xFE, 0]
    assert got["nearest"] == [64, 2, 3, 0xFF, 0xFE, 0]
    assert got["floor"] == [64, 1, 2, 0, 0xFF, 0]


def test_int8_never_emits_0x80_and_saturates():
    almost2 = np.nextafter(np.float32(2), np.float32(0))
    q = mx.quantize(f32(-almost2, almost2, -1.0, -1.99), "mxint8", block_size=4)
    assert q.scales.tolist() == [127]
    assert q.codes.tolist() == [0x81, 0x7F, 0xC0, 0x81]        # -127, 127, -64, -127
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((2000, 32)) * 2.0 ** rng.integers(-20, 20, (2000, 1))).astype(
        np.float32)
    for r in ROUNDINGS:
        c = mx.quantize(x, "mxint8", rounding=r).codes
        assert not np.any(c == 0x80)
        assert np.any(c == 0x81) and np.any(c == 0x7F)


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_error_bounds(name):
    e = REF[name].elem
    rng = np.random.default_rng(10 + FORMATS.index(name))
    x = (rng.standard_t(3, (3000, 32)) * 2.0 ** rng.integers(-60, 60, (3000, 1))).astype(
        np.float32)
    q = mx.quantize(x, name)
    y = mx.dequantize(q).astype(np.float64)
    xd = x.astype(np.float64)
    assert q.scales.shape == (3000, 1)
    X = np.broadcast_to(np.ldexp(1.0, q.scales.astype(np.int64) - 127), x.shape)
    mxv = float(e.max_value)
    sat = np.abs(xd) / X >= mxv
    assert np.array_equal(y[sat], np.sign(xd[sat]) * mxv * X[sat])
    # Not saturated: |error| <= half an element ulp at the value's (clipped) exponent, times X.
    v = np.abs(xd[~sat]) / X[~sat]
    if e.is_float:
        t = np.maximum(np.floor(np.log2(np.maximum(v, 2.0 ** -200))), e.emin)
        half_ulp = 2.0 ** (t - e.mbits - 1)
    else:
        half_ulp = np.full(v.shape, 2.0 ** -7)
    err = np.abs(y[~sat] - xd[~sat]) / X[~sat]
    assert np.all(err <= half_ulp)
    assert np.all(np.signbit(y[y != 0]) == np.signbit(xd[y != 0]))


def test_float16_input_converts_exactly():
    h = np.array([1.5, -0.000061, 65504.0, 0.0], dtype=np.float16)
    q16 = mx.quantize(h, "mxfp8_e4m3", block_size=4)
    q32 = mx.quantize(h.astype(np.float32), "mxfp8_e4m3", block_size=4)
    assert np.array_equal(q16.codes, q32.codes) and np.array_equal(q16.scales, q32.scales)


def test_empty_and_byte_swapped_inputs():
    for shape, axis in (((0,), -1), ((3, 0), 1), ((0, 5), 1)):
        q = mx.quantize(np.ones(shape, np.float32), "mxint8", block_size=4, axis=axis)
        assert mx.dequantize(q).shape == shape
    assert q.scales.shape == (0, 2) and q.codes.shape == (0, 8)
    qs = mx.quantize(np.array([1, 2, 3], dtype=">f4"), "mxint8", block_size=4)
    assert qs.codes.tolist() == [32, 64, 96, 0] and qs.scales.tolist() == [128]
    empty = np.zeros((2, 0), np.uint8), np.zeros((2, 0, 4), np.uint8)
    for mode in ("exact", "fp32"):
        assert mx.dot(*empty, *empty, "mxint8", "mxint8", mode=mode).tolist() == [0, 0]


def test_mxarray_fields():
    x = np.ones((2, 33), dtype=np.float32)
    q = mx.quantize(x, mx_format("mxfp6_e2m3"), block_size=32, rounding="floor")
    assert q.fmt is MX_FORMATS["mxfp6_e2m3"]
    assert (q.block_size, q.axis, q.shape, q.rounding, q.n_blocks) == (32, 1, (2, 33), "floor", 2)
    assert q.scales.dtype == np.uint8 and q.codes.dtype == np.uint8
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.block_size = 16                                       # frozen
    with pytest.raises(ValueError, match=r"codes must be a uint8 array of shape \(2, 64\)"):
        mx.MXArray(q.scales, q.codes[:, :32], q.fmt, 32, 1, (2, 33))


# ----------------------------------------------------------------------------------------------
# packing (§7, §11)

def test_pack_spec_example():
    q = mx.quantize(f32(4, 0.5, -6, 0), "mxfp4_e2m1", block_size=4)
    assert q.scales.tolist() == [127] and q.codes.tolist() == [0x6, 0x1, 0xF, 0x0]
    assert mx.pack(q.codes, "fp4_e2m1").tolist() == [0x16, 0x0F]
    assert mx.unpack(np.array([0x16, 0x0F], np.uint8), "fp4_e2m1", 4).tolist() == [6, 1, 15, 0]


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("bs", [1, 2, 4, 8, 32, 64])
def test_pack_unpack_round_trip(name, bs):
    e = REF[name].elem
    rng = np.random.default_rng(bs)
    codes = rng.integers(0, 1 << e.width, (5, 3, bs)).astype(np.uint8)
    p = mx.pack(codes, name)
    nbytes = -(-bs * e.width // 8)
    assert p.dtype == np.uint8 and p.shape == (5, 3, nbytes)
    for idx in np.ndindex(5, 3):
        word = sum(int(c) << (e.width * i) for i, c in enumerate(codes[idx]))
        assert bytes(p[idx]) == word.to_bytes(nbytes, "little")
    assert np.array_equal(mx.unpack(p, e, bs), codes)


# ----------------------------------------------------------------------------------------------
# FP32 rounding helper

def test_round_to_fp32_against_float64_cast():
    rng = np.random.default_rng(12)
    for _ in range(3000):
        n = int(rng.integers(-(1 << 53) + 1, 1 << 53)) >> int(rng.integers(0, 50))
        ex = int(rng.integers(-210, 90))
        d = math.ldexp(float(n), ex)                            # exact (n < 2**53, no underflow)
        with np.errstate(over="ignore"):
            want = int(np.float64(d).astype(np.float32).view(np.uint32))
        if n == 0:
            want = 0
        assert mx.round_to_fp32(n, ex) == want, (n, ex)


def test_round_to_fp32_big_and_edges():
    rng = np.random.default_rng(13)
    for _ in range(500):
        n = int(rng.integers(1, 1 << 62)) * int(rng.integers(1, 1 << 62)) * int(
            rng.choice([-1, 1]))
        ex = int(rng.integers(-300, 30))
        assert mx.round_to_fp32(n, ex) == ref_fp32_bits(Fraction(n) * Fraction(2) ** ex)
    assert mx.round_to_fp32(0, 5) == 0
    assert mx.round_to_fp32(2 ** 128 - 2 ** 103, 0) == 0x7F800000          # tie above FLT_MAX
    assert mx.round_to_fp32(2 ** 128 - 2 ** 103 - 1, 0) == 0x7F7FFFFF
    assert mx.round_to_fp32(-(2 ** 200), 0) == 0xFF800000
    assert mx.round_to_fp32(1, -150) == 0                                   # tie -> even (0)
    assert mx.round_to_fp32(-1, -150) == 0x80000000                         # signed zero
    assert mx.round_to_fp32(3, -151) == 1                                   # 0.75 ulp -> 1
    assert mx.round_to_fp32(2 ** 150 + 1, -150) == 0x3F800000               # 1 + 2**-150
    assert mx.round_to_fp32(2 ** 24 + 1, -24) == 0x3F800000                 # tie -> even
    assert mx.round_to_fp32(2 ** 24 + 3, -24) == 0x3F800002
    assert mx.round_to_fp32(2 ** 23 - 1, -149) == 0x007FFFFF                # max subnormal
    assert mx.round_to_fp32(2 ** 24 - 1, -150) == 0x00800000                # carry -> normal


# ----------------------------------------------------------------------------------------------
# dot products (§6, §11)

def _random_operands(rng, name, groups, blocks, bs=32, specials=True):
    e = REF[name].elem
    scales = rng.integers(100, 155, (groups, blocks)).astype(np.uint8)
    codes = rng.integers(0, 1 << e.width, (groups, blocks, bs)).astype(np.uint8)
    if e.is_float:                                               # avoid NaN/Inf except on purpose
        bad = np.vectorize(lambda c: e.is_nan_code(int(c)) or e.is_inf_code(int(c)))(codes)
        codes[bad] = 0
    if specials and groups > 3:
        scales[0, 0] = 255                                       # NaN scale
        scales[1] = rng.integers(0, 4, blocks)                   # tiny: subnormal / zero results
        scales[2] = rng.integers(250, 255, blocks)               # huge: overflow
    return scales, codes


def _ref_block_values(a_s, a_c, b_s, b_c, fa, fb):
    """Per block: Fraction value or None for NaN."""
    out = []
    for j in range(a_s.shape[0]):
        if a_s[j] == 255 or b_s[j] == 255:
            out.append(None)
            continue
        acc = Fraction(0)
        for ca, cb in zip(a_c[j], b_c[j]):
            pa, pb = ref_element_value(fa, int(ca)), ref_element_value(fb, int(cb))
            if pa is None or pb is None:
                acc = None
                break
            acc += pa * pb
        out.append(None if acc is None else
                   acc * Fraction(2) ** (int(a_s[j]) + int(b_s[j]) - 254))
    return out


@pytest.mark.parametrize("fa,fb", list(itertools.product(FORMATS, FORMATS)))
def test_dot_against_fraction_reference(fa, fb):
    rng = np.random.default_rng([FORMATS.index(fa), FORMATS.index(fb), 5])
    groups, blocks, bs = 8, 3, 32
    a_s, a_c = _random_operands(rng, fa, groups, blocks, bs)
    b_s, b_c = _random_operands(rng, fb, groups, blocks, bs)
    bd = mx.block_dot_exact(a_s, a_c, b_s, b_c, fa, fb)
    ex = mx.dot(a_s, a_c, b_s, b_c, fa, fb, mode="exact")
    f3 = mx.dot(a_s, a_c, b_s, b_c, fa, fb, mode="fp32")
    assert ex.dtype == np.uint32 and ex.shape == (groups,) and f3.shape == (groups,)
    for g in range(groups):
        vals = _ref_block_values(a_s[g], a_c[g], b_s[g], b_c[g], fa, fb)
        for j, v in enumerate(vals):
            assert bd.is_nan[g, j] == (v is None)
            if v is not None:
                got = Fraction(bd.total[g, j]) * Fraction(2) ** (
                    int(bd.exponent[g, j]) + bd.lsb_exp)
                assert got == v
                assert bd.exponent[g, j] == int(a_s[g, j]) + int(b_s[g, j]) - 254
        if any(v is None for v in vals):
            assert ex[g] == NAN and f3[g] == NAN
            continue
        assert ex[g] == ref_fp32_bits(sum(vals, Fraction(0)))
        acc = np.float32(0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            for v in vals:
                acc = np.float32(acc + np.uint32(ref_fp32_bits(v)).view(np.float32))
        want = NAN if np.isnan(acc) else int(acc.view(np.uint32))
        assert f3[g] == want


def _int8_blocks(values_and_scales):
    """[(q_a, s_a, q_b, s_b), ...] -> one group of 1-element INT8 blocks."""
    a_c = np.array([[[qa & 0xFF] for qa, _, _, _ in values_and_scales]])
    a_s = np.array([[sa + 127 for _, sa, _, _ in values_and_scales]])
    b_c = np.array([[[qb & 0xFF] for _, _, qb, _ in values_and_scales]])
    b_s = np.array([[sb + 127 for _, _, _, sb in values_and_scales]])
    return a_s, a_c, b_s, b_c


def _dot_int8(blocks, mode):
    a_s, a_c, b_s, b_c = _int8_blocks(blocks)
    return int(mx.dot(a_s, a_c, b_s, b_c, "mxint8", "mxint8", mode=mode)[0])


def test_dot_ties_and_order():
    one = (64, 0, 64, 0)                                         # 1.0 * 1.0
    eps = (64, -12, 64, -12)                                     # 2**-24
    three_eps = (3 * 64 // 64, -12, 64, -6)                      # 3/64 * 2**-18 -> 3 * 2**-24
    assert _dot_int8([one, eps], "exact") == 0x3F800000          # 1 + 2**-24: tie -> even
    assert _dot_int8([one, three_eps], "exact") == 0x3F800002    # 1 + 3*2**-24 -> 1 + 2**-22
    # Exact accumulation differs from per-block FP32 accumulation.
    assert _dot_int8([one, eps, eps], "exact") == 0x3F800001
    assert _dot_int8([one, eps, eps], "fp32") == 0x3F800000
    big, neg_big = (64, 50, 64, 50), (-64, 50, 64, 50)           # +-2**100
    assert _dot_int8([big, one, neg_big], "exact") == 0x3F800000
    assert _dot_int8([big, one, neg_big], "fp32") == 0           # 1.0 absorbed, +0.0
    assert _dot_int8([big, neg_big], "exact") == 0               # exact zero -> +0.0
    assert _dot_int8([(-64, 0, 64, 0), (64, 0, 64, 0)], "fp32") == 0


def test_dot_overflow_underflow():
    e4 = MX_FORMATS["mxfp8_e4m3"].element
    big = np.array([[254]]), np.array([[[e4.max_code]]])
    negbig = np.array([[254]]), np.array([[[e4.max_code | 0x80]]])
    for mode in ("exact", "fp32"):
        assert mx.dot(*big, *big, "mxfp8_e4m3", "mxfp8_e4m3", mode=mode)[0] == 0x7F800000
        assert mx.dot(*big, *negbig, "mxfp8_e4m3", "mxfp8_e4m3", mode=mode)[0] == 0xFF800000
    # fp32 mode: +Inf + -Inf from two overflowing blocks -> NaN; exact mode cancels exactly.
    s = np.array([[254, 254]])
    a = np.array([[[e4.max_code], [e4.max_code]]])
    b = np.array([[[e4.max_code], [e4.max_code | 0x80]]])
    assert mx.dot(s, a, s, b, "mxfp8_e4m3", "mxfp8_e4m3", mode="fp32")[0] == NAN
    assert mx.dot(s, a, s, b, "mxfp8_e4m3", "mxfp8_e4m3", mode="exact")[0] == 0
    # Underflow: 2**-9 * 2**-9 * 2**-254 -> below half the smallest subnormal -> signed zero.
    tiny = np.array([[0]]), np.array([[[0x01]]])
    negtiny = np.array([[0]]), np.array([[[0x81]]])
    for mode in ("exact", "fp32"):
        assert mx.dot(*tiny, *tiny, "mxfp8_e4m3", "mxfp8_e4m3", mode=mode)[0] == 0
        neg = mx.dot(*tiny, *negtiny, "mxfp8_e4m3", "mxfp8_e4m3", mode=mode)[0]
        # exact: RNE of a tiny negative is -0; fp32: the block sum -0 added to +0.0 gives +0.
        assert neg == (0x80000000 if mode == "exact" else 0)
    # Subnormal result, exact: 1.0 * 1.0 * 2**-140.
    assert _dot_int8([(64, -70, 64, -70)], "exact") == 1 << 9


def test_dot_non_finite_elements_poison_the_group():
    e5 = MX_FORMATS["mxfp8_e5m2"].element
    inf, nan = 0x7C, 0x7D
    assert e5.is_inf_code(inf) and e5.is_nan_code(nan)
    s = np.array([[127, 127]])
    one = 0x3C                                                   # E5M2 1.0
    for bad in (inf, nan):
        a = np.array([[[one, bad], [one, one]]])
        b = np.array([[[one, one], [one, one]]])
        bd = mx.block_dot_exact(s, a, s, b, "mxfp8_e5m2", "mxfp8_e5m2")
        assert bd.is_nan.tolist() == [[True, False]] and bd.total[0, 0] == 0
        for mode in ("exact", "fp32"):
            assert mx.dot(s, a, s, b, "mxfp8_e5m2", "mxfp8_e5m2", mode=mode)[0] == NAN
    a = np.array([[[one, one], [one, one]]])
    bd = mx.block_dot_exact(s, a, s, a, "mxfp8_e5m2", "mxfp8_e5m2")
    assert bd.total.tolist() == [[2 * 4 ** 16, 2 * 4 ** 16]] and bd.lsb_exp == -32
    assert mx.dot(s, a, s, a, "mxfp8_e5m2", "mxfp8_e5m2")[0] == bits(4.0)


def test_block_dot_exact_wide_e5m2_sums():
    """E5M2 x E5M2 block sums need 70 bits: totals are exact Python ints."""
    e5 = MX_FORMATS["mxfp8_e5m2"].element
    s = np.array([127])
    a = np.full((1, 1024), e5.max_code)
    bd = mx.block_dot_exact(s, a, s, a, "mxfp8_e5m2", "mxfp8_e5m2")
    assert bd.total[0] == 1024 * (7 * 2 ** 29) ** 2
    assert bd.total[0].bit_length() > 63


# ----------------------------------------------------------------------------------------------
# errors

def test_error_messages():
    x = np.ones(8, np.float32)
    with pytest.raises(ValueError, match=r"unknown MX format 'fp9'; allowed: mxfp8_e5m2, .*mxint8"):
        mx.quantize(x, "fp9")
    with pytest.raises(ValueError, match=r"block_size must be a power of two in 1\.\.1024, not 3"):
        mx.quantize(x, "mxint8", block_size=3)
    with pytest.raises(ValueError, match=r"power of two in 1\.\.1024, not 2048"):
        mx.quantize(x, "mxint8", block_size=2048)
    with pytest.raises(ValueError, match=r"rounding must be one of 'even', 'nearest', 'floor', "
                                         r"not 'up'"):
        mx.quantize(x, "mxint8", rounding="up")
    with pytest.raises(ValueError, match=r"axis must be an int in -1\.\.0 for a 1-d x, not 5"):
        mx.quantize(x, "mxint8", axis=5)
    with pytest.raises(TypeError, match=r"x must be float32 \(or float16, which converts "
                                        r"exactly\), not float64"):
        mx.quantize(np.ones(8), "mxint8")
    with pytest.raises(TypeError, match=r"x must be float32 .*not int64"):
        mx.quantize(np.arange(8), "mxint8")
    with pytest.raises(ValueError, match=r"x must have at least one dimension"):
        mx.quantize(np.float32(1), "mxint8")
    with pytest.raises(TypeError, match=r"flush_subnormals must be a bool, not 'yes'"):
        mx.quantize(x, "mxint8", flush_subnormals="yes")
    with pytest.raises(TypeError, match=r"bits_u32 must be a uint32 array of FP32 bit patterns, "
                                        r"not float32"):
        mx.quantize_blocks(x.reshape(1, 8), "mxint8")
    with pytest.raises(ValueError, match=r"scales must be E8M0 codes in 0\.\.255, found 256"):
        mx.dequantize_blocks(np.array([256]), np.zeros((1, 4), np.uint8), "mxint8")
    with pytest.raises(ValueError, match=r"codes must be fp4_e2m1 codes in 0\.\.15, found 16"):
        mx.dequantize_blocks(np.array([1]), np.full((1, 4), 16), "mxfp4_e2m1")
    with pytest.raises(ValueError, match=r"codes must have shape scales\.shape \+ \(block_size,\)"):
        mx.dequantize_blocks(np.array([1, 2]), np.zeros((1, 4), np.uint8), "mxint8")
    with pytest.raises(ValueError, match=r"mode must be one of 'exact', 'fp32', not 'fast'"):
        mx.dot([[1]], [[[1]]], [[1]], [[[1]]], "mxint8", "mxint8", mode="fast")
    with pytest.raises(ValueError, match=r"a_codes and b_codes must have the same shape"):
        mx.dot([[1]], [[[1]]], [[1]], [[[1, 2]]], "mxint8", "mxint8")
    with pytest.raises(ValueError, match=r"packed must have last axis 16 bytes for 32 fp4_e2m1 "
                                         r"elements, not shape \(15,\)"):
        mx.unpack(np.zeros(15, np.uint8), "fp4_e2m1", 32)
    with pytest.raises(TypeError, match=r"q must be an MXArray, not ndarray"):
        mx.dequantize(np.zeros(4, np.uint8))
