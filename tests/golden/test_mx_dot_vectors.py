"""Stimulus generators of the ``mx-dot`` core (``sim.vectors.mx_dot``) against the golden dot.

Oracles: ``sim.golden.mx.dot`` / ``block_dot_exact`` and an independent exact computation written
here (element values from ``hdl.formats.ElementFormat.decode_exact``, Python ints / Fractions, RNE
to FP32 by hand, FP32 accumulation with numpy float32), plus the hand-derived expectation of every
directed corner case.
"""

from __future__ import annotations

import itertools
import math
import struct
from fractions import Fraction
from functools import cache

import numpy as np
import pytest

from hdl.formats import MX_FORMATS, mx_format
from sim.golden import mx
from sim.vectors import mx_dot as V

FORMATS = list(MX_FORMATS)
PAIRS = list(itertools.product(FORMATS, repeat=2))
CONFIGS = [(2, 1), (2, 3), (32, 1), (32, 3)]          # (block_size, blocks)
NAN = 0x7FC00000
INF = 0x7F800000
SIGN = 0x80000000
FLT_MAX = 0x7F7FFFFF


# ----------------------------------------------------------------------------------------------
# independent reference

@cache
def _table(fmt):
    """(values in units of the element LSB, non-finite flags, LSB exponent) indexed by code."""
    e = mx_format(fmt).element
    lsb = e.min_subnormal
    vals, bad = [], []
    for c in range(1 << e.width):
        if e.is_nan_code(c) or e.is_inf_code(c):
            vals.append(0)
            bad.append(True)
        else:
            v = e.decode_exact(c) / lsb
            assert v.denominator == 1
            vals.append(int(v))
            bad.append(False)
    k = round(math.log2(lsb))
    assert Fraction(2) ** k == lsb
    return np.array(vals, dtype=object), np.array(bad), k


def ref_blocks(d, a_fmt, b_fmt):
    """Exact value of every block pair (Fraction), or None for a NaN block pair."""
    va, ba, ka = _table(a_fmt)
    vb, bb, kb = _table(b_fmt)
    ac, bc = d["a_codes"].astype(np.int64), d["b_codes"].astype(np.int64)
    sa, sb = d["a_scales"].astype(np.int64), d["b_scales"].astype(np.int64)
    nan = (sa == 255) | (sb == 255) | ba[ac].any(-1) | bb[bc].any(-1)
    prods = va[ac] * vb[bc]                     # object: exact Python ints
    sums = prods.sum(axis=-1)
    out = np.empty(sa.shape, dtype=object)
    for idx in np.ndindex(sa.shape):
        if nan[idx]:
            out[idx] = None
        else:
            e = int(sa[idx]) + int(sb[idx]) - 254 + ka + kb
            out[idx] = Fraction(int(sums[idx])) * Fraction(2) ** e
    return out


def ref_fp32(v: Fraction) -> int:
    """RNE of an exact rational to an FP32 bit pattern (signed zero for tiny nonzero values)."""
    if v == 0:
        return 0
    sign = SIGN if v < 0 else 0
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    ulp = Fraction(2) ** (max(e, -126) - 23)
    q = math.floor(a / ulp)
    r = a - q * ulp
    if 2 * r > ulp or (2 * r == ulp and q % 2 == 1):
        q += 1
    val = q * ulp
    if val >= Fraction(2) ** 128:
        return sign | INF
    return sign | struct.unpack("<I", struct.pack("<f", float(val)))[0]


def fp32_neighbours(v: Fraction):
    """(q, ulp): |v| lies in [q*ulp, (q+1)*ulp) on the FP32 grid of its binade."""
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    ulp = Fraction(2) ** (max(e, -126) - 23)
    return math.floor(a / ulp), ulp


def ref_dot(d, a_fmt, b_fmt, mode):
    blocks = ref_blocks(d, a_fmt, b_fmt)
    out = []
    for row in blocks:
        if any(v is None for v in row):
            out.append(NAN)
        elif mode == "exact":
            out.append(ref_fp32(sum(row, Fraction(0))))
        else:
            acc = np.float32(0.0)
            with np.errstate(over="ignore", invalid="ignore"):
                for v in row:
                    acc = np.float32(acc + np.uint32(ref_fp32(v)).view(np.float32))
            out.append(NAN if np.isnan(acc) else int(np.float32(acc).view(np.uint32)))
    return np.array(out, dtype=np.uint32)


