"""Golden model and stimulus of mx-dot with a format set (formats chosen per block pair)."""

from fractions import Fraction

import numpy as np
import pytest

from hdl.formats import MX_FORMAT_SETS
from sim.golden import mx
from sim.vectors.mx_dot import random_dot_groups
from sim.vectors.mx_dot_sets import selected_dot_groups

from .reference import ref_element_value, ref_fp32_bits

SETS = list(MX_FORMAT_SETS)


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("mode", ["exact", "fp32"])
def test_one_pair_per_group_is_the_single_format_dot(name, mode):
    """With the same indices on every block, dot_selected is dot of that format pair."""
    members = MX_FORMAT_SETS[name].members
    rng = np.random.default_rng(7)
    for i, fa in enumerate(members):
        for j, fb in enumerate(members):
            g = random_dot_groups(rng, fa, fb, 60, 3, 8)
            shape = g["a_scales"].shape
            got = mx.dot_selected(g["a_scales"], g["a_codes"], np.full(shape, i),
                                  g["b_scales"], g["b_codes"], np.full(shape, j), name,
                                  mode=mode)
            want = mx.dot(g["a_scales"], g["a_codes"], g["b_scales"], g["b_codes"], fa, fb,
                          mode=mode)
            assert (got == want).all(), (fa.name, fb.name)


def test_mixed_groups_against_exact_fractions():
    """Groups whose blocks use different format pairs: the exact mode is the RNE of the exact
    sum of the decoded values (an independent reference with Fractions)."""
    fs = MX_FORMAT_SETS["mxall"]
    g = selected_dot_groups(np.random.default_rng(3), fs, 300, 3, 4)
    got = mx.dot_selected(g["a_scales"], g["a_codes"], g["a_sel"], g["b_scales"], g["b_codes"],
                          g["b_sel"], fs)
    mixed = 0
    for k in range(got.shape[0]):
        a_sel, b_sel = g["a_sel"][k], g["b_sel"][k]
        if (a_sel >= len(fs.members)).any() or (b_sel >= len(fs.members)).any():
            assert got[k] == mx.FP32_NAN
            continue
        total, nan = Fraction(0), False
        for blk in range(3):
            fa, fb = fs.members[a_sel[blk]], fs.members[b_sel[blk]]
            sa, sb = int(g["a_scales"][k, blk]), int(g["b_scales"][k, blk])
            nan |= sa == 255 or sb == 255
            for x, y in zip(g["a_codes"][k, blk], g["b_codes"][k, blk]):
                va, vb = ref_element_value(fa.name, int(x)), ref_element_value(fb.name, int(y))
                if va is None or vb is None:
                    nan = True
                    continue
                total += va * vb * Fraction(2) ** (sa + sb - 254)
        mixed += len({(int(a), int(b)) for a, b in zip(a_sel, b_sel)}) > 1
        assert got[k] == (mx.FP32_NAN if nan else ref_fp32_bits(total)), k
    assert mixed >= 100, "too few groups mix format pairs"


@pytest.mark.parametrize("name", SETS)
def test_stimulus_covers_every_pair_and_bad_indices(name):
    fs = MX_FORMAT_SETS[name]
    g = selected_dot_groups(np.random.default_rng(1), fs, 500, 3, 8)
    n = len(fs.members)
    seen = {(int(a), int(b)) for a, b in zip(g["a_sel"].ravel(), g["b_sel"].ravel())}
    assert {(i, j) for i in range(n) for j in range(n)} <= seen
    bad = (g["a_sel"] >= n) | (g["b_sel"] >= n)
    # Only a set with spare index codes (mxall: 6 formats, 3 bits) gets out-of-range indices.
    assert bad.any() == ((1 << fs.element.sel_bits) > n)
    for key in ("a", "b"):
        for k, f in enumerate(fs.members):
            assert not (g[f"{key}_codes"][g[f"{key}_sel"] == k] >> f.element.width).any()
