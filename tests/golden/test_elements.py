"""Element codec of the MX golden model against ml_dtypes (independent oracle) and hdl.formats."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from hdl.formats import FP4_E2M1, FP6_E2M3, FP6_E3M2, FP8_E4M3, FP8_E5M2, INT8, MX_FORMATS
from sim.golden import elements as el
from sim.golden import mx

ML = {
    FP8_E5M2: ml_dtypes.float8_e5m2,
    FP8_E4M3: ml_dtypes.float8_e4m3fn,
    FP6_E3M2: ml_dtypes.float6_e3m2fn,
    FP6_E2M3: ml_dtypes.float6_e2m3fn,
    FP4_E2M1: ml_dtypes.float4_e2m1fn,
}
FP_ELEMS = list(ML)
ALL_ELEMS = [*FP_ELEMS, INT8]
MXF = {f.element: f for f in MX_FORMATS.values()}


def _all_codes(elem):
    return np.arange(1 << elem.width, dtype=np.uint8)


@pytest.mark.parametrize("elem", FP_ELEMS, ids=lambda e: e.name)
def test_every_fp_code_decodes_like_ml_dtypes(elem):
    codes = _all_codes(elem)
    ref = codes.view(ML[elem]).astype(np.float64)
    is_nan, is_inf, value = mx.decode_elements(codes, elem)
    assert np.array_equal(is_nan, np.isnan(ref))
    assert np.array_equal(is_inf, np.isinf(ref))
    assert is_nan.any() == bool(elem.nan_mantissas) and is_inf.any() == elem.has_inf
    fin = ~(is_nan | is_inf)
    got = value.astype(np.float64) * float(elem.min_subnormal)       # exact: <= 32-bit ints
    assert np.array_equal(got[fin], ref[fin])
    assert np.all(value[~fin] == 0)                 # non-finite codes carry no value
    sign = el.decode_parts(codes, elem)[0]
    assert np.array_equal(sign[fin], np.signbit(ref[fin]))          # -0 included
    assert np.array_equal(sign[is_inf], ref[is_inf] < 0)
    # Same as the pure-Python decoder of hdl.formats.
    for c in np.flatnonzero(fin):
        assert value[c] == elem.decode_exact(int(c)) / elem.min_subnormal


def test_every_int8_code_decodes_as_q_over_64():
    codes = _all_codes(INT8)
    is_nan, is_inf, value = mx.decode_elements(codes, INT8)
    assert not is_nan.any() and not is_inf.any()
    assert np.array_equal(value, codes.view(np.int8).astype(np.int64))
    assert value[0x80] == -128                      # 0x80 = -2.0 = -128 / 64
    assert INT8.min_subnormal * value[0x80] == -2


@pytest.mark.parametrize("elem", ALL_ELEMS, ids=lambda e: e.name)
def test_every_code_dequantizes_exactly_with_unit_scale(elem):
    """Scale code 127 (X = 1): dequantize_blocks gives the element value bit for bit."""
    codes = _all_codes(elem)[None, :]
    bits = mx.dequantize_blocks(np.array([127], np.uint8), codes, MXF[elem])[0]
    if elem.is_float:
        ref = codes[0].view(ML[elem]).astype(np.float32)
    else:
        ref = (codes[0].view(np.int8).astype(np.float32) / np.float32(64))
    nan = np.isnan(ref)
    assert np.array_equal(bits[~nan], ref.view(np.uint32)[~nan])      # incl. -0 and +-Inf
    assert np.all(bits[nan] == mx.FP32_NAN)


# The OCP spec's smallest subnormals (INT8: 2**-6, its fixed-point LSB), written out here rather
# than derived from hdl.formats, so a wrong emin or mbits there fails.
SPEC_LSB_EXP = {"fp8_e5m2": -16, "fp8_e4m3": -9, "fp6_e3m2": -4, "fp6_e2m3": -3,
                "fp4_e2m1": -1, "int8": -6}


@pytest.mark.parametrize("elem", ALL_ELEMS, ids=lambda e: e.name)
def test_lsb_exponent_matches_the_spec(elem):
    k = el.lsb_exponent(elem)
    assert k == SPEC_LSB_EXP[elem.name]
    assert 2.0 ** k == elem.min_subnormal
    if elem in ML:                                  # code 1 is the smallest subnormal
        assert float(np.uint8(1).view(ML[elem])) == 2.0 ** k


# ----------------------------------------------------------------------------------------------
# Rounding sweep: blocks whose element 0 is 2**emax fix the scale at X = 1 (code 127); the other
# elements must round exactly like ml_dtypes' RNE cast after clamping to +-max.

def _grid(elem):
    if elem.is_float:
        mags = sorted({float(elem.decode_exact(c)) for c in range(elem.max_code + 1)})
    else:
        mags = [q / 64 for q in range(128)]
    return np.array(mags, dtype=np.float64)


def _sweep_points(elem):
    g = _grid(elem)
    top = 2.0 ** (elem.emax + 1)                   # stay below the next binade: scale stays fixed
    mids = (g[:-1] + g[1:]) / 2
    exact = np.concatenate([g, mids, [g[1] / 2, g[1] / 4, (g[-1] + top) / 2, top]])
    pts = exact.astype(np.float32)
    assert np.all(pts.astype(np.float64) == exact)       # grid points and midpoints are exact
    pts = np.concatenate([pts, np.float32([g[1] / 3, top * 0.999])])
    up = np.nextafter(pts, np.float32(np.inf))
    down = np.nextafter(pts, np.float32(0))
    pts = np.concatenate([pts, up, down])
    pts = pts[(pts > 0) & (pts < np.float32(top))]
    rng = np.random.default_rng(elem.width * 7 + elem.mbits)
    rnd = (2.0 ** rng.uniform(-30, elem.emax + 1, 20000)).astype(np.float32)
    rnd = np.concatenate([rnd, rng.uniform(0, top, 20000).astype(np.float32)])
    rnd = rnd[rnd < np.float32(top)]
    pts = np.concatenate([pts, rnd, [np.float32(0)]])
    return np.concatenate([pts, -pts]).astype(np.float32)


def _rne_reference(elem, x):
    mx_val = np.float32(float(elem.max_value))
    c = np.clip(x, -mx_val, mx_val)
    if elem.is_float:
        return c.astype(ML[elem]).view(np.uint8)
    q = np.rint(c.astype(np.float64) * 64).astype(np.int64)     # rint: ties to even
    return (np.clip(q, -127, 127) & 0xFF).astype(np.uint8)


@pytest.mark.parametrize("elem", ALL_ELEMS, ids=lambda e: e.name)
def test_dense_sweep_rounds_like_ml_dtypes(elem):
    x = _sweep_points(elem)
    bs = 32
    n = -(-x.size // (bs - 1))
    body = np.zeros(n * (bs - 1), dtype=np.float32)
    body[:x.size] = x
    blocks = np.empty((n, bs), dtype=np.float32)
    blocks[:, 0] = np.float32(2.0 ** elem.emax)
    blocks[:, 1:] = body.reshape(n, bs - 1)
    scales, codes = mx.quantize_blocks(blocks.view(np.uint32), MXF[elem], "even")
    assert np.all(scales == 127)
    got = codes[:, 1:].reshape(-1)[:x.size]
    ref = _rne_reference(elem, x)
    bad = np.flatnonzero(got != ref)
    assert bad.size == 0, [(float(x[i]), int(got[i]), int(ref[i])) for i in bad[:10]]


@pytest.mark.parametrize("elem", ALL_ELEMS, ids=lambda e: e.name)
def test_encode_elements_direct(elem):
    """encode_elements on exact (sign, sig, exp) inputs, including left-shift and huge cases."""
    codes = np.arange(elem.max_code + 1)
    _, _, value = mx.decode_elements(codes, elem)
    lsb = el.lsb_exponent(elem)
    # Exact grid values, written with a minimal significand (may need left shifts).
    sig = value.copy()
    exp = np.full(sig.shape, lsb, dtype=np.int64)
    while True:
        even = (sig > 0) & (sig % 2 == 0)
        if not even.any():
            break
        sig = np.where(even, sig // 2, sig)
        exp = np.where(even, exp + 1, exp)
    for rounding in el.ROUNDING_MODES:
        assert np.array_equal(el.encode_elements(0, sig, exp, elem, rounding), codes)
    # Huge values saturate, in every mode.
    for rounding in el.ROUNDING_MODES:
        big = el.encode_elements([0, 1], [1, 3], [200, 40], elem, rounding)
        neg_max = elem.max_code | (1 << (elem.width - 1)) if elem.is_float else 256 - 127
        assert big.tolist() == [elem.max_code, neg_max]


def test_round_shift_right_modes():
    n = np.array([0, 5, 6, 7, 9, 10, 11, 13, 15, 3, 1 << 40])
    s = np.array([1, 1, 2, 1, 1, 2, 0, 1, 1, 80, 40])
    assert el.round_shift_right(n, s, "floor").tolist() == [0, 2, 1, 3, 4, 2, 11, 6, 7, 0, 1]
    assert el.round_shift_right(n, s, "even").tolist() == [0, 2, 2, 4, 4, 2, 11, 6, 8, 0, 1]
    assert el.round_shift_right(n, s, "nearest").tolist() == [0, 3, 2, 4, 5, 3, 11, 7, 8, 0, 1]


def test_element_errors():
    with pytest.raises(ValueError,
                       match=r"unknown element format 'fp9'; allowed: fp8_e5m2, .*mxint8"):
        el.element_format("fp9")
    assert el.element_format("mxfp4_e2m1") is FP4_E2M1
    assert el.element_format(MX_FORMATS["mxint8"]) is INT8
    with pytest.raises(ValueError, match=r"codes must be fp4_e2m1 codes in 0\.\.15, found 16"):
        mx.decode_elements(np.array([1, 16]), "fp4_e2m1")
    with pytest.raises(TypeError,
                       match=r"codes must be an integer array of fp6_e2m3 codes, not float32"):
        mx.decode_elements(np.array([1.0], np.float32), FP6_E2M3)
    with pytest.raises(ValueError,
                       match=r"rounding must be one of 'even', 'nearest', 'floor', not 'up'"):
        el.encode_elements(0, 1, 0, FP8_E4M3, "up")