def golden(d, a_fmt, b_fmt, mode="exact"):
    return mx.dot(d["a_scales"], d["a_codes"], d["b_scales"], d["b_codes"], a_fmt, b_fmt,
                  mode=mode)


def check_schema(d, a_fmt, b_fmt, groups, blocks, bs):
    assert set(d) == set(V.KEYS)
    for k in V.KEYS:
        assert d[k].dtype == np.uint8, k
    assert d["a_scales"].shape == d["b_scales"].shape == (groups, blocks)
    assert d["a_codes"].shape == d["b_codes"].shape == (groups, blocks, bs)
    assert int(d["a_codes"].max(initial=0)) < 1 << mx_format(a_fmt).element.width
    assert int(d["b_codes"].max(initial=0)) < 1 << mx_format(b_fmt).element.width


@cache
def corners(a_fmt, b_fmt, bs, blocks):
    d = V.corner_dot_groups(a_fmt, b_fmt, bs, blocks)
    labels = V.corner_dot_labels(a_fmt, b_fmt, bs, blocks)
    return d, labels, golden(d, a_fmt, b_fmt, "exact"), golden(d, a_fmt, b_fmt, "fp32")


def by_label(labels, prefix):
    return [i for i, lab in enumerate(labels) if lab.startswith(prefix)]


def f32bits(x: float) -> int:
    return int(np.float32(x).view(np.uint32))


# ----------------------------------------------------------------------------------------------
# every generator, every format pair: schema and agreement with the independent reference

@pytest.mark.parametrize("bs,blocks", CONFIGS)
@pytest.mark.parametrize("a_fmt,b_fmt", PAIRS)
def test_generators_match_reference(a_fmt, b_fmt, bs, blocks):
    rnd = V.random_dot_groups(np.random.default_rng(7), a_fmt, b_fmt, 12, blocks, bs)
    check_schema(rnd, a_fmt, b_fmt, 12, blocks, bs)
    d, labels, exact, fp32 = corners(a_fmt, b_fmt, bs, blocks)
    check_schema(d, a_fmt, b_fmt, len(labels), blocks, bs)
    assert len(set(labels)) == len(labels)
    for x, ex, f3 in ((rnd, golden(rnd, a_fmt, b_fmt), golden(rnd, a_fmt, b_fmt, "fp32")),
                      (d, exact, fp32)):
        np.testing.assert_array_equal(ex, ref_dot(x, a_fmt, b_fmt, "exact"))
        np.testing.assert_array_equal(f3, ref_dot(x, a_fmt, b_fmt, "fp32"))
    sweep = V.product_sweep(a_fmt, b_fmt, bs)
    n = 1 << (mx_format(a_fmt).element.width + mx_format(b_fmt).element.width)
    check_schema(sweep, a_fmt, b_fmt, n, 1, bs)
    sub = {k: v[::97] for k, v in sweep.items()}                 # the Python-loop path, sampled
    np.testing.assert_array_equal(golden(sub, a_fmt, b_fmt), ref_dot(sub, a_fmt, b_fmt, "exact"))


def test_block_size_one():
    for a_fmt, b_fmt in (("mxfp4_e2m1", "mxint8"), ("mxfp8_e5m2", "mxfp8_e4m3")):
        for blocks in (1, 3):
            d = V.corner_dot_groups(a_fmt, b_fmt, 1, blocks)
            check_schema(d, a_fmt, b_fmt, len(V.corner_dot_labels(a_fmt, b_fmt, 1, blocks)),
                         blocks, 1)
            np.testing.assert_array_equal(golden(d, a_fmt, b_fmt),
                                          ref_dot(d, a_fmt, b_fmt, "exact"))
            r = V.random_dot_groups(np.random.default_rng(1), a_fmt, b_fmt, 12, blocks, 1)
            np.testing.assert_array_equal(golden(r, a_fmt, b_fmt, "fp32"),
                                          ref_dot(r, a_fmt, b_fmt, "fp32"))


# ----------------------------------------------------------------------------------------------
# random groups

