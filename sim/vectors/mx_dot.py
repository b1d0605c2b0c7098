"""Stimulus for the ``mx-dot`` core: groups of MX block pairs, one FP32 dot product per group.

Vector schema (every array ``uint8``)::

    a_scales, b_scales   [groups, blocks]               E8M0 codes (255 = NaN, bias 127)
    a_codes,  b_codes    [groups, blocks, block_size]   element codes of a_fmt / b_fmt

Golden: :func:`sim.golden.mx.dot` in mode ``"exact"`` or ``"fp32"`` (MX_SPEC §6, §11). Everything
here is deterministic: the random generator only draws from the ``numpy.random.Generator`` it is
given, the corner and sweep generators take no randomness at all.

Corner groups (:func:`corner_dot_groups`, labels from :func:`corner_dot_labels`) are mostly built
from *terms* ``+-2**k`` (the exact value of one element product times its block's two scales): a
small packer places the terms of a case into as few blocks as the formats allow and pads the group
with all-zero block pairs (scales 127). All terms of one block share its scale exponent
``s_a + s_b`` (-254..254), so one block holds terms whose exponents differ by at most the product
range ``span(A) + span(B)`` (span = emax - log2(min_subnormal): E5M2 31, E4M3 17, E3M2 8, E2M3 5,
E2M1 3, INT8 6), and at most ``block_size`` of them. A case that needs more blocks than ``blocks``
is skipped (not an error). Availability, as checked by the tests:

* every configuration (``blocks >= 1``, ``block_size >= 1``): ``scales`` (all 36 scale pairs),
  ``zero``, ``max``, ``nan``, ``int8_m2``, ``overflow:inf``, ``underflow:{min_sub,zero,deep}``,
  ``tie:sub:down:q0``, ``mode_split:neg_zero`` (one term or full blocks);
* two terms, small gap -- ``block_size >= 2`` or ``blocks >= 2``: ``cancel:block``,
  ``tie:sub:up:q1``, ``tie:sub:down:q2``;
* two terms, gap 7..25 -- a wide enough format pair or ``blocks >= 2``: ``tie:normal:{up,down}``
  (25 significant bits: gap 24/25), ``tie:sub:*:q2^22``, ``tie:sub:up:q2^23-1``,
  ``overflow:{tie,max}``, ``underflow:{sub,max_sub,above_half}``;
* three/four terms -- ``block_size >= 3`` (4) and a wide pair, or ``blocks >= 3`` (``>= 2`` when
  the pair is wide enough for part of them): ``tie:normal:{up3,down3}``, ``tie:sub:up:q2^22+1``,
  ``overflow:{above,below}`` (gap 48), ``cancel:block4``;
* several blocks by definition (one term per block): ``blocks >= 2``: ``cancel:cross``,
  ``cancel:max``, ``mode_split:{overflow,inf_cancel}``; ``blocks >= 3``: ``cancel:cross_small``,
  ``mode_split:{absorb,double_round}``.

With ``blocks >= 3`` and ``block_size >= 2`` every case exists for every format pair
(``cancel:block4`` needs 4 lanes or 4 blocks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hdl.formats import MX_FORMATS, ElementFormat, MXFormat, mx_format
from sim.golden.mx import quantize_blocks

__all__ = [
    "CORNER_KINDS",
    "CORNER_SCALES",
    "DOT_KINDS",
    "KEYS",
    "TIE_BINADES",
    "corner_dot_groups",
    "corner_dot_labels",
    "finite_codes",
    "nonfinite_codes",
    "product_sweep",
    "random_dot_groups",
    "tie_groups",
]

#: Keys of every vector dict, in schema order.
KEYS = ("a_scales", "b_scales", "a_codes", "b_codes")

#: Kinds of random group, drawn in turn (group ``g`` has kind ``DOT_KINDS[g % 6]``).
DOT_KINDS = ("uniform", "realistic", "cancel", "sparse", "zero", "extreme")

#: Kinds of corner group (the first field of every label of :func:`corner_dot_labels`).
CORNER_KINDS = ("scales", "zero", "max", "overflow", "underflow", "cancel", "tie", "mode_split",
                "nan", "int8_m2")

#: E8M0 scale codes combined pairwise (A x B) on a nonzero block by the ``scales`` corner kind.
CORNER_SCALES = (0, 1, 127, 253, 254, 255)

_ONE_SCALE = 127                 # E8M0 code of 2**0
_NAN_SCALE = 255
_MAX_SCALE_EXP = 127             # |s_a|, |s_b| <= 127 for finite scales (codes 0..254)
_RAW_UNIFORM = 0.15              # share of "uniform" groups drawn over *all* codes and scales
_EXTREME_NAN = 0.05              # share of "extreme" groups with one NaN scale


# --------------------------------------------------------------------------------------------
# element helpers

def _lsb_exp(elem: ElementFormat) -> int:
    """k with ``elem.min_subnormal == 2**k``."""
    return 1 - elem.min_subnormal.denominator.bit_length()


def _sign_bit(elem: ElementFormat) -> int:
    return 1 << (elem.width - 1)


def finite_codes(fmt: str | MXFormat) -> np.ndarray:
    """All finite element codes of ``fmt`` (both signs, +-0 included; INT8 ``0x80`` included)."""
    elem = mx_format(fmt).element
    return np.array([c for c in range(1 << elem.width)
                     if not (elem.is_nan_code(c) or elem.is_inf_code(c))], dtype=np.uint8)


def nonfinite_codes(fmt: str | MXFormat) -> np.ndarray:
    """The NaN and Inf element codes of ``fmt`` (E4M3: 0x7F, 0xFF; E5M2: 0x7C-0x7F, 0xFC-0xFF)."""
    elem = mx_format(fmt).element
    return np.array([c for c in range(1 << elem.width)
                     if elem.is_nan_code(c) or elem.is_inf_code(c)], dtype=np.uint8)


def _positive_codes(elem: ElementFormat) -> list[int]:
    """Positive finite nonzero codes (sign bit clear)."""
    return [c for c in range(1, _sign_bit(elem))
            if not (elem.is_nan_code(c) or elem.is_inf_code(c))]


def _nonzero_codes(elem: ElementFormat) -> list[int]:
    return [c for c in range(1 << elem.width)
            if c not in (0, _sign_bit(elem) if elem.is_float else 0)
            and not (elem.is_nan_code(c) or elem.is_inf_code(c))]


def _neg(codes, elem: ElementFormat) -> np.ndarray:
    """Exact negation of finite codes (INT8 0x80 has no negation: callers avoid it)."""
    c = np.asarray(codes, dtype=np.int64)
    if elem.is_float:
        return (c ^ _sign_bit(elem)).astype(np.uint8)
    assert not np.any(c == 0x80), "INT8 -2.0 has no negation"
    return ((-c) & 0xFF).astype(np.uint8)


def _nudge(code: int, elem: ElementFormat) -> int:
    """A finite code adjacent in magnitude to the finite nonzero ``code`` (same sign)."""
    if elem.is_float:
        sign, mag = code & _sign_bit(elem), code & (_sign_bit(elem) - 1)
        up = mag + 1
        ok = up < _sign_bit(elem) and not (elem.is_nan_code(up) or elem.is_inf_code(up))
        return sign | (up if ok else mag - 1)
    q = code - 256 if code & 0x80 else code
    q = q + 1 if q < 127 else q - 1
    return q & 0xFF


def _pow2_code(elem: ElementFormat, k: int, negative: bool) -> int:
    """Code of ``+-2**k`` (``k`` in ``lsb_exp .. emax``)."""
    lsb = _lsb_exp(elem)
    assert lsb <= k <= elem.emax, (elem.name, k)
    if not elem.is_float:
        q = 1 << (k - lsb)
        return (256 - q) & 0xFF if negative else q
    code = (k + elem.bias) << elem.mbits if k >= elem.emin else 1 << (k - lsb)
    return code | (_sign_bit(elem) if negative else 0)


def _one_code(elem: ElementFormat) -> int:
    return _pow2_code(elem, 0, False)


def _max_codes(elem: ElementFormat) -> list[tuple[str, int]]:
    """(name, code) of the largest magnitudes: max positive, max negative (INT8 also 0x80)."""
    out = [("max+", elem.max_code)]
    if elem.is_float:
        out.append(("max-", elem.max_code | _sign_bit(elem)))
    else:
        out += [("max-", (256 - elem.max_code) & 0xFF), ("min", 0x80)]
    return out


def _check_shape(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, not {value!r}")
    return int(value)


def _check_block_size(block_size: object) -> int:
    bs = _check_shape("block_size", block_size, 1)
    if bs & (bs - 1) or bs > 1024:
        raise ValueError(f"block_size must be a power of two in 1..1024, not {bs}")
    return bs


def _empty(groups: int, blocks: int, block_size: int) -> dict[str, np.ndarray]:
    return {
        "a_scales": np.full((groups, blocks), _ONE_SCALE, dtype=np.uint8),
        "b_scales": np.full((groups, blocks), _ONE_SCALE, dtype=np.uint8),
        "a_codes": np.zeros((groups, blocks, block_size), dtype=np.uint8),
        "b_codes": np.zeros((groups, blocks, block_size), dtype=np.uint8),
    }


# --------------------------------------------------------------------------------------------
# random groups

def _draw(rng, pool: np.ndarray, shape) -> np.ndarray:
    return pool[rng.integers(0, pool.size, shape)]


def _rand_uniform(rng, a_el, b_el, fa, fb, blocks, bs):
    if rng.random() < _RAW_UNIFORM:            # raw: every code and scale, NaN/Inf included
        a_c = rng.integers(0, 1 << a_el.width, (blocks, bs))
        b_c = rng.integers(0, 1 << b_el.width, (blocks, bs))
        a_s, b_s = rng.integers(0, 256, blocks), rng.integers(0, 256, blocks)
    else:
        a_c, b_c = _draw(rng, fa, (blocks, bs)), _draw(rng, fb, (blocks, bs))
        a_s, b_s = rng.integers(0, 255, blocks), rng.integers(0, 255, blocks)
    return a_s, b_s, a_c, b_c


def _gauss_codes(rng, elem: ElementFormat, blocks: int, bs: int) -> np.ndarray:
    """Codes of a quantized Gaussian block (RNE, block max in the element's top binade)."""
    fmt = next(f for f in MX_FORMATS.values() if f.element == elem)
    x = rng.standard_normal((blocks, bs)).astype(np.float32)
    x[rng.random((blocks, bs)) < 0.1] = 0.0
    return quantize_blocks(x.view(np.uint32), fmt)[1]


def _rand_realistic(rng, a_el, b_el, fa, fb, blocks, bs):
    a_s = _ONE_SCALE + rng.integers(-20, 21, blocks)
    b_s = _ONE_SCALE + rng.integers(-20, 21, blocks)
    return a_s, b_s, _gauss_codes(rng, a_el, blocks, bs), _gauss_codes(rng, b_el, blocks, bs)


def _no_int8_min(codes: np.ndarray, elem: ElementFormat) -> np.ndarray:
    return codes if elem.is_float else np.where(codes == 0x80, 0x81, codes)


def _rand_cancel(rng, a_el, b_el, fa, fb, blocks, bs):
    """Big blocks that cancel exactly (or up to one nudged lane), plus blocks with small scales."""
    a_c = np.zeros((blocks, bs), dtype=np.int64)
    b_c = np.zeros((blocks, bs), dtype=np.int64)
    a_s = np.zeros(blocks, dtype=np.int64)
    b_s = np.zeros(blocks, dtype=np.int64)
    big_a, big_b = int(rng.integers(150, 255)), int(rng.integers(150, 255))
    if blocks == 1:                            # within the block: lane i + bs/2 cancels lane i
        a = _no_int8_min(_draw(rng, fa, bs).astype(np.int64), a_el)
        b = _draw(rng, fb, bs).astype(np.int64)
        h = bs // 2
        a[h:2 * h], b[h:2 * h] = _neg(a[:h], a_el), b[:h]
        if h and rng.random() < 0.75 and a[h] not in (0, _sign_bit(a_el)):
            a[h] = _nudge(int(a[h]), a_el)      # leave one tiny residue
        a_c[0], b_c[0], a_s[0], b_s[0] = a, b, big_a, big_b
        return a_s, b_s, a_c, b_c
    j = 0
    while j + 1 < blocks:                      # cancelling pairs, each with its own big scales
        a = _no_int8_min(_draw(rng, fa, bs).astype(np.int64), a_el)
        b = _draw(rng, fb, bs).astype(np.int64)
        a2 = _neg(a, a_el).astype(np.int64)
        lane = int(rng.integers(bs))
        if rng.random() < 0.5 and a2[lane] not in (0, _sign_bit(a_el)):
            a2[lane] = _nudge(int(a2[lane]), a_el)
        a_c[j], b_c[j], a_c[j + 1], b_c[j + 1] = a, b, a2, b
        a_s[j] = a_s[j + 1] = big_a - int(rng.integers(0, 20))
        b_s[j] = b_s[j + 1] = big_b - int(rng.integers(0, 20))
        j += 2
    for k in range(j, blocks):                 # the small survivors
        a_c[k], b_c[k] = _draw(rng, fa, bs), _draw(rng, fb, bs)
        a_s[k] = max(big_a - int(rng.integers(20, 120)), 0)
        b_s[k] = max(big_b - int(rng.integers(20, 120)), 0)
    order = rng.permutation(blocks)            # fp32 mode: order decides what is absorbed
    return a_s[order], b_s[order], a_c[order], b_c[order]


def _rand_sparse(rng, a_el, b_el, fa, fb, blocks, bs):
    a_c = np.where(rng.random((blocks, bs)) < 0.25, _draw(rng, fa, (blocks, bs)), 0)
    b_c = np.where(rng.random((blocks, bs)) < 0.25, _draw(rng, fb, (blocks, bs)), 0)
    a_s = _ONE_SCALE + rng.integers(-40, 41, blocks)
    b_s = _ONE_SCALE + rng.integers(-40, 41, blocks)
    return a_s, b_s, a_c, b_c


def _zeros(rng, elem: ElementFormat, shape) -> np.ndarray:
    """+0 codes, with -0 mixed in for FP elements."""
    if not elem.is_float:
        return np.zeros(shape, dtype=np.int64)
    return np.where(rng.random(shape) < 0.3, _sign_bit(elem), 0)


def _rand_zero(rng, a_el, b_el, fa, fb, blocks, bs):
    """At least one all-zero block (A, B or both zero); other blocks random or zero."""
    a_c, b_c = _draw(rng, fa, (blocks, bs)), _draw(rng, fb, (blocks, bs))
    zero = rng.random(blocks) < 0.5
    zero[rng.integers(blocks)] = True
    for j in np.flatnonzero(zero):
        side = int(rng.integers(3))            # 0: A zero, 1: B zero, 2: both
        if side != 1:
            a_c[j] = _zeros(rng, a_el, bs)
        if side != 0:
            b_c[j] = _zeros(rng, b_el, bs)
    return rng.integers(0, 255, blocks), rng.integers(0, 255, blocks), a_c, b_c


def _rand_extreme(rng, a_el, b_el, fa, fb, blocks, bs):
    pick = np.array([0, 1, 253, 254])
    a_s, b_s = rng.choice(pick, blocks), rng.choice(pick, blocks)
    if rng.random() < _EXTREME_NAN:
        (a_s if rng.random() < 0.5 else b_s)[rng.integers(blocks)] = _NAN_SCALE
    return a_s, b_s, _draw(rng, fa, (blocks, bs)), _draw(rng, fb, (blocks, bs))


_RANDOM = {
    "uniform": _rand_uniform,
    "realistic": _rand_realistic,
    "cancel": _rand_cancel,
    "sparse": _rand_sparse,
    "zero": _rand_zero,
    "extreme": _rand_extreme,
}
assert tuple(_RANDOM) == DOT_KINDS


def random_dot_groups(rng: np.random.Generator, a_fmt: str | MXFormat, b_fmt: str | MXFormat,
                      groups: int, blocks: int, block_size: int) -> dict[str, np.ndarray]:
    """``groups`` random groups of ``blocks`` block pairs, cycling through :data:`DOT_KINDS`.

    * ``uniform``: codes and scales uniform; 85 % of these groups draw only finite codes and
      scales 0..254, the rest draw over every code (NaN/Inf elements, INT8 0x80) and scale 255.
    * ``realistic``: codes of quantized Gaussian blocks, both scales ``127 +- 20``.
    * ``cancel``: pairs of blocks with big, equal scales where the second block is the exact
      negation of the first (half the time one lane nudged to an adjacent code, leaving a tiny
      residue), plus blocks with much smaller scales, in random block order; with ``blocks == 1``
      the upper half of the lanes cancels the lower half (one lane usually nudged).
    * ``sparse``: each element nonzero with probability 1/4 (products: ~1/16), scales ``127 +- 40``.
    * ``zero``: at least one all-zero block (A, B or both sides; FP zeros mix +0 and -0),
      scales 0..254.
    * ``extreme``: scales from {0, 1, 253, 254}; 5 % of these groups get one NaN scale.

    NaN results (scale 255 or NaN/Inf element codes) stay at a few percent of all groups.
    """
    a_fmt, b_fmt = mx_format(a_fmt), mx_format(b_fmt)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
    groups = _check_shape("groups", groups, 0)
    blocks = _check_shape("blocks", blocks, 1)
    bs = _check_block_size(block_size)
    a_el, b_el = a_fmt.element, b_fmt.element
    fa, fb = finite_codes(a_fmt), finite_codes(b_fmt)
    out = _empty(groups, blocks, bs)
    for g in range(groups):
        kind = DOT_KINDS[g % len(DOT_KINDS)]
        a_s, b_s, a_c, b_c = _RANDOM[kind](rng, a_el, b_el, fa, fb, blocks, bs)
        out["a_scales"][g], out["b_scales"][g] = a_s, b_s
        out["a_codes"][g], out["b_codes"][g] = a_c, b_c
    return out


# --------------------------------------------------------------------------------------------
# corner groups

@dataclass
class _Chunk:
    """Terms that share one block: (sign, k) with exponent window [kmin, kmax]."""

    terms: list = field(default_factory=list)
    kmax: int = 0
    kmin: int = 0


class _Builder:
    """Collects corner groups (label + one block pair per block) for one configuration."""

    def __init__(self, a_fmt: MXFormat, b_fmt: MXFormat, block_size: int, blocks: int):
        self.a, self.b = a_fmt.element, b_fmt.element
        self.bs, self.blocks = block_size, blocks
        self.lo = _lsb_exp(self.a) + _lsb_exp(self.b)        # product exponent range of +-2**k
        self.hi = self.a.emax + self.b.emax
        self.fill_a, self.fill_b = _nonzero_codes(self.a), _nonzero_codes(self.b)
        self.labels: list[str] = []
        self.rows: list[tuple[np.ndarray, ...]] = []

    # -- raw groups
    def blank(self):
        n, bs = self.blocks, self.bs
        return (np.full(n, _ONE_SCALE, dtype=np.int64), np.full(n, _ONE_SCALE, dtype=np.int64),
                np.zeros((n, bs), dtype=np.int64), np.zeros((n, bs), dtype=np.int64))

    def add(self, label: str, a_s, b_s, a_c, b_c):
        self.labels.append(label)
        self.rows.append(tuple(np.asarray(x).astype(np.uint8) for x in (a_s, b_s, a_c, b_c)))

    def full(self, label: str, sa: int, sb: int, a_block, b_block):
        """Every block of the group: the same block pair with scales (sa, sb)."""
        n = self.blocks
        self.add(label, np.full(n, sa), np.full(n, sb), np.tile(a_block, (n, 1)),
                 np.tile(b_block, (n, 1)))

    # -- term packing
    def _window(self, kmax: int, kmin: int) -> tuple[int, int]:
        """Block exponents e = s_a + s_b that put every term of [kmin, kmax] in product range."""
        return max(kmax - self.hi, -2 * _MAX_SCALE_EXP), min(kmin - self.lo, 2 * _MAX_SCALE_EXP)

    def terms(self, label: str, terms, split: bool = False) -> bool:
        """Add a group whose exact value is ``sum(sign * 2**k)``; False if it does not fit.

        Without ``split`` the terms are sorted by exponent and packed greedily into as few blocks
        as possible; with ``split`` every term gets its own block, in the given order, and
        consecutive blocks use the low / high end of their scale window (different scales).
        """
        chunks: list[_Chunk] = []
        seq = list(terms) if split else sorted(terms, key=lambda t: -t[1])
        for sign, k in seq:
            w = self._window(k, k)
            if w[0] > w[1]:
                raise ValueError(f"term 2**{k} is out of reach for {self.a.name} x {self.b.name}")
            if chunks and not split:
                c = chunks[-1]
                lo, hi = self._window(c.kmax, k)
                if len(c.terms) < self.bs and lo <= hi:
                    c.terms.append((sign, k))
                    c.kmin = k
                    continue
            chunks.append(_Chunk([(sign, k)], k, k))
        if len(chunks) > self.blocks:
            return False
        slot = len(self.rows)
        a_s, b_s, a_c, b_c = self.blank()
        first = slot % (self.blocks - len(chunks) + 1)       # vary where the padding goes
        for n, c in enumerate(chunks):
            j = first + n
            lo, hi = self._window(c.kmax, c.kmin)
            e = (lo if n % 2 == 0 else hi) if split else (lo + hi) // 2
            sa = -((-e) // 2) if (slot + n) % 2 else e // 2
            a_s[j], b_s[j] = sa + _ONE_SCALE, e - sa + _ONE_SCALE
            used = set()
            for t, (sign, k) in enumerate(c.terms):
                lane = (slot + t) % self.bs
                used.add(lane)
                p = k - e                                   # product exponent ka + kb
                if t % 2 == 0:
                    ka = min(self.a.emax, p - _lsb_exp(self.b))
                    kb = p - ka
                else:
                    kb = min(self.b.emax, p - _lsb_exp(self.a))
                    ka = p - kb
                neg_a = sign < 0 and (t + slot) % 2 == 0
                a_c[j, lane] = _pow2_code(self.a, ka, neg_a)
                b_c[j, lane] = _pow2_code(self.b, kb, sign < 0 and not neg_a)
            for lane in range(self.bs):                     # zero products with a nonzero side
                if lane in used:
                    continue
                r = lane * 37 + slot
                if lane % 2 == 0:
                    a_c[j, lane] = _sign_bit(self.a) if self.a.is_float and lane % 4 == 2 else 0
                    b_c[j, lane] = self.fill_b[r % len(self.fill_b)]
                else:
                    a_c[j, lane] = self.fill_a[r % len(self.fill_a)]
                    b_c[j, lane] = _sign_bit(self.b) if self.b.is_float and lane % 4 == 3 else 0
        self.add(label, a_s, b_s, a_c, b_c)
        return True

    def signed(self, label: str, terms, split: bool = False):
        """Add the case and its negation (labels ``label:+`` and ``label:-``)."""
        self.terms(label + ":+", terms, split)
        self.terms(label + ":-", [(-s, k) for s, k in terms], split)

    def ramp(self, elem: ElementFormat, shift: int) -> np.ndarray:
        pos = _positive_codes(elem)
        return np.array([pos[(lane * 7 + shift) % len(pos)] for lane in range(self.bs)])


def _corner_scales(g: _Builder):
    a_blk, b_blk = g.ramp(g.a, 0), g.ramp(g.b, 3)
    for ca in CORNER_SCALES:
        for cb in CORNER_SCALES:
            g.full(f"scales:{ca}:{cb}:+", ca, cb, a_blk, b_blk)
            g.full(f"scales:{ca}:{cb}:-", ca, cb, _neg(a_blk, g.a), b_blk)


def _corner_zero(g: _Builder):
    za, zb = np.zeros(g.bs, dtype=np.int64), np.zeros(g.bs, dtype=np.int64)
    for sa, sb in ((127, 127), (0, 0), (254, 254), (0, 254)):
        g.full(f"zero:both:{sa}:{sb}", sa, sb, za, zb)
    nza = za | (_sign_bit(g.a) if g.a.is_float else 0)
    nzb = zb | (_sign_bit(g.b) if g.b.is_float else 0)
    g.full("zero:negzero", 254, 254, nza, nzb)
    g.full("zero:a", 254, 254, za, g.ramp(g.b, 1))
    g.full("zero:b", 254, 254, g.ramp(g.a, 2), zb)
    mixed = np.where(np.arange(g.bs) % 2 == 1, nza, za)
    g.full("zero:mixed", 1, 253, mixed, _neg(g.ramp(g.b, 5), g.b))


def _corner_max(g: _Builder):
    for na, ca in _max_codes(g.a):
        for nb, cb in _max_codes(g.b):
            for sa, sb in ((127, 127), (254, 254), (0, 0)):
                g.full(f"max:{na}:{nb}:{sa}:{sb}", sa, sb, np.full(g.bs, ca), np.full(g.bs, cb))


def _corner_overflow(g: _Builder):
    g.signed("overflow:inf", [(1, 128)])                                # 2**128 -> Inf
    g.signed("overflow:tie", [(1, 128), (-1, 103)])                     # threshold tie -> Inf
    g.signed("overflow:above", [(1, 128), (-1, 103), (1, 80)])          # just above -> Inf
    g.signed("overflow:max", [(1, 128), (-1, 104)])                     # FLT_MAX exactly
    g.signed("overflow:below", [(1, 128), (-1, 103), (-1, 80)])         # just below -> FLT_MAX


def _corner_underflow(g: _Builder):
    g.signed("underflow:min_sub", [(1, -149)])                          # 2**-149
    g.signed("underflow:sub", [(1, -140), (1, -147)])                   # exact subnormal
    g.signed("underflow:max_sub", [(1, -126), (-1, -149)])              # largest subnormal
    g.signed("underflow:above_half", [(1, -150), (1, -170)])            # -> +-2**-149
    g.signed("underflow:zero", [(1, -151)])                             # -> +-0
    g.signed("underflow:deep", [(1, -2 * _MAX_SCALE_EXP + g.lo)])       # smallest value -> +-0


def _corner_cancel(g: _Builder):
    g.terms("cancel:block", [(1, 0), (-1, 0)])
    g.terms("cancel:block4", [(1, 5), (1, 2), (-1, 5), (-1, 2)])
    g.terms("cancel:cross", [(1, 100), (-1, 100)], split=True)
    g.terms("cancel:cross_small", [(1, 100), (-1, 100), (1, -100)], split=True)
    if g.blocks >= 2:                       # two full blocks of max elements, each ~2**100
        a_s, b_s, a_c, b_c = g.blank()
        ca = g.a.max_code
        a_c[0], a_c[1] = ca, _neg([ca], g.a)[0]
        b_c[:2] = g.b.max_code
        v = g.bs * g.a.max_value * g.b.max_value
        top = v.numerator.bit_length() - v.denominator.bit_length() + 1     # v < 2**top
        e = 100 - top                       # block value below 2**100: no FP32 overflow
        a_s[:2], b_s[:2] = _ONE_SCALE + e // 2, _ONE_SCALE + e - e // 2
        g.add("cancel:max", a_s, b_s, a_c, b_c)


def _tie_terms(b: int) -> dict[str, list[tuple[int, int]]]:
    """Ties of the FP32 rounding of a value in the binade [2**b, 2**(b+1)) (ulp 2**(b-23))."""
    out = {
        "down": [(1, b), (1, b - 24)],                    # q = 2**23 even: stays at 2**b
        "up3": [(1, b), (1, b - 23), (1, b - 24)],        # q = 2**23 + 1 odd: rounds up
        "down3": [(1, b), (1, b - 22), (1, b - 24)],      # q = 2**23 + 2 even: rounds down
    }
    if b < 127:
        out["up"] = [(1, b + 1), (-1, b - 24)]            # q = 2**24 - 1 odd: carries to 2**(b+1)
    return out


#: Normal binades (value in [2**b, 2**(b+1))) of the normal-range tie groups.
TIE_BINADES = (-126, -1, 0, 64, 126, 127)

#: Subnormal-grid ties: value = (2q + 1) * 2**-150; name -> terms. Even q rounds down.
_SUB_TIES = {
    "down:q0": [(1, -150)],                               # -> +-0
    "up:q1": [(1, -149), (1, -150)],                      # -> 2**-148
    "down:q2": [(1, -148), (1, -150)],                    # -> 2**-148
    "down:q2^22": [(1, -127), (1, -150)],                 # -> 2**-127
    "up:q2^22+1": [(1, -127), (1, -149), (1, -150)],      # -> 2**-127 + 2**-148
    "up:q2^23-1": [(1, -126), (-1, -150)],                # -> 2**-126 (smallest normal)
}


def _corner_tie(g: _Builder):
    for b in TIE_BINADES:
        for name, terms in _tie_terms(b).items():
            direction = "up" if name.startswith("up") else "down"
            g.signed(f"tie:normal:{direction}:{name}@{b}", terms)
    for name, terms in _SUB_TIES.items():
        g.signed(f"tie:sub:{name}", terms)


def _corner_mode_split(g: _Builder):
    """Groups where modes "exact" and "fp32" differ."""
    g.terms("mode_split:neg_zero", [(-1, -160)])              # exact -0.0, fp32 +0.0 + -0.0 = +0
    g.terms("mode_split:absorb", [(1, 30), (1, 0), (-1, 30)], split=True)     # 1.0 vs +0.0
    g.terms("mode_split:overflow", [(1, 128), (-1, 127)], split=True)        # 2**127 vs +Inf
    g.terms("mode_split:double_round", [(1, 0), (1, -24), (1, -24)], split=True)  # 1+2**-23 vs 1
    if g.blocks >= 2:                                       # exact +0.0, fp32 Inf - Inf = NaN
        a_s, b_s, a_c, b_c = g.blank()
        a_c[0], a_c[1] = g.a.max_code, _neg([g.a.max_code], g.a)[0]
        b_c[:2] = g.b.max_code
        a_s[:2], b_s[:2] = 254, 254
        g.add("mode_split:inf_cancel", a_s, b_s, a_c, b_c)


def _corner_nan(g: _Builder):
    for side, elem in (("a", g.a), ("b", g.b)):
        other = g.b if side == "a" else g.a
        for code in range(1 << elem.width):
            if not (elem.is_nan_code(code) or elem.is_inf_code(code)):
                continue
            what = "inf" if elem.is_inf_code(code) else "nan"
            for times, oc in (("x1", _one_code(other)), ("x0", 0)):
                a_s, b_s, a_c, b_c = g.blank()
                a_c[0, 0], b_c[0, 0] = _one_code(g.a), _one_code(g.b)   # a finite 1.0 product
                mine, theirs = (a_c, b_c) if side == "a" else (b_c, a_c)
                mine[-1, -1], theirs[-1, -1] = code, oc
                g.add(f"nan:{side}:{what}:{code:#04x}:{times}", a_s, b_s, a_c, b_c)
    for side in ("a", "b", "both"):
        a_s, b_s, a_c, b_c = g.blank()
        if side != "b":
            a_s[-1] = _NAN_SCALE
        if side != "a":
            b_s[-1] = _NAN_SCALE
        g.add(f"nan:scale_{side}:zero", a_s, b_s, a_c, b_c)


def _corner_int8_m2(g: _Builder):
    for side, elem, other in (("a", g.a, g.b), ("b", g.b, g.a)):
        if elem.is_float:
            continue
        cases = [("x1", _one_code(other)), ("xmax", other.max_code),
                 ("xnegmax", _neg([other.max_code], other)[0])]
        if not other.is_float:
            cases.append(("xm2", 0x80))
        for name, oc in cases:
            a_s, b_s, a_c, b_c = g.blank()
            mine, theirs = (a_c, b_c) if side == "a" else (b_c, a_c)
            mine[0, -1], theirs[0, -1] = 0x80, oc
            g.add(f"int8_m2:{side}:{name}", a_s, b_s, a_c, b_c)
        full_other = np.full(g.bs, other.max_code)
        m2 = np.full(g.bs, 0x80)
        if side == "a":
            g.full("int8_m2:a:full", 127, 127, m2, full_other)
        else:
            g.full("int8_m2:b:full", 127, 127, full_other, m2)


_CORNERS = {
    "scales": _corner_scales,
    "zero": _corner_zero,
    "max": _corner_max,
    "overflow": _corner_overflow,
    "underflow": _corner_underflow,
    "cancel": _corner_cancel,
    "tie": _corner_tie,
    "mode_split": _corner_mode_split,
    "nan": _corner_nan,
    "int8_m2": _corner_int8_m2,
}
assert tuple(_CORNERS) == CORNER_KINDS


def _build(a_fmt, b_fmt, block_size, blocks, kinds) -> _Builder:
    a_fmt, b_fmt = mx_format(a_fmt), mx_format(b_fmt)
    bs = _check_block_size(block_size)
    blocks = _check_shape("blocks", blocks, 1)
    kinds = CORNER_KINDS if kinds is None else tuple(kinds)
    unknown = set(kinds) - set(CORNER_KINDS)
    if unknown:
        raise ValueError(f"unknown corner kinds {sorted(unknown)}; allowed: {CORNER_KINDS}")
    g = _Builder(a_fmt, b_fmt, bs, blocks)
    for kind in CORNER_KINDS:
        if kind in kinds:
            _CORNERS[kind](g)
    return g


def corner_dot_groups(a_fmt: str | MXFormat, b_fmt: str | MXFormat, block_size: int,
                      blocks: int, kinds=None) -> dict[str, np.ndarray]:
    """Directed corner groups (all with ``blocks`` block pairs), in :data:`CORNER_KINDS` order.

    ``kinds`` (default: all) selects corner kinds. Group ``i`` is described by
    ``corner_dot_labels(...)[i]`` (``"kind:detail..."``); see the module docstring for the cases
    that only exist with ``blocks >= 2`` / ``>= 3`` or wide element formats.
    """
    g = _build(a_fmt, b_fmt, block_size, blocks, kinds)
    out = _empty(len(g.rows), g.blocks, g.bs)
    for i, row in enumerate(g.rows):
        for key, arr in zip(KEYS, row):
            out[key][i] = arr
    return out


def corner_dot_labels(a_fmt: str | MXFormat, b_fmt: str | MXFormat, block_size: int,
                      blocks: int, kinds=None) -> list[str]:
    """Labels of :func:`corner_dot_groups` (same arguments, same order).

    ``scales:<ca>:<cb>:<sign>``, ``zero:*``, ``max:<a>:<b>:<ca>:<cb>``,
    ``overflow:{inf,tie,above,max,below}:<sign>``,
    ``underflow:{min_sub,sub,max_sub,above_half,zero,deep}:<sign>``, ``cancel:*``,
    ``tie:normal:<up|down>:<case>@<binade>:<sign>``, ``tie:sub:<up|down>:<q>:<sign>``,
    ``mode_split:*``, ``nan:<a|b>:<nan|inf>:<code>:<x1|x0>``, ``nan:scale_<a|b|both>:zero``,
    ``int8_m2:<a|b>:*``.
    """
    return list(_build(a_fmt, b_fmt, block_size, blocks, kinds).labels)


def tie_groups(a_fmt: str | MXFormat, b_fmt: str | MXFormat, block_size: int,
               blocks: int) -> dict[str, np.ndarray]:
    """Only the exact-tie corner groups (``corner_dot_groups(..., kinds=("tie",))``).

    Ties of the final FP32 RNE rounding, both directions, both signs, in the normal binades
    :data:`TIE_BINADES` and on the subnormal grid. Normal-range ties need 25 significant bits:
    narrow format pairs only produce them with ``blocks >= 2`` (``>= 3`` for the three-term ones).
    """
    return corner_dot_groups(a_fmt, b_fmt, block_size, blocks, kinds=("tie",))


# --------------------------------------------------------------------------------------------
# exhaustive product sweep

def product_sweep(a_fmt: str | MXFormat, b_fmt: str | MXFormat,
                  block_size: int) -> dict[str, np.ndarray]:
    """One group of one block per code pair: group ``i = a_code * 2**b_width + b_code``.

    The pair sits at lane ``i % block_size``, every other lane is 0 and both scales are 127, so
    the FP32 result is exactly ``decode(a_code) * decode(b_code)`` (NaN for NaN/Inf codes; a zero
    product is +0.0). FP4 x FP4 gives 256 groups, FP8 x FP8 65,536.
    """
    a_el, b_el = mx_format(a_fmt).element, mx_format(b_fmt).element
    bs = _check_block_size(block_size)
    nb = 1 << b_el.width
    n = (1 << a_el.width) * nb
    idx = np.arange(n)
    out = _empty(n, 1, bs)
    out["a_codes"][idx, 0, idx % bs] = idx // nb
    out["b_codes"][idx, 0, idx % bs] = idx % nb
    return out
