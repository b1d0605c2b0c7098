"""BCNN golden model: full and separable binary conv, BN folding, pool, packing, SF factors.

Independent oracles: direct loops written from the conventions (cross-correlation, OIHW, padded
pixels = pad), float and exact-rational batch norm + sign, an eigh-based re-derivation of the
canonical SVD rule, central finite differences for the SVD gradient, and hand-worked cases.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from sim.golden import bcnn

PM = np.array(list(itertools.product([-1, 1], repeat=3)), dtype=np.int8)   # all 8 +-1 3-vectors
SIGN_MATRICES = np.array([np.reshape(b, (3, 3)) for b in itertools.product([-1, 1], repeat=9)],
                         dtype=np.float64)                                    # all 512


def pm1(rng, shape):
    return rng.choice(np.array([-1, 1], dtype=np.int8), size=shape)


# ----------------------------------------------------------------------------------------------
# naive references

def naive_conv(x, w, pad):
    """Direct loops: cross-correlation, out-of-image pixels = pad."""
    c_in, h, wd = x.shape
    out = np.zeros((w.shape[0], h, wd), dtype=np.int64)
    for o, r, c in itertools.product(range(w.shape[0]), range(h), range(wd)):
        acc = 0
        for m, kr, kc in itertools.product(range(c_in), range(3), range(3)):
            rr, cc = r + kr - 1, c + kc - 1
            pix = int(x[m, rr, cc]) if 0 <= rr < h and 0 <= cc < wd else pad
            acc += int(w[o, m, kr, kc]) * pix
        out[o, r, c] = acc
    return out


def bn_sign_float(s, gamma, beta, mean, var, eps, bias):
    """Float64 BN + sign(0) = +1, per channel (axis 0); also returns |y| to skip near-ties."""
    sh = (-1,) + (1,) * (s.ndim - 1)
    y = (gamma.reshape(sh) * (s + bias.reshape(sh) - mean.reshape(sh))
         / np.sqrt(var + eps).reshape(sh) + beta.reshape(sh))
    return np.where(y >= 0, 1, -1), np.abs(y)


def bn_sign_exact(s, gamma, beta, mean, var, eps, bias):
    """sign(gamma (s + bias - mean) + beta sigma) >= 0, exact, sigma = float64 sqrt(var + eps)."""
    sigma = np.sqrt(var + eps)
    out = np.empty(s.shape, dtype=np.int64)
    for o in range(s.shape[0]):
        g, b, mu, bi, sg = (Fraction(float(a[o])) for a in (gamma, beta, mean, bias, sigma))
        for idx in np.ndindex(s.shape[1:]):
            val = g * (int(s[(o,) + idx]) + bi - mu) + b * sg
            out[(o,) + idx] = 1 if val >= 0 else -1
    return out


def apply_fold(s, fold):
    """What the hardware does with folded BN: flip the sum, compare >= t."""
    sh = (-1,) + (1,) * (s.ndim - 1)
    s = np.where(fold.flip.reshape(sh), -s, s)
    return np.where(s >= fold.t.astype(np.int64).reshape(sh), 1, -1)


# ----------------------------------------------------------------------------------------------
# convolution

@pytest.mark.parametrize("pad", bcnn.PADS)
def test_conv_full_matches_naive_loops(pad):
    rng = np.random.default_rng(10 + pad)
    for c_in, c_out, h, w in [(1, 1, 1, 1), (1, 2, 1, 5), (2, 1, 4, 1), (2, 3, 3, 3),
                              (3, 2, 5, 4), (1, 1, 2, 2), (4, 2, 6, 7), (2, 2, 7, 2)]:
        x, wt = pm1(rng, (c_in, h, w)), pm1(rng, (c_out, c_in, 3, 3))
        got = bcnn.conv_full(x, wt, pad)
        assert got.dtype == np.int32 and got.shape == (c_out, h, w)
        np.testing.assert_array_equal(got, naive_conv(x, wt, pad))


def test_conv_full_is_cross_correlation_hand_case():
    """Single -1 in the middle of a +1 image, kernel -1 only at the top-left tap (0, 0)."""
    x = np.ones((1, 3, 3), np.int8)
    x[0, 1, 1] = -1
    w = np.ones((1, 1, 3, 3), np.int8)
    w[0, 0, 0, 0] = -1
    s = bcnn.conv_full(x, w, 0)[0]
    # Output (2, 2) sees x[1, 1] through tap (0, 0): (-1)(-1) + 3 = 4; output (0, 0) sees it
    # through tap (2, 2): -1 + 3 = 2. A flipped kernel (true convolution) would swap them.
    assert s[2, 2] == 4 and s[0, 0] == 2
    assert s[1, 1] == 5                            # 7 taps +1, tap (0, 0) and the centre -1
    np.testing.assert_array_equal(bcnn.conv_full(x, w, 1)[0], naive_conv(x, w, 1)[0])


def test_conv_sum_extremes_and_padding_values():
    x = np.ones((3, 4, 5), np.int8)
    w = np.ones((2, 3, 3, 3), np.int8)
    s1 = bcnn.conv_full(x, w, 1)
    assert np.all(s1 == 27)                                  # 9 * c_in everywhere, +1 padding
    s0 = bcnn.conv_full(x, w, 0)
    assert s0[0, 0, 0] == 12 and s0[0, 0, 2] == 18 and s0[0, 1, 1] == 27   # corner, edge, inside
    assert np.all(bcnn.conv_full(-x, w, 0) == -s0)
    assert np.all(bcnn.conv_full(-x, w, 1)[:, 1:-1, 1:-1] == -27)
    for pad in bcnn.PADS:
        ones = np.ones((2, 3, 3), np.int8)
        assert np.array_equal(bcnn.conv_separable(x, ones, ones, pad), [s0, s1][pad])


@pytest.mark.parametrize("pad", bcnn.PADS)
def test_separable_equals_full_with_outer_kernels(pad):
    rng = np.random.default_rng(20 + pad)
    for _ in range(60):
        c_in, c_out = rng.integers(1, 5), rng.integers(1, 4)
        h, w = rng.integers(1, 10, size=2)
        x = pm1(rng, (c_in, h, w))
        u, v = pm1(rng, (c_out, c_in, 3)), pm1(rng, (c_out, c_in, 3))
        got = bcnn.conv_separable(x, u, v, pad)
        assert got.dtype == np.int32 and got.shape == (c_out, h, w)
        np.testing.assert_array_equal(got, bcnn.conv_full(x, bcnn.outer_kernels(u, v), pad))


@pytest.mark.parametrize("pad", bcnn.PADS)
def test_separable_equals_full_for_every_factor_pair(pad):
    """All 64 (u, v) pairs (32 distinct kernels) on one odd-sized image."""
    rng = np.random.default_rng(30)
    x = pm1(rng, (1, 5, 7))
    u = np.repeat(PM, 8, axis=0).reshape(64, 1, 3)
    v = np.tile(PM, (8, 1)).reshape(64, 1, 3)
    w = bcnn.outer_kernels(u, v)
    assert w.shape == (64, 1, 3, 3) and len({k.tobytes() for k in w}) == 32
    np.testing.assert_array_equal(bcnn.conv_separable(x, u, v, pad), naive_conv(x, w, pad))


def test_outer_kernels():
    w = bcnn.outer_kernels([1, -1, 1], [-1, -1, 1])
    assert w.dtype == np.int8
    assert w.tolist() == [[-1, -1, 1], [1, 1, -1], [-1, -1, 1]]   # rows follow u, columns v


@pytest.mark.parametrize("pad", bcnn.PADS)
def test_vertical_pass_padded_columns_carry_pad_times_sum_u(pad):
    rng = np.random.default_rng(40 + pad)
    c_in, c_out, h, w = 3, 4, 5, 6
    x, u = pm1(rng, (c_in, h, w)), pm1(rng, (c_out, c_in, 3))
    t = bcnn.vertical_pass(x, u, pad)
    assert t.dtype == np.int32 and t.shape == (c_out, c_in, h, w + 2)
    assert np.abs(t).max() <= 3
    want_edge = pad * u.astype(np.int64).sum(axis=2)[:, :, None]
    np.testing.assert_array_equal(t[:, :, :, 0], np.broadcast_to(want_edge, (c_out, c_in, h)))
    np.testing.assert_array_equal(t[:, :, :, -1], np.broadcast_to(want_edge, (c_out, c_in, h)))
    if pad:
        assert np.all(np.abs(t[:, :, :, 0]) % 2 == 1)        # sum of three +-1: never 0
    # Interior: direct 3x1 sums with out-of-image rows = pad.
    for o, m, r, c in itertools.product(range(c_out), range(c_in), range(h), range(w)):
        want = sum(int(u[o, m, k]) * (int(x[m, r + k - 1, c]) if 0 <= r + k - 1 < h else pad)
                   for k in range(3))
        assert t[o, m, r, c + 1] == want
    # The horizontal pass over t reproduces the separable conv ...
    v = pm1(rng, (c_out, c_in, 3))
    y = sum(v[:, :, j, None, None].astype(np.int64) * t[:, :, :, j:j + w] for j in range(3))
    full = bcnn.conv_full(x, bcnn.outer_kernels(u, v), pad)
    np.testing.assert_array_equal(y.sum(axis=1), full)
    # ... and zero-filled padded columns would be wrong with +1 padding (at both border columns).
    t0 = t.copy()
    t0[:, :, :, [0, -1]] = 0
    y0 = sum(v[:, :, j, None, None].astype(np.int64) * t0[:, :, :, j:j + w] for j in range(3))
    y0 = y0.sum(axis=1)
    assert np.array_equal(y0, full) == (pad == 0)
    if pad:
        np.testing.assert_array_equal(y0[:, :, 1:-1], full[:, :, 1:-1])


# ----------------------------------------------------------------------------------------------
# threshold and batch-norm folding

def test_threshold_ties_give_plus_one():
    s = np.array([[[-3, -2, -1]], [[5, 6, 7]]])
    y = bcnn.threshold(s, np.array([-2, 6], np.int32))
    assert y.dtype == np.int8
    assert y.tolist() == [[[-1, 1, 1]], [[-1, 1, 1]]]


def _random_bn(rng, n):
    gamma = rng.normal(0, 1, n)
    gamma[rng.random(n) < 0.1] = 0.0
    return dict(gamma=gamma, beta=rng.normal(0, 3, n), mean=rng.normal(0, 6, n),
                var=rng.uniform(0, 4, n), eps=1e-5, bias=rng.normal(0, 1, n))


@pytest.mark.parametrize("with_bias", [False, True])
def test_fold_batchnorm_matches_float_and_exact_bn_sign(with_bias):
    rng = np.random.default_rng(50 + with_bias)
    c_in, n = 2, 300
    p = _random_bn(rng, n)
    if not with_bias:
        p["bias"] = np.zeros(n)
    fold = bcnn.fold_batchnorm(p["gamma"], p["beta"], p["mean"], p["var"], p["eps"],
                               p["bias"] if with_bias else None, c_in=c_in)
    assert fold.t.dtype == np.int32 and fold.flip.dtype == np.bool_ and fold.t.shape == (n,)
    assert np.array_equal(fold.flip, p["gamma"] < 0)
    assert fold.t.min() >= -18 and fold.t.max() <= 19
    s = np.broadcast_to(np.arange(-18, 19), (n, 37))        # every reachable sum
    got = apply_fold(s, fold)
    np.testing.assert_array_equal(got, bn_sign_exact(s, **p))
    ref, mag = bn_sign_float(s, **p)
    safe = mag > 1e-9
    assert safe.mean() > 0.99
    np.testing.assert_array_equal(got[safe], ref[safe])


def test_fold_batchnorm_exact_ties_both_signs():
    """sigma = sqrt(0.75 + 0.25) = 1; gamma = +-2**k, beta = -gamma * j: ties at s = mean + j."""
    rng = np.random.default_rng(60)
    n = 200
    gamma = rng.choice([-1.0, 1.0], n) * 2.0 ** rng.integers(-4, 5, n)
    j = rng.integers(-10, 11, n).astype(np.float64)
    mean = rng.integers(-8, 9, n).astype(np.float64)
    p = dict(gamma=gamma, beta=-gamma * j, mean=mean, var=np.full(n, 0.75), eps=0.25,
             bias=np.zeros(n))
    fold = bcnn.fold_batchnorm(p["gamma"], p["beta"], p["mean"], p["var"], 0.25, c_in=3)
    tie = (mean + j).astype(np.int64)                       # y == 0 exactly here
    s = tie[:, None] + np.arange(-1, 2)[None, :]            # tie - 1, tie, tie + 1
    got = apply_fold(s, fold)
    ref, mag = bn_sign_float(s, **p)
    assert np.all(mag[:, 1] == 0)                           # the float reference ties exactly
    np.testing.assert_array_equal(got, ref)
    assert np.all(got[:, 1] == 1)                           # tie -> +1, both gamma signs
    np.testing.assert_array_equal(got[:, 0], np.where(gamma > 0, -1, 1))
    np.testing.assert_array_equal(got[:, 2], np.where(gamma > 0, 1, -1))
    np.testing.assert_array_equal(fold.t, np.where(gamma > 0, tie, -tie))


def test_fold_batchnorm_negative_fractional_threshold_is_ceil():
    """tau = -2.5: t = ceil = -2 (FPGA'17's round-away-from-zero would give -3, off by one)."""
    fold = bcnn.fold_batchnorm([1.0, -1.0], [2.5, -2.5], [0.0, 0.0], [0.75, 0.75], 0.25, c_in=1)
    assert fold.t.tolist() == [-2, 3] and fold.flip.tolist() == [False, True]
    s = np.array([[-3, -2], [-3, -2]])
    # channel 1: y = -(s) - 2.5 >= 0 iff s <= -2.5 iff -s >= 3
    assert apply_fold(s, fold).tolist() == [[-1, 1], [1, -1]]


def test_fold_batchnorm_zero_scale_and_clamping():
    c_in = 4
    gamma = [0.0, 0.0, -0.0, 0.0, 1e-300, -1e-300, 1e-300, 1e3]
    beta = [0.0, -1.0, 2.0, -0.0, 1.0, 1.0, -1.0, 0.0]
    fold = bcnn.fold_batchnorm(gamma, beta, np.zeros(8), np.ones(8), 0.0, c_in=c_in)
    # constants: sign(beta) (sign(0) = sign(-0.0) = +1); huge |tau| clamps to -36 / 37
    assert fold.t.tolist() == [-36, 37, -36, -36, -36, -36, 37, 0]
    assert fold.flip.tolist() == [False] * 5 + [True] + [False] * 2
    s = np.broadcast_to(np.arange(-36, 37), (8, 73))
    got = apply_fold(s, fold)
    assert np.all(got[[0, 2, 3, 4, 5]] == 1) and np.all(got[[1, 6]] == -1)
    assert got[7].tolist() == [-1] * 36 + [1] * 37
    assert bcnn.sum_bits(c_in) >= int(fold.t.max()).bit_length() + 1


def test_fold_batchnorm_float32_inputs_convert_exactly():
    rng = np.random.default_rng(70)
    p = _random_bn(rng, 64)
    p32 = {k: (np.float32(v) if k == "eps" else v.astype(np.float32)) for k, v in p.items()}
    f32 = bcnn.fold_batchnorm(p32["gamma"], p32["beta"], p32["mean"], p32["var"], p32["eps"],
                              p32["bias"], c_in=8)
    f64 = bcnn.fold_batchnorm(*(p32[k].astype(np.float64) for k in ("gamma", "beta", "mean",
                                                                    "var")),
                              float(p32["eps"]), p32["bias"].astype(np.float64), c_in=8)
    assert np.array_equal(f32.t, f64.t) and np.array_equal(f32.flip, f64.flip)


@pytest.mark.parametrize("kernel", bcnn.KERNELS)
@pytest.mark.parametrize("pad", bcnn.PADS)
def test_layer_with_folded_bn_matches_float_bn_sign_pool(kernel, pad):
    """conv with the original weights -> float BN -> sign -> pool, against the folded layer."""
    rng = np.random.default_rng(80 + 2 * pad + (kernel == "separable"))
    c_in, c_out, h, w = 3, 24, 5, 7
    x = pm1(rng, (c_in, h, w))
    p = _random_bn(rng, c_out)
    fold = bcnn.fold_batchnorm(p["gamma"], p["beta"], p["mean"], p["var"], p["eps"], p["bias"],
                               c_in=c_in)
    if kernel == "full":
        wt = pm1(rng, (c_out, c_in, 3, 3))
        s = naive_conv(x, wt, pad)
        args = dict(w=bcnn.negate_channels(wt, fold.flip))
    else:
        u, v = bcnn.sf_kernels(rng.normal(size=(c_out, c_in, 3, 3)))
        s = naive_conv(x, bcnn.outer_kernels(u, v), pad)
        args = dict(u=u, v=bcnn.negate_channels(v, fold.flip))
        assert np.all(args["u"][:, :, 0] == 1)               # flipping v keeps u canonical
    want = bn_sign_exact(s, **p)
    ref, mag = bn_sign_float(s, **p)
    np.testing.assert_array_equal(want[mag > 1e-9], ref[mag > 1e-9])
    y = bcnn.layer(x, **args, t=fold.t, kernel=kernel, pad=pad)["y"]
    np.testing.assert_array_equal(y, want)
    yp = bcnn.layer(x, **args, t=fold.t, kernel=kernel, pad=pad, pool=True)["y"]
    assert yp.shape == (c_out, 2, 3)
    np.testing.assert_array_equal(yp, want[:, :4, :6].reshape(c_out, 2, 2, 3, 2).max(axis=(2, 4)))


# ----------------------------------------------------------------------------------------------
# max-pool

def test_maxpool_hand_case_and_odd_sizes():
    y = np.array([[[-1, -1, 1, -1, 1],
                   [-1, -1, -1, -1, 1],
                   [-1, 1, -1, -1, -1],
                   [-1, -1, -1, -1, -1],
                   [1, 1, 1, 1, 1]]], dtype=np.int8)
    p = bcnn.maxpool2x2(y)
    assert p.dtype == np.int8 and p.tolist() == [[[-1, 1], [1, -1]]]   # last row / column dropped
    assert bcnn.maxpool2x2(-np.ones((2, 3, 2), np.int8)).tolist() == [[[-1]], [[-1]]]


def test_maxpool_is_or_of_bits_and_commutes_with_threshold():
    rng = np.random.default_rng(90)
    s = rng.integers(-27, 28, (6, 7, 9))
    t = rng.integers(-10, 11, 6).astype(np.int32)
    y = bcnn.threshold(s, t)
    p = bcnn.maxpool2x2(y)
    bits = (y == 1)[:, :6, :8]
    ored = bits[:, 0::2, 0::2] | bits[:, 0::2, 1::2] | bits[:, 1::2, 0::2] | bits[:, 1::2, 1::2]
    np.testing.assert_array_equal(p == 1, ored)
    s_pooled = s[:, :6, :8].reshape(6, 3, 2, 4, 2).max(axis=(2, 4))
    np.testing.assert_array_equal(p, bcnn.threshold(s_pooled, t))


def test_layer_schema_outputs():
    rng = np.random.default_rng(100)
    x = pm1(rng, (3, 5, 6))
    w, u, v = pm1(rng, (4, 3, 3, 3)), pm1(rng, (4, 3, 3)), pm1(rng, (4, 3, 3))
    t = rng.integers(-5, 6, 4).astype(np.int32)
    for kernel, pad, pool in itertools.product(bcnn.KERNELS, bcnn.PADS, (False, True)):
        kw = dict(w=w) if kernel == "full" else dict(u=u, v=v)
        sums = (bcnn.conv_full(x, w, pad) if kernel == "full"
                else bcnn.conv_separable(x, u, v, pad))
        out = bcnn.layer(x, **kw, t=t, kernel=kernel, pad=pad, pool=pool)
        assert list(out) == ["y"] and out["y"].dtype == np.int8
        assert out["y"].shape == ((4, 2, 3) if pool else (4, 5, 6))
        want = bcnn.threshold(sums, t)
        np.testing.assert_array_equal(out["y"], bcnn.maxpool2x2(want) if pool else want)
        raw = bcnn.layer(x, **kw, kernel=kernel, pad=pad, thresholds=False)
        assert list(raw) == ["sums"] and raw["sums"].dtype == np.int32
        np.testing.assert_array_equal(raw["sums"], sums)


# ----------------------------------------------------------------------------------------------
# channel packing

def test_pack_channels_bit_positions():
    assert bcnn.pack_channels(np.array([1, -1, 1]), 8).tolist() == [0b101]
    x = -np.ones((65, 1), np.int8)
    x[64] = 1
    assert bcnn.pack_channels(x, 64).tolist() == [[0], [1]]
    x[64], x[63] = -1, 1
    w = bcnn.pack_channels(x, 64)
    assert w.dtype == np.uint64 and w.tolist() == [[1 << 63], [0]]
    assert bcnn.pack_channels(np.ones(64, np.int8), 64).tolist() == [2**64 - 1]
    x = -np.ones((10, 2, 3), np.int8)
    x[7, 1, 2] = 1                                           # word 7 // 3 = 2, bit 7 % 3 = 1
    w = bcnn.pack_channels(x, 3)
    assert w.shape == (4, 2, 3) and w[2, 1, 2] == 2 and np.count_nonzero(w) == 1


@pytest.mark.parametrize("word", [1, 3, 8, 32, 63, 64])
def test_pack_unpack_round_trip(word):
    rng = np.random.default_rng(110 + word)
    for c in (1, word - 1 or 1, word, word + 1, 3 * word + 5):
        x = pm1(rng, (c, 3, 4))
        p = bcnn.pack_channels(x, word)
        assert p.shape == (-(-c // word), 3, 4)
        assert int(p.max()) < 2**word
        back = bcnn.unpack_channels(p, c, word)
        assert back.dtype == np.int8
        np.testing.assert_array_equal(back, x)
        # bit c % word of word c // word, directly
        for ch in map(int, rng.integers(0, c, 5)):
            bit = (int(p[ch // word, 1, 2]) >> (ch % word)) & 1
            assert bit == (x[ch, 1, 2] == 1)


def test_unpack_ignores_unused_high_bits():
    x = np.array([1, -1, -1, 1, 1])
    p = bcnn.pack_channels(x, 8)
    assert p.tolist() == [0b11001]
    assert bcnn.unpack_channels(np.array([0b11111001], np.uint64), 5, 8).tolist() == x.tolist()


# ----------------------------------------------------------------------------------------------
# separable factors

def test_weight_and_sum_bits():
    assert bcnn.weight_bits(128, 128, "full") == 9 * 128 * 128
    assert bcnn.weight_bits(128, 128, "separable") == 5 * 128 * 128
    assert bcnn.weight_bits(128, 128, "separable", canonical=False) == 6 * 128 * 128
    assert bcnn.weight_bits(2, 3, "full", canonical=False) == 54
    assert bcnn.sum_bits(1) == 5 and bcnn.sum_bits(7) == 8 and bcnn.sum_bits(512) == 14
    for c_in in range(1, 400):
        n = bcnn.sum_bits(c_in)
        lo, hi = -9 * c_in, 9 * c_in + 1                     # sums and folded thresholds
        assert -(2 ** (n - 1)) <= lo and hi <= 2 ** (n - 1) - 1
        assert not (hi <= 2 ** (n - 2) - 1)                  # minimal


@pytest.mark.parametrize("svd_of", bcnn.SVD_OF)
def test_sf_kernels_recover_rank1_sign_patterns(svd_of):
    """Every outer(a, b): sign patterns times positive magnitudes (exactly rank 1 for "real")."""
    rng = np.random.default_rng(120)
    a = np.repeat(PM, 8, axis=0)
    b = np.tile(PM, (8, 1))
    alpha, beta = rng.uniform(0.1, 2, (64, 3)), rng.uniform(0.1, 2, (64, 3))
    if svd_of == "real":
        k = (a * alpha)[:, :, None] * (b * beta)[:, None, :]
    else:
        k = np.einsum("ni,nj->nij", a, b) * rng.uniform(0.01, 3, (64, 3, 3))
    u, v = bcnn.sf_kernels(k.reshape(8, 8, 3, 3), svd_of=svd_of)
    assert u.dtype == np.int8 and u.shape == (8, 8, 3) and v.shape == (8, 8, 3)
    u, v = u.reshape(64, 3), v.reshape(64, 3)
    assert np.all(u[:, 0] == 1)
    np.testing.assert_array_equal(u, a * a[:, :1])
    np.testing.assert_array_equal(v, b * a[:, :1])
    np.testing.assert_array_equal(bcnn.outer_kernels(u, v), np.einsum("ni,nj->nij", a, b))


def _canonical_rule_by_eigh(w):
    """The documented rule, re-derived from eigh(w w^T): u = P e_i / |P e_i|, v = w^T u / s1."""
    lam, vec = np.linalg.eigh(w @ w.T)
    s1 = math.sqrt(max(lam[-1], 0.0))
    if s1 == 0:
        return np.array([1.0, 0, 0]), np.array([1.0, 0, 0])
    lead = vec[:, np.sqrt(np.maximum(lam, 0)) >= s1 * (1 - 1e-7)]
    proj = lead @ lead.T
    i = next(i for i in range(3) if np.linalg.norm(proj[:, i]) > 1e-6)
    u = proj[:, i] / np.linalg.norm(proj[:, i])
    return u, w.T @ u / s1


def test_sf_kernels_follow_the_canonical_rule_on_every_sign_matrix():
    """All 512 +-1 matrices (192 with sigma = (2, 2, 1)): the rule is basis-independent."""
    u, s, v = bcnn.sf_svd(SIGN_MATRICES)
    ub, vb = bcnn.sf_kernels(SIGN_MATRICES)
    assert np.all(ub[:, 0] == 1)
    degenerate = 0
    for n, w in enumerate(SIGN_MATRICES):
        sv = np.linalg.svd(w, compute_uv=False)
        degenerate += sv[0] - sv[1] < 1e-9
        ru, rv = _canonical_rule_by_eigh(w)
        np.testing.assert_allclose(u[n], ru, atol=1e-7)
        np.testing.assert_allclose(v[n], rv, atol=1e-7)
        assert s[n] == pytest.approx(sv[0])
        np.testing.assert_array_equal(ub[n], np.where(ru >= -1e-6, 1, -1))
        np.testing.assert_array_equal(vb[n], np.where(rv >= -1e-6, 1, -1))
    assert degenerate == 192
    # The result is an optimal binary rank-1 approximation (max correlation) for every matrix.
    cands = np.einsum("ai,bj->abij", PM, PM).reshape(64, 3, 3).astype(np.float64)
    best = np.einsum("nij,cij->nc", SIGN_MATRICES, cands).max(axis=1)
    got = np.einsum("nij,nij->n", SIGN_MATRICES, bcnn.outer_kernels(ub, vb))
    np.testing.assert_array_equal(got, best)


def test_sf_kernels_canonical_sign_is_deterministic():
    rng = np.random.default_rng(130)
    k = rng.normal(size=(50, 3, 3))
    u1, v1 = bcnn.sf_kernels(k, svd_of="real")
    u2, v2 = bcnn.sf_kernels(k.copy(), svd_of="real")
    np.testing.assert_array_equal(u1, u2)
    np.testing.assert_array_equal(v1, v2)
    assert np.all(u1[:, 0] == 1)
    # Either LAPACK sign gives the same canonical result.
    U, _, Vt = np.linalg.svd(k)
    for sgn in (1.0, -1.0):
        uu, vv = sgn * U[:, :, 0], sgn * Vt[:, 0, :]
        flip = np.where(uu[:, 0] < 0, -1.0, 1.0)[:, None]     # no zero first components here
        np.testing.assert_array_equal(u1, np.where(uu * flip >= 0, 1, -1))
        np.testing.assert_array_equal(v1, np.where(vv * flip >= 0, 1, -1))
    # A zero component: canonical sign is fixed on the float vector, then sign(0) = +1.
    k0 = np.outer([1.0, 0.0, -1.0], [1.0, 2.0, 3.0])
    assert [a.tolist() for a in bcnn.sf_kernels(k0, "real")] == [[1, 1, -1], [1, 1, 1]]
    assert [a.tolist() for a in bcnn.sf_kernels(-k0, "real")] == [[1, 1, -1], [-1, -1, -1]]
    k1 = np.outer([0.0, -1.0, 1.0], [2.0, -1.0, 0.0])     # u[0] = 0: next component decides
    u, s, v = bcnn.sf_svd(k1)
    assert u[1] > 0 and s == pytest.approx(math.sqrt(10))
    assert [a.tolist() for a in bcnn.sf_kernels(k1, "real")] == [[1, 1, -1], [-1, 1, 1]]
    # Rank-1 kernels with exact zeros: LAPACK returns them as +-1e-16 noise, which must count
    # as 0 (sign +1) and never decide the canonical sign.
    a, b = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    a[np.arange(300), rng.integers(0, 3, 300)] = 0.0
    b[np.arange(300), rng.integers(0, 3, 300)] = 0.0
    s = np.sign(a[np.arange(300), np.argmax(a != 0, axis=1)])[:, None]
    u, v = bcnn.sf_kernels(np.einsum("ni,nj->nij", a, b), "real")
    np.testing.assert_array_equal(u, np.where(s * a >= 0, 1, -1))
    np.testing.assert_array_equal(v, np.where(s * b >= 0, 1, -1))
    zero = bcnn.sf_svd(np.zeros((3, 3)))
    assert zero[0].tolist() == [1, 0, 0] and zero[1] == 0 and zero[2].tolist() == [1, 0, 0]
    assert [a.tolist() for a in bcnn.sf_kernels(np.zeros((3, 3)), "real")] == [[1, 1, 1]] * 2


def test_sf_svd_is_a_singular_triple():
    rng = np.random.default_rng(140)
    w = np.concatenate([rng.normal(size=(40, 3, 3)), SIGN_MATRICES[::7]])
    u, s, v = bcnn.sf_svd(w)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", w, v), s[:, None] * u, atol=1e-12)
    np.testing.assert_allclose(np.einsum("nij,ni->nj", w, u), s[:, None] * v, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1, atol=1e-12)
    np.testing.assert_allclose(s, np.linalg.svd(w, compute_uv=False)[:, 0], atol=1e-12)


def _loss(w, gu, gv):
    u, _, v = bcnn.sf_svd(w)
    return (gu * u).sum(-1) + (gv * v).sum(-1)


def test_sf_gradient_matches_central_finite_differences():
    rng = np.random.default_rng(150)
    w = rng.normal(size=(60, 3, 3))
    sv = np.linalg.svd(w, compute_uv=False)
    w = w[(sv[:, 0] - sv[:, 1] > 0.1) & (sv[:, 1] - sv[:, 2] > 1e-3)]
    signs = SIGN_MATRICES[np.linalg.svd(SIGN_MATRICES, compute_uv=False)[:, 0] > 2.1][::9]
    w = np.concatenate([w, signs, np.outer([1.0, 2, 0.5], [1, -1, 3])[None]
                        + 1e-3 * rng.normal(size=(1, 3, 3))])
    n = w.shape[0]
    assert n > 50
    gu, gv = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    g = bcnn.sf_gradient(w, gu, gv)
    assert g.shape == (n, 3, 3)
    h = 1e-6
    fd = np.empty_like(g)
    for i, j in itertools.product(range(3), range(3)):
        e = np.zeros((3, 3))
        e[i, j] = h
        fd[:, i, j] = (_loss(w + e, gu, gv) - _loss(w - e, gu, gv)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6)
    # Single entries of the Jacobians: du_1[k]/dW_ij with grad_u = e_k.
    for k in range(3):
        ek = np.zeros((n, 3))
        ek[:, k] = 1
        jac = bcnn.sf_gradient(w, ek, np.zeros((n, 3)))
        e = np.zeros((3, 3))
        e[2, 1] = h
        fd_k = (bcnn.sf_svd(w + e)[0][:, k] - bcnn.sf_svd(w - e)[0][:, k]) / (2 * h)
        np.testing.assert_allclose(jac[:, 2, 1], fd_k, rtol=1e-5, atol=1e-6)


def test_sf_gradient_repeated_singular_value_needs_eps():
    w = np.array([[1.0, 1, 1], [1, 1, -1], [1, -1, 1]])
    assert np.linalg.svd(w, compute_uv=False).round(9).tolist() == [2, 2, 1]
    gu, gv = np.ones(3), np.ones(3)
    with pytest.raises(ValueError, match=r"w has a repeated leading singular value "
                                         r"\(sigma = \[2\.0, 2\.0, 1\.0\]\) at index \(\): .*"
                                         r"pass eps > 0"):
        bcnn.sf_gradient(w, gu, gv)
    batch = np.stack([np.eye(3) * [3, 2, 1], w])
    with pytest.raises(ValueError, match=r"at index \(1,\)"):
        bcnn.sf_gradient(batch, np.ones((2, 3)), np.ones((2, 3)))
    g = bcnn.sf_gradient(w, gu, gv, eps=1e-3)
    assert np.all(np.isfinite(g))
    # eps -> 0 on a non-degenerate matrix converges to the exact gradient
    w2 = np.diag([3.0, 2.0, 1.0]) + 0.1
    np.testing.assert_allclose(bcnn.sf_gradient(w2, gu, gv, eps=1e-10),
                               bcnn.sf_gradient(w2, gu, gv), rtol=1e-8)


def test_sf_backward_straight_through_chain():
    rng = np.random.default_rng(160)
    k = rng.uniform(-1.5, 1.5, (40, 3, 3))
    keep = np.linalg.svd(np.where(k >= 0, 1.0, -1.0), compute_uv=False)[:, 0] > 2.1
    k = k[keep]                                              # non-degenerate sign(k)
    wb = np.where(k >= 0, 1.0, -1.0)
    G = rng.normal(size=k.shape)
    ub, vb = bcnn.sf_kernels(k)
    gu = np.einsum("nij,nj->ni", G, vb)
    gv = np.einsum("nij,ni->nj", G, ub)
    want = bcnn.sf_gradient(wb, gu, gv)
    got = bcnn.sf_backward(k, G)
    np.testing.assert_allclose(got, want * (np.abs(k) <= 1))
    assert np.all(got[np.abs(k) > 1] == 0) and np.any(got != 0)
    kr = rng.normal(size=(5, 3, 3))
    ur, vr = bcnn.sf_kernels(kr, "real")
    Gr = rng.normal(size=kr.shape)
    np.testing.assert_allclose(
        bcnn.sf_backward(kr, Gr, "real"),
        bcnn.sf_gradient(kr, np.einsum("nij,nj->ni", Gr, vr), np.einsum("nij,ni->nj", Gr, ur)))


def test_binarize_sign_of_zero_is_plus_one():
    assert bcnn.binarize([-0.5, -0.0, 0.0, 2.0]).tolist() == [-1, 1, 1, 1]


# ----------------------------------------------------------------------------------------------
# errors

def test_error_messages():
    x = np.ones((2, 4, 4), np.int8)
    w = np.ones((3, 2, 3, 3), np.int8)
    uv = np.ones((3, 2, 3), np.int8)
    with pytest.raises(ValueError, match=r"pad must be 0 \(zero padding\) or 1 \(\+1 padding\), "
                                         r"not 2"):
        bcnn.conv_full(x, w, 2)
    with pytest.raises(ValueError, match=r"pad must be 0 .* not True"):
        bcnn.conv_separable(x, uv, uv, True)
    with pytest.raises(ValueError, match=r"x must hold only -1 and \+1, found 0 at index "
                                         r"\(1, 2, 3\)"):
        bcnn.conv_full(np.where(np.arange(32).reshape(2, 4, 4) == 27, 0, 1), w)
    with pytest.raises(TypeError, match=r"x must be an integer array of -1/\+1 values, "
                                        r"not float64"):
        bcnn.conv_full(np.ones((2, 4, 4)), w)
    with pytest.raises(ValueError, match=r"x must have shape \(c_in, height, width\), "
                                         r"not \(4, 4\)"):
        bcnn.conv_full(np.ones((4, 4), np.int8), w)
    with pytest.raises(ValueError, match=r"every dimension >= 1, not \(2, 0, 4\)"):
        bcnn.conv_full(np.ones((2, 0, 4), np.int8), w)
    with pytest.raises(ValueError, match=r"w must have shape \(c_out, 2, 3, 3\) for x with "
                                         r"c_in = 2, not \(3, 2, 1, 1\)"):
        bcnn.conv_full(x, np.ones((3, 2, 1, 1), np.int8))
    with pytest.raises(ValueError, match=r"v must have shape \(c_out, 2, 3\) for x with c_in = 2, "
                                         r"not \(3, 1, 3\)"):
        bcnn.conv_separable(x, uv, np.ones((3, 1, 3), np.int8))
    with pytest.raises(ValueError, match=r"u and v must have the same shape, not \(3, 2, 3\) and "
                                         r"\(2, 2, 3\)"):
        bcnn.conv_separable(x, uv, np.ones((2, 2, 3), np.int8))
    with pytest.raises(ValueError, match=r"kernel must be one of 'full', 'separable', not 'dw'"):
        bcnn.layer(x, w=w, t=np.zeros(3, np.int32), kernel="dw")
    with pytest.raises(ValueError, match=r"kernel='separable' takes u and v \(unexpected: w\)"):
        bcnn.layer(x, w=w, u=uv, v=uv, t=np.zeros(3, np.int32), kernel="separable")
    with pytest.raises(ValueError, match=r"kernel='full' takes w \(missing: w\)"):
        bcnn.layer(x, t=np.zeros(3, np.int32))
    with pytest.raises(ValueError, match=r"t is required when thresholds is on"):
        bcnn.layer(x, w=w)
    with pytest.raises(ValueError, match=r"t must be None when thresholds is off"):
        bcnn.layer(x, w=w, t=np.zeros(3, np.int32), thresholds=False)
    with pytest.raises(ValueError, match=r"pool needs thresholds"):
        bcnn.layer(x, w=w, pool=True, thresholds=False)
    with pytest.raises(TypeError, match=r"pool must be a bool, not 1"):
        bcnn.layer(x, w=w, t=np.zeros(3, np.int32), pool=1)
    with pytest.raises(ValueError, match=r"t must have shape \(c_out,\) = \(3,\), not \(2,\)"):
        bcnn.layer(x, w=w, t=np.zeros(2, np.int32))
    with pytest.raises(ValueError, match=r"t must be int32 thresholds in "
                                         r"-2147483648\.\.2147483647, found 2147483648"):
        bcnn.threshold(np.zeros((1, 2), np.int32), np.array([2**31]))
    with pytest.raises(TypeError, match=r"t must be an integer array of thresholds, not float64"):
        bcnn.threshold(np.zeros((1, 2), np.int32), np.array([1.5]))
    with pytest.raises(ValueError, match=r"y must be at least 2x2 to pool .* not \(1, 1, 5\)"):
        bcnn.maxpool2x2(np.ones((1, 1, 5), np.int8))
    with pytest.raises(ValueError, match=r"word must be an int in 1\.\.64, not 65"):
        bcnn.pack_channels(x, 65)
    with pytest.raises(ValueError, match=r"words must have shape \(ceil\(c / word\), \.\.\.\) = "
                                         r"\(2, \.\.\.\) for c = 9, word = 8, not \(1,\)"):
        bcnn.unpack_channels(np.zeros(1, np.uint64), 9, 8)
    with pytest.raises(ValueError, match=r"words must be 8-bit words in 0\.\.255, found 256"):
        bcnn.unpack_channels(np.array([256]), 8, 8)
    with pytest.raises(ValueError, match=r"c_in must be an int in 1\.\.238609294, not 0"):
        bcnn.fold_batchnorm([1.0], [0.0], [0.0], [1.0], c_in=0)
    with pytest.raises(ValueError, match=r"var \+ eps must be > 0 for every channel, found 0\.0 at "
                                         r"channel 1"):
        bcnn.fold_batchnorm([1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0], 0.0, c_in=1)
    with pytest.raises(ValueError, match=r"mean must have shape \(c_out,\) = \(2,\) like gamma, "
                                         r"not \(3,\)"):
        bcnn.fold_batchnorm([1.0, 1.0], [0.0, 0.0], [0.0] * 3, [1.0, 1.0], c_in=1)
    with pytest.raises(ValueError, match=r"beta must be finite, found nan at index \(0,\)"):
        bcnn.fold_batchnorm([1.0], [np.nan], [0.0], [1.0], c_in=1)
    with pytest.raises(ValueError, match=r"eps must be a finite float >= 0, not -1e-05"):
        bcnn.fold_batchnorm([1.0], [0.0], [0.0], [1.0], -1e-5, c_in=1)
    with pytest.raises(TypeError, match=r"flip must be a bool array, not int64"):
        bcnn.negate_channels(w, np.array([0, 1, 0]))
    with pytest.raises(ValueError, match=r"svd_of must be one of 'sign', 'real', not 'abs'"):
        bcnn.sf_kernels(np.ones((3, 3)), svd_of="abs")
    with pytest.raises(ValueError, match=r"k must have shape \(\.\.\., 3, 3\), not \(3, 2\)"):
        bcnn.sf_kernels(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"grad_u must have shape w\.shape\[:-2\] \+ \(3,\) = "
                                         r"\(2, 3\), not \(3,\)"):
        bcnn.sf_gradient(np.ones((2, 3, 3)), np.ones(3), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"kernel must be one of 'full', 'separable', not 'x'"):
        bcnn.weight_bits(1, 1, "x")