def test_random_deterministic():
    a = V.random_dot_groups(np.random.default_rng(3), "mxfp8_e4m3", "mxint8", 30, 3, 32)
    b = V.random_dot_groups(np.random.default_rng(3), "mxfp8_e4m3", "mxint8", 30, 3, 32)
    c = V.random_dot_groups(np.random.default_rng(4), "mxfp8_e4m3", "mxint8", 30, 3, 32)
    for k in V.KEYS:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in V.KEYS)
    # the corner and sweep generators take no randomness
    for k in V.KEYS:
        np.testing.assert_array_equal(V.corner_dot_groups("mxfp6_e3m2", "mxint8", 32, 3)[k],
                                      V.corner_dot_groups("mxfp6_e3m2", "mxint8", 32, 3)[k])


@pytest.mark.parametrize("a_fmt,b_fmt", [("mxfp8_e4m3", "mxfp8_e5m2"), ("mxfp4_e2m1", "mxint8")])
def test_random_kinds(a_fmt, b_fmt):
    groups, blocks, bs = 600, 3, 32
    d = V.random_dot_groups(np.random.default_rng(11), a_fmt, b_fmt, groups, blocks, bs)
    out = golden(d, a_fmt, b_fmt)
    nan = out == NAN
    # NaN (scale 255 or NaN/Inf elements) stays rare: a few percent of the groups
    assert 0 < nan.mean() < 0.08, nan.mean()
    kind = np.arange(groups) % len(V.DOT_KINDS)
    k = {name: kind == i for i, name in enumerate(V.DOT_KINDS)}
    assert not nan[k["realistic"] | k["cancel"] | k["sparse"] | k["zero"]].any()
    sa, sb = d["a_scales"].astype(int), d["b_scales"].astype(int)
    for s in (sa, sb):
        assert (abs(s[k["realistic"]] - 127) <= 20).all()
    ext = np.concatenate([sa[k["extreme"]].ravel(), sb[k["extreme"]].ravel()])
    assert set(ext.tolist()) <= {0, 1, 253, 254, 255} and {0, 1, 253, 254} <= set(ext.tolist())
    uni = sa[k["uniform"]]
    assert uni.min() < 10 and uni.max() > 244 and len(set(uni.ravel().tolist())) > 150
    zero_prod = (_table(a_fmt)[0][d["a_codes"]] == 0) | (_table(b_fmt)[0][d["b_codes"]] == 0)
    # sparse: most products zero; zero: every group has an all-zero block pair
    assert zero_prod[k["sparse"]].mean() > 0.85
    assert zero_prod[k["zero"]].all(axis=-1).any(axis=-1).all()
    # cancel: the blocks' values are much larger than the total (big blocks cancel)
    blk = ref_blocks({key: v[k["cancel"]] for key, v in d.items()}, a_fmt, b_fmt)
    big = 0
    for row in blk:
        total = abs(sum(row, Fraction(0)))
        biggest = max(abs(v) for v in row)
        big += biggest > 0 and total < biggest * Fraction(1, 4)
    assert big > 0.8 * len(blk)


# ----------------------------------------------------------------------------------------------
# corner groups

def test_corner_scale_combinations():
    for (a_fmt, b_fmt), (bs, blocks) in itertools.product(PAIRS, CONFIGS):
        d, labels, exact, _ = corners(a_fmt, b_fmt, bs, blocks)
        idx = by_label(labels, "scales:")
        seen = set()
        for i in idx:
            _, ca, cb, sign = labels[i].split(":")
            assert (d["a_scales"][i] == int(ca)).all() and (d["b_scales"][i] == int(cb)).all()
            assert ref_blocks({k: v[i:i + 1] for k, v in d.items()}, a_fmt, b_fmt)[0, 0] != 0 \
                or "255" in (ca, cb)
            seen.add((int(ca), int(cb), sign))
            ea, eb = int(ca) - 127, int(cb) - 127
            if 255 in (int(ca), int(cb)):
                assert exact[i] == NAN
            elif ea + eb >= 128:
                assert exact[i] == (INF | (SIGN if sign == "-" else 0))
            elif ea + eb <= -253:
                assert exact[i] & 0x7FFFFFFF < 0x00800000        # subnormal or zero
            assert (exact[i] >> 31) == (sign == "-") or exact[i] == NAN
        assert seen == {(x, y, s) for x in V.CORNER_SCALES for y in V.CORNER_SCALES
                        for s in "+-"}


def test_corner_labels_availability():
    always = {"overflow:inf:+", "overflow:inf:-", "underflow:min_sub:+", "underflow:zero:-",
              "underflow:deep:-", "tie:sub:down:q0:+", "mode_split:neg_zero",
              "nan:scale_a:zero", "nan:scale_b:zero", "nan:scale_both:zero", "zero:both:127:127",
              "zero:negzero", "max:max+:max+:254:254"}
    two = {"cancel:block", "tie:sub:up:q1:+", "tie:sub:down:q2:-"}
    multi = {"cancel:cross", "cancel:max", "mode_split:overflow", "mode_split:inf_cancel",
             "tie:normal:up:up@0:+", "tie:normal:down:down@-126:-", "overflow:tie:+",
             "overflow:max:-", "underflow:max_sub:+", "underflow:above_half:-"}
    three = {"cancel:cross_small", "mode_split:absorb", "mode_split:double_round",
             "tie:normal:up:up3@127:+", "tie:normal:down:down3@0:-", "tie:sub:up:q2^22+1:+",
             "overflow:above:+", "overflow:below:-"}
    for a_fmt, b_fmt in PAIRS:
        def kinds(bs, bl, a_fmt=a_fmt, b_fmt=b_fmt):
            return set(V.corner_dot_labels(a_fmt, b_fmt, bs, bl))

        assert always <= kinds(1, 1)
        assert always | two <= kinds(2, 1)
        assert always | two | multi <= kinds(1, 2)
        full = kinds(2, 3)
        assert always | two | multi | three | {"cancel:block4"} <= full
        assert full == kinds(32, 3)
        assert {lab.split(":")[0] for lab in full} == set(V.CORNER_KINDS) - (
            set() if "mxint8" in (a_fmt, b_fmt) else {"int8_m2"})
        if "mxfp8_e4m3" == a_fmt == b_fmt or "mxfp8_e5m2" in (a_fmt, b_fmt):
            assert {lab for lab in full if lab.startswith("tie:")} <= kinds(32, 1)
    with pytest.raises(ValueError, match="unknown corner kinds"):
        V.corner_dot_groups("mxint8", "mxint8", 32, 1, kinds=("ties",))


@pytest.mark.parametrize("bs,blocks", CONFIGS)
def test_corner_ties_are_exact_ties(bs, blocks):
    for a_fmt, b_fmt in PAIRS:
        d, labels, exact, fp32 = corners(a_fmt, b_fmt, bs, blocks)
        idx = by_label(labels, "tie:")
        vals = ref_blocks({k: v[idx] for k, v in d.items()}, a_fmt, b_fmt)
        dirs = set()
        for i, row in zip(idx, vals):
            v = sum(row, Fraction(0))
            q, ulp = fp32_neighbours(v)
            assert abs(v) - q * ulp == ulp / 2, labels[i]               # exactly halfway
            assert (q + 1) * ulp <= Fraction(2) ** 128
            _, region, direction, *_ = labels[i].split(":")
            assert direction == ("up" if q % 2 else "down"), labels[i]
            assert (region == "sub") == (abs(v) < Fraction(2) ** -126), labels[i]
            want = ref_fp32(v)
            assert exact[i] == want
            assert (want >> 31) == (v < 0)
            # mode "fp32" may differ: a block holding only 2**-150 rounds to +-0 on its own, and
            # the +0.0 start of the accumulator turns -0.0 into +0.0 (checked against ref_dot)
            if all(abs(x) >= Fraction(2) ** -149 or x == 0 for x in row) and want & 0x7FFFFFFF:
                assert fp32[i] == exact[i], labels[i]
            dirs.add((region, direction, labels[i][-1]))
        expect = {("sub", "up"), ("sub", "down")}
        if blocks >= 2:
            expect |= {("normal", "up"), ("normal", "down")}
        assert {(r, x) for r, x, _ in dirs} >= expect
        assert {s for *_, s in dirs} == {"+", "-"}
    t = V.tie_groups("mxfp4_e2m1", "mxfp6_e2m3", bs, blocks)
    n = len(by_label(corners("mxfp4_e2m1", "mxfp6_e2m3", bs, blocks)[1], "tie:"))
    check_schema(t, "mxfp4_e2m1", "mxfp6_e2m3", n, blocks, bs)


def _expect(label: str, exact: int) -> None:
    neg = label.endswith(":-")
    s = SIGN if neg else 0
    want = {
        "overflow:inf": s | INF, "overflow:tie": s | INF, "overflow:above": s | INF,
        "overflow:max": s | FLT_MAX, "overflow:below": s | FLT_MAX,
        "underflow:min_sub": s | 1, "underflow:sub": s | (1 << 9) | (1 << 2),
        "underflow:max_sub": s | 0x007FFFFF, "underflow:above_half": s | 1,
        "underflow:zero": s, "underflow:deep": s,
    }[label.rsplit(":", 1)[0]]
    assert exact == want, (label, hex(exact), hex(want))


@pytest.mark.parametrize("bs,blocks", CONFIGS)
def test_corner_overflow_underflow(bs, blocks):
    for a_fmt, b_fmt in PAIRS:
        _, labels, exact, fp32 = corners(a_fmt, b_fmt, bs, blocks)
        for i in by_label(labels, "overflow:") + by_label(labels, "underflow:"):
            _expect(labels[i], int(exact[i]))
            if labels[i].startswith("overflow:inf"):
                assert fp32[i] == exact[i]
        for i in by_label(labels, "max:"):
            _, na, nb, sa, sb = labels[i].split(":")
            if sa == sb == "254":
                neg = (na == "max+") != (nb == "max+")
                assert exact[i] == (SIGN if neg else 0) | INF
            elif sa == sb == "0":
                assert exact[i] & 0x7FFFFFFF < 0x00800000
            else:                                           # every lane max: bs * blocks * product
                assert exact[i] not in (0, SIGN, INF, SIGN | INF, NAN)


@pytest.mark.parametrize("bs,blocks", CONFIGS)
def test_corner_zero_cancel_nan_int8(bs, blocks):
    for a_fmt, b_fmt in PAIRS:
        d, labels, exact, fp32 = corners(a_fmt, b_fmt, bs, blocks)
        for i in by_label(labels, "zero:") + by_label(labels, "cancel:"):
            if labels[i] == "cancel:cross_small":                   # 2**100 - 2**100 + 2**-100
                assert exact[i] == fp32[i] == f32bits(2.0 ** -100)
            else:
                assert exact[i] == 0 and fp32[i] == 0, labels[i]        # +0.0 in both modes
        for i in by_label(labels, "cancel:cross") + by_label(labels, "cancel:max"):
            live = ref_blocks({k: v[i:i + 1] for k, v in d.items()}, a_fmt, b_fmt)[0] != 0
            assert live.sum() >= 2
            pairs = set(zip(d["a_scales"][i][live], d["b_scales"][i][live]))
            assert len(pairs) == (1 if labels[i] == "cancel:max" else live.sum()), labels[i]
        for i in by_label(labels, "nan:"):
            assert exact[i] == NAN and fp32[i] == NAN, labels[i]
        for i in by_label(labels, "int8_m2:"):
            side, name = labels[i].split(":")[1:]
            codes = d[f"{side}_codes"][i]
            assert (codes == 0x80).any()
            other = mx_format(b_fmt if side == "a" else a_fmt).element
            one = {"x1": 1, "xmax": other.max_value, "xnegmax": -other.max_value, "xm2": -2}
            want = -2 * one[name] if name in one else -2 * other.max_value * bs * blocks
            assert exact[i] == f32bits(float(want)), labels[i]


def test_corner_nan_codes():
    seen = {}
    for a_fmt in FORMATS:
        labels = V.corner_dot_labels(a_fmt, "mxint8", 32, 1)
        seen[a_fmt] = sorted({int(lab.split(":")[3], 16) for lab in labels
                              if lab.startswith("nan:a:")})
    assert seen["mxfp8_e4m3"] == [0x7F, 0xFF]
    assert seen["mxfp8_e5m2"] == [0x7C, 0x7D, 0x7E, 0x7F, 0xFC, 0xFD, 0xFE, 0xFF]
    for f in ("mxfp6_e3m2", "mxfp6_e2m3", "mxfp4_e2m1", "mxint8"):
        assert seen[f] == [] and V.nonfinite_codes(f).size == 0
    labels = V.corner_dot_labels("mxfp8_e5m2", "mxfp8_e4m3", 32, 3)
    assert "nan:a:inf:0xfc:x0" in labels and "nan:b:nan:0x7f:x1" in labels


def test_corner_mode_split():
    for a_fmt, b_fmt in PAIRS:
        _, labels, exact, fp32 = corners(a_fmt, b_fmt, 32, 3)
        got = {labels[i]: (int(exact[i]), int(fp32[i])) for i in by_label(labels, "mode_split:")}
        assert got == {
            "mode_split:neg_zero": (SIGN, 0),
            "mode_split:absorb": (f32bits(1.0), 0),
            "mode_split:overflow": (f32bits(2.0 ** 127), INF),
            "mode_split:double_round": (f32bits(1 + 2.0 ** -23), f32bits(1.0)),
            "mode_split:inf_cancel": (0, NAN),
        }, (a_fmt, b_fmt)


# ----------------------------------------------------------------------------------------------
# exhaustive product sweep

def _sweep_expected(a_fmt, b_fmt):
    """decode(a) * decode(b) for every pair as FP32 bits (exact in float64), NaN for non-finite."""
    va, ba, ka = _table(a_fmt)
    vb, bb, kb = _table(b_fmt)
    fa = va.astype(np.float64) * 2.0 ** ka
    fb = vb.astype(np.float64) * 2.0 ** kb
    prod = (fa[:, None] * fb[None, :]).astype(np.float32).ravel()
    bits = np.where(prod == 0, np.uint32(0), prod.view(np.uint32))      # zero product -> +0.0
    bad = (ba[:, None] | bb[None, :]).ravel()
    return np.where(bad, np.uint32(NAN), bits).astype(np.uint32), fa, fb


@pytest.mark.parametrize("a_fmt,b_fmt", [("mxfp4_e2m1", "mxfp4_e2m1"),
                                         ("mxfp8_e4m3", "mxfp8_e4m3"), ("mxint8", "mxint8")])
def test_product_sweep_full(a_fmt, b_fmt):
    bs = 32
    d = V.product_sweep(a_fmt, b_fmt, bs)
    wa, wb = (mx_format(f).element.width for f in (a_fmt, b_fmt))
    n = 1 << (wa + wb)
    check_schema(d, a_fmt, b_fmt, n, 1, bs)
    idx = np.arange(n)
    lane = idx % bs
    assert (d["a_scales"] == 127).all() and (d["b_scales"] == 127).all()
    np.testing.assert_array_equal(d["a_codes"][idx, 0, lane], idx >> wb)
    np.testing.assert_array_equal(d["b_codes"][idx, 0, lane], idx & ((1 << wb) - 1))
    mask = np.ones((n, bs), dtype=bool)
    mask[idx, lane] = False
    assert not d["a_codes"][:, 0][mask].any() and not d["b_codes"][:, 0][mask].any()
    want, fa, fb = _sweep_expected(a_fmt, b_fmt)
    # vectorised golden path: exact block sums for every pair, then RNE via float64 (exact here)
    bd = mx.block_dot_exact(d["a_scales"], d["a_codes"], d["b_scales"], d["b_codes"],
                            a_fmt, b_fmt)
    total = bd.total[:, 0].astype(np.float64) * 2.0 ** bd.lsb_exp
    np.testing.assert_array_equal(bd.is_nan[:, 0], want == NAN)
    exp_val = (fa[:, None] * fb[None, :]).ravel()
    ok = want != NAN
    np.testing.assert_array_equal(total[ok], exp_val[ok])
    # the full dot: every pair in mode "exact" (~1 s for 65,536 groups), a subsample in "fp32"
    np.testing.assert_array_equal(golden(d, a_fmt, b_fmt, "exact"), want)
    part = {k: v[::7] for k, v in d.items()}
    np.testing.assert_array_equal(golden(part, a_fmt, b_fmt, "fp32"), want[::7])


# ----------------------------------------------------------------------------------------------
# argument checks

def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="block_size"):
        V.random_dot_groups(rng, "mxint8", "mxint8", 3, 1, 3)
    with pytest.raises(ValueError, match="blocks"):
        V.corner_dot_groups("mxint8", "mxint8", 32, 0)
    with pytest.raises(ValueError, match="unknown MX format"):
        V.product_sweep("mxfp5", "mxint8", 32)
    with pytest.raises(TypeError, match="Generator"):
        V.random_dot_groups(np.random.RandomState(0), "mxint8", "mxint8", 3, 1, 2)
    d = V.random_dot_groups(rng, "mxint8", "mxint8", 0, 2, 2)
    check_schema(d, "mxint8", "mxint8", 0, 2, 2)
