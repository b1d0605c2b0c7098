"""Bit-exact golden model of OverQ (opportunistic outlier quantization) on a systolic column.

Numeric contract: ``ALGORITHMS.md`` §2.2 (**[proposal]**: the paper's real encoding is not
public) and §0.2. Every point where §2.2 leaves room is decided here and named.

* **Units.** Inputs are non-negative *fine* activations ``xf`` (int64, LSB ``= s / 2**b`` with
  ``s`` the b-bit step), at most ``3*b`` bits wide (``0 .. 2**(3b) - 1``: the encoder's input
  port, §2.3 "2b-3b-bit fine inputs"). Every decoded value and every accumulator is in the same
  fine units, with or without precision overwrite (the verify schema of the array core).
* **Tile.** The last axis of ``xf`` is one tile of ``R`` slots (the ``R`` rows of one
  weight-stationary column). Nothing crosses a tile boundary; slot 0 is always ``NORMAL``.
* **Coarse code.** ``c = (xf + 2**(b-1)) >> b`` (round half up, unclipped), ``M = 2**b - 1``.
  Element ``i`` is an *outlier* if ``c > M``, a *zero* if ``c == 0`` (so ``xf < 2**(b-1)``
  counts as a zero: it would quantize to 0 anyway).
* **Tags** (2 bits per slot): ``NORMAL`` 0 (own code, own weight, product ``<< b``),
  ``SHIFTED`` 1 (the element of the row above, displaced by a cascade; weight above, ``<< b``),
  ``RANGE`` 2 (high ``b`` bits of the outlier above; weight above, ``<< 2b``), ``PREC`` 3
  (``b`` fractional bits of the value above; weight above, ``<< 0``).
* **Range pass** (always on, ``cascade = D``), greedy left to right with pointer ``i``: a
  non-outlier emits ``NORMAL c``; an outlier looks for the nearest zero ``j`` in
  ``(i, min(i + D, R - 1)]`` (search *downwards only*, nearest first; §2.5's ``bidirectional``
  and ``allow_nonzero_overwrite`` are not implemented, i.e. both off). Found: ``v = min(c,
  2**(2b) - 1)`` (a handled outlier still saturates at ``2b`` bits), slot ``i`` ``NORMAL v & M``,
  slot ``i+1`` ``RANGE v >> b``, slots ``i+2 .. j`` ``SHIFTED min(c[m-1], M)`` (a displaced
  outlier saturates and is *not* handled, even if a zero lies beyond ``j``), the zero at ``j``
  is consumed (its element decodes to 0), and the scan resumes at ``j + 1``. Not found:
  ``NORMAL M`` (saturate). ``D = 0`` disables range overwrite (plain clipping).
* **Precision pass** (``precision=True``), after the range pass, no cascading, left to right,
  sequential: slot ``i`` holding ``NORMAL`` of a non-outlier, followed by a slot still holding
  ``NORMAL`` of a zero, becomes ``NORMAL xf >> b`` (floor, not the rounded ``c``) and ``PREC
  xf & M``; the element then decodes to ``xf`` exactly. A ``PREC`` slot is no longer ``NORMAL``,
  so of two adjacent zeros the left one takes the right one (whether or not it gains anything:
  the rule has no value comparison). Zeros themselves are non-outliers and are extended too
  (they gain their sub-half-step value). Only a slot's *own* element is extended (``SHIFTED``
  elements never are), and outliers (handled or not) never are: outliers take priority.
* **Decode.** Each slot contributes ``value << shift(tag)`` to element ``r`` (``NORMAL``) or
  ``r - 1`` (every other tag); an element with no slot (a consumed zero) is 0. For encoder
  output this is, per element: handled outlier ``min(c, 2**(2b)-1) << b``, unhandled outlier
  ``M << b``, precision-extended ``xf``, otherwise ``c << b``.
* **PE column.** Row ``r`` multiplies its value by ``W[r]`` (``NORMAL``) or by the stationary
  weight of the PE above, ``W[r-1]`` (2:1 mux), shifts the product left by ``b``, ``2b`` or 0
  and adds it to the column accumulator; so ``acc == decode(values, tags) @ W`` exactly. The
  accumulator needs ``3b + weight_bits + ceil(log2 R)`` signed bits (:func:`acc_bits`); without
  precision overwrite no ``PREC`` tag occurs, every product is a multiple of ``2**b`` and the
  hardware may drop ``b`` from every shift (``acc_fine = acc_coarse << b``).
* **Statistics** (:func:`post_relu`, :func:`to_fine`, :func:`quant_error`) are float64 helpers
  for sizing studies, not bit-exact hardware; :func:`post_relu`'s data model is a [proposal].

Integer arithmetic in int64 with every port range asserted. numpy only.
"""

from __future__ import annotations

import math

import numpy as np

from .checks import check_bool, check_int

__all__ = [
    "BITS",
    "MAX_CASCADE",
    "NORMAL",
    "PREC",
    "RANGE",
    "SHIFTED",
    "TAG_NAMES",
    "WEIGHT_BITS",
    "acc_bits",
    "array",
    "clip_quantize",
    "column",
    "coverage",
    "decode",
    "encode",
    "mse",
    "outlier_counts",
    "post_relu",
    "qsnr",
    "quant_error",
    "shift",
    "to_fine",
]

#: Tag codes (2 bits per slot, §2.2's table).
NORMAL = 0
SHIFTED = 1
RANGE = 2
PREC = 3
TAG_NAMES = {NORMAL: "NORMAL", SHIFTED: "SHIFTED", RANGE: "RANGE", PREC: "PREC"}
#: Allowed activation widths ``b`` (inclusive): fine inputs are ``3b <= 24`` bits.
BITS = (2, 8)
#: Allowed signed weight widths (inclusive).
WEIGHT_BITS = (2, 16)
#: Largest cascade depth ``D`` (the encoder's (D+1)-input shift muxes); 0 disables range overwrite.
MAX_CASCADE = 8
_MAX_ROWS = 4096


# --------------------------------------------------------------------------------------------
# argument checks

def _check_bits(bits: object) -> int:
    return check_int("bits", bits, *BITS)


def _first(bad: np.ndarray) -> tuple:
    return tuple(int(i) for i in np.argwhere(bad)[0])


def _check_ints(name: str, a: object, lo: int, hi: int, what: str, shape_doc: str = "(..., R)"
                ) -> np.ndarray:
    """An integer array, at least 1-d with a non-empty last axis, values in lo..hi -> int64."""
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array of {what}, not {a.dtype}")
    if a.ndim < 1 or a.shape[-1] < 1:
        raise ValueError(f"{name} must have shape {shape_doc} with R >= 1, not {a.shape}")
    if a.shape[-1] > _MAX_ROWS:
        raise ValueError(f"{name} has R = {a.shape[-1]} slots per tile; at most {_MAX_ROWS}")
    if a.size:
        bad = (a < lo) | (a > hi)
        if bad.any():
            where = _first(bad)
            raise ValueError(f"{name} must hold {what} in {lo}..{hi}, found {a[where]} at index "
                             f"{where}")
    return a.astype(np.int64)


def _check_x(x: object, bits: int) -> np.ndarray:
    return _check_ints("x", x, 0, (1 << 3 * bits) - 1,
                       f"non-negative {3 * bits}-bit fine activations")


def _check_encoding(values: object, tags: object, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """values/tags of the same shape, in range, and a tag stream the encoder can emit."""
    v = _check_ints("values", values, 0, (1 << bits) - 1, f"{bits}-bit codes")
    t = _check_ints("tags", tags, 0, 3, "2-bit tags")
    if v.shape != t.shape:
        raise ValueError(f"values and tags must have the same shape, not {v.shape} and "
                         f"{t.shape}")
    if t.size == 0:
        return v, t
    if (t[..., 0] != NORMAL).any():
        where = _first(t[..., 0] != NORMAL) + (0,)
        raise ValueError(f"tags must be NORMAL in slot 0 of every tile (no row above), found "
                         f"{TAG_NAMES[int(t[where])]} at index {where}")
    prev = t[..., :-1]
    cur = t[..., 1:]
    bad = (((cur == RANGE) | (cur == PREC)) & (prev != NORMAL)) \
        | ((cur == SHIFTED) & (prev != RANGE) & (prev != SHIFTED))
    if bad.any():
        where = _first(bad)
        where = where[:-1] + (where[-1] + 1,)
        allowed = "RANGE or SHIFTED" if t[where] == SHIFTED else "NORMAL"
        raise ValueError(f"tags: {TAG_NAMES[int(t[where])]} at index {where} must follow "
                         f"{allowed}, not {TAG_NAMES[int(prev[where[:-1] + (where[-1] - 1,)])]}")
    return v, t


def _check_w(w: object, rows: int, weight_bits: int) -> np.ndarray:
    w = np.asarray(w)
    if w.dtype.kind not in "iu":
        raise TypeError(f"w must be an integer array of signed weights, not {w.dtype}")
    if w.ndim != 2 or w.shape[0] != rows or w.shape[1] < 1:
        raise ValueError(f"w must have shape (rows, cols) = ({rows}, cols >= 1) for tiles of "
                         f"R = {rows}, not {w.shape}")
    lo, hi = -(1 << weight_bits - 1), (1 << weight_bits - 1) - 1
    bad = (w < lo) | (w > hi)
    if bad.any():
        where = _first(bad)
        raise ValueError(f"w must hold signed {weight_bits}-bit weights in {lo}..{hi}, found "
                         f"{w[where]} at index {where}")
    return w.astype(np.int64)


def _check_real(name: str, a: object) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real (float or integer) array, not {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        where = _first(~np.isfinite(a))
        raise ValueError(f"{name} must be finite, found {a[where]} at index {where}")
    return a


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                       np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, not {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------
# sizes

def shift(tag: int, bits: int) -> int:
    """Left shift the PE applies to ``value * weight`` for a tag, in fine units.

    ``NORMAL`` and ``SHIFTED``: ``b``; ``RANGE``: ``2b``; ``PREC``: 0.

    Parameters
    ----------
    tag : {NORMAL, SHIFTED, RANGE, PREC}
    bits : int
        Activation width ``b``, in :data:`BITS`.

    Returns
    -------
    int
    """
    tag = check_int("tag", tag, 0, 3)
    bits = _check_bits(bits)
    return (bits, bits, 2 * bits, 0)[tag]


def acc_bits(rows: int, bits: int, weight_bits: int) -> int:
    """Signed accumulator width (fine units) of one OverQ column: ``3b + Bw + ceil(log2 R)``.

    Every decoded element is ``< 2**(3b)`` fine units (at most ``(2**(2b) - 1) << b``), so §0.2's
    rule with ``Ba = 3b`` is exact for any tag stream :func:`decode` accepts.

    Parameters
    ----------
    rows : int
        Tile length ``R`` (rows of the column), >= 1.
    bits : int
        Activation width ``b``, in :data:`BITS`.
    weight_bits : int
        Signed weight width, in :data:`WEIGHT_BITS`.

    Returns
    -------
    int
    """
    rows = check_int("rows", rows, 1, _MAX_ROWS)
    bits = _check_bits(bits)
    weight_bits = check_int("weight_bits", weight_bits, *WEIGHT_BITS)
    return 3 * bits + weight_bits + (rows - 1).bit_length()


# --------------------------------------------------------------------------------------------
# encoder / decoder

def _coarse(x: np.ndarray, bits: int) -> np.ndarray:
    return (x + (1 << bits - 1)) >> bits


def encode(x, bits: int, cascade: int = 1, precision: bool = False
           ) -> tuple[np.ndarray, np.ndarray]:
    """OverQ-encode tiles of fine activations into ``b``-bit values and 2-bit tags (§2.2).

    Parameters
    ----------
    x : array_like of int, shape (..., R)
        Non-negative fine activations ``xf`` (LSB ``= s / 2**b``), ``0 .. 2**(3b) - 1``; the last
        axis is one tile.
    bits : int
        Activation width ``b``, in :data:`BITS`.
    cascade : int
        Cascade depth ``D`` in ``0 .. MAX_CASCADE``: an outlier reaches the nearest zero at most
        ``D`` slots below it (1: only the immediate neighbour; 0: no range overwrite).
    precision : bool
        Enable precision overwrite.

    Returns
    -------
    values : ndarray of int64, shape (..., R)
        ``b``-bit slot values ``0 .. 2**b - 1``.
    tags : ndarray of uint8, shape (..., R)
        ``NORMAL`` / ``SHIFTED`` / ``RANGE`` / ``PREC``.
    """
    bits = _check_bits(bits)
    cascade = check_int("cascade", cascade, 0, MAX_CASCADE)
    precision = check_bool("precision", precision)
    x = _check_x(x, bits)
    m = (1 << bits) - 1
    vmax = (1 << 2 * bits) - 1
    shape = x.shape
    xf = x.reshape(-1, shape[-1])
    rows = shape[-1]
    c = _coarse(xf, bits)
    val = np.zeros_like(xf)
    tag = np.full(xf.shape, NORMAL, dtype=np.int64)
    ptr = np.zeros(xf.shape[0], dtype=np.int64)          # next slot the range pass scans
    for i in range(rows):
        at = ptr == i
        out = at & (c[:, i] > m)
        val[at, i] = np.minimum(c[at, i], m)             # non-outlier code or saturated outlier
        ptr[at] = i + 1
        # nearest zero j in (i, i + D], j <= R - 1
        j = np.full(xf.shape[0], -1, dtype=np.int64)
        for k in range(min(i + cascade, rows - 1), i, -1):
            j = np.where(out & (c[:, k] == 0), k, j)
        hit = j >= 0
        if not hit.any():
            continue
        v = np.minimum(c[hit, i], vmax)
        val[hit, i] = v & m
        val[hit, i + 1] = v >> bits
        tag[hit, i + 1] = RANGE
        for s in range(i + 2, min(i + cascade, rows - 1) + 1):
            moved = hit & (j >= s)
            val[moved, s] = np.minimum(c[moved, s - 1], m)
            tag[moved, s] = SHIFTED
        ptr[hit] = j[hit] + 1
    if precision:
        for i in range(rows - 1):
            ext = (tag[:, i] == NORMAL) & (c[:, i] <= m) & (tag[:, i + 1] == NORMAL) \
                & (c[:, i + 1] == 0)
            f = xf[ext, i]
            assert (f < 1 << 2 * bits).all()
            val[ext, i] = f >> bits
            val[ext, i + 1] = f & m
            tag[ext, i + 1] = PREC
    assert ((val >= 0) & (val <= m)).all()
    return val.reshape(shape), tag.astype(np.uint8).reshape(shape)


def decode(values, tags, bits: int) -> np.ndarray:
    """The value, in fine units, that each original element of an encoded tile ends up with.

    Slot ``r`` adds ``values[r] << shift(tags[r])`` to element ``r`` if ``NORMAL``, else to
    element ``r - 1``; an element no slot belongs to (a zero consumed by an overwrite) is 0.

    Parameters
    ----------
    values : array_like of int, shape (..., R)
        ``b``-bit values.
    tags : array_like of int, shape (..., R)
        A tag stream the encoder can emit: slot 0 ``NORMAL``, ``RANGE`` and ``PREC`` only after
        ``NORMAL``, ``SHIFTED`` only after ``RANGE`` or ``SHIFTED``.
    bits : int
        Activation width ``b``, in :data:`BITS`.

    Returns
    -------
    ndarray of int64, shape (..., R)
        ``0 .. (2**(2b) - 1) << b``.
    """
    bits = _check_bits(bits)
    v, t = _check_encoding(values, tags, bits)
    sh = np.array([bits, bits, 2 * bits, 0], dtype=np.int64)[t]
    part = v << sh
    own = t == NORMAL
    out = np.where(own, part, 0)
    out[..., :-1] += np.where(own[..., 1:], 0, part[..., 1:])
    assert (out <= ((1 << 2 * bits) - 1) << bits).all()
    return out


def clip_quantize(x, bits: int) -> np.ndarray:
    """Plain ``b``-bit baseline in fine units: ``min((xf + 2**(b-1)) >> b, 2**b - 1) << b``.

    Round half up, then saturate (what every non-outlier also gets from OverQ without precision).

    Parameters
    ----------
    x : array_like of int, shape (..., R)
        Fine activations ``0 .. 2**(3b) - 1``.
    bits : int
        Activation width ``b``, in :data:`BITS`.

    Returns
    -------
    ndarray of int64, same shape
    """
    bits = _check_bits(bits)
    x = _check_x(x, bits)
    return np.minimum(_coarse(x, bits), (1 << bits) - 1) << bits


# --------------------------------------------------------------------------------------------
# systolic column

def column(values, tags, w, bits: int, weight_bits: int) -> np.ndarray:
    """PE-column model: the accumulators an OverQ weight-stationary column produces.

    Row ``r`` holds stationary ``W[r, :]`` and sees ``W[r-1, :]`` of the PE above; it selects
    ``W[r]`` for ``NORMAL`` and ``W[r-1]`` for every other tag (2:1 mux), multiplies by the
    ``b``-bit value, shifts left by :func:`shift` and adds to the partial sum coming down the
    column. Equal to ``decode(values, tags, bits) @ w`` exactly.

    Parameters
    ----------
    values, tags : array_like of int, shape (..., R)
        An encoded tile (see :func:`decode` for the allowed tag streams).
    w : array_like of int, shape (R, cols)
        Signed ``weight_bits``-bit weights.
    bits : int
        Activation width ``b``, in :data:`BITS`.
    weight_bits : int
        Signed weight width, in :data:`WEIGHT_BITS`.

    Returns
    -------
    ndarray of int64, shape (..., cols)
        Accumulators in fine units, within ``acc_bits(R, bits, weight_bits)`` signed bits.
    """
    bits = _check_bits(bits)
    weight_bits = check_int("weight_bits", weight_bits, *WEIGHT_BITS)
    v, t = _check_encoding(values, tags, bits)
    rows = v.shape[-1]
    w = _check_w(w, rows, weight_bits)
    acc = np.zeros(v.shape[:-1] + (w.shape[1],), dtype=np.int64)
    for r in range(rows):
        tr = t[..., r, None]
        above = w[r - 1] if r else np.zeros_like(w[0])
        sel = np.where(tr == NORMAL, w[r], above)
        prod = v[..., r, None] * sel
        sh = np.where(tr == RANGE, 2 * bits, np.where(tr == PREC, 0, bits))
        acc += prod << sh
    lim = 1 << acc_bits(rows, bits, weight_bits) - 1
    assert ((acc >= -lim) & (acc < lim)).all()
    return acc


def array(x, w, bits: int, weight_bits: int, cascade: int = 1, precision: bool = False
          ) -> np.ndarray:
    """Golden of an OverQ array core: encode each row of ``x`` as one tile, then :func:`column`.

    Parameters
    ----------
    x : array_like of int, shape (n, rows)
        Non-negative fine activations ``0 .. 2**(3b) - 1``.
    w : array_like of int, shape (rows, cols)
        Signed ``weight_bits``-bit weights.
    bits, weight_bits, cascade, precision
        As in :func:`encode` and :func:`column`.

    Returns
    -------
    ndarray of int64, shape (n, cols)
        Accumulators in fine units.
    """
    xa = np.asarray(x)
    if xa.ndim != 2:
        raise ValueError(f"x must have shape (n, rows), not {xa.shape}")
    values, tags = encode(xa, bits, cascade, precision)
    return column(values, tags, w, bits, weight_bits)


# --------------------------------------------------------------------------------------------
# statistics

def outlier_counts(x, bits: int, cascade: int = 1) -> tuple[int, int]:
    """Number of outliers (``c > 2**b - 1``) and how many the range pass handles.

    An outlier is *handled* when it gets a ``RANGE`` slot (even if it then saturates at
    ``2**(2b) - 1``). Precision overwrite never changes the count (outliers take priority), so
    it is not a parameter.

    Parameters
    ----------
    x : array_like of int, shape (..., R)
        Fine activations, as in :func:`encode`.
    bits, cascade
        As in :func:`encode`.

    Returns
    -------
    (int, int)
        ``(outliers, handled)``.
    """
    bits = _check_bits(bits)
    x = _check_x(x, bits)
    _, tags = encode(x, bits, cascade, False)
    out = _coarse(x, bits) > (1 << bits) - 1
    handled = out[..., :-1] & (tags[..., 1:] == RANGE)
    return int(out.sum()), int(handled.sum())


def coverage(x, bits: int, cascade: int = 1) -> float:
    """Fraction of outliers handled by range overwrite: ``handled / outliers``.

    Parameters
    ----------
    x : array_like of int, shape (..., R)
        Fine activations, as in :func:`encode`.
    bits, cascade
        As in :func:`encode`.

    Returns
    -------
    float
        In ``[0, 1]``; ``nan`` if ``x`` holds no outlier.
    """
    n, h = outlier_counts(x, bits, cascade)
    return h / n if n else float("nan")


def post_relu(rng: np.random.Generator, shape, zero_fraction: float = 0.5,
              tail: float | None = None) -> np.ndarray:
    """Synthetic post-ReLU activations (**[proposal]** data model, float64, unit scale).

    Each element is 0 with probability ``zero_fraction`` (independently), else ``|X|`` with ``X``
    standard normal (``tail=None``: half-normal) or Student-t with ``tail`` degrees of freedom
    (heavy-tailed; smaller is heavier). Independent zeros match §2.2's coverage model; real
    activation zeros are correlated, so measure real dumps before trusting a sizing.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : int or tuple of int
    zero_fraction : float
        In ``[0, 1]``.
    tail : float or None
        Student-t degrees of freedom, > 0, or None for half-normal.

    Returns
    -------
    ndarray of float64, non-negative
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
    if isinstance(zero_fraction, (bool, np.bool_)) \
            or not isinstance(zero_fraction, (int, float, np.integer, np.floating)) \
            or not 0 <= zero_fraction <= 1:
        raise ValueError(f"zero_fraction must be a number in [0, 1], not {zero_fraction!r}")
    if tail is not None:
        tail = _check_positive("tail", tail)
    mag = np.abs(rng.standard_normal(shape) if tail is None else rng.standard_t(tail, shape))
    return np.where(rng.random(shape) < zero_fraction, 0.0, mag)


def to_fine(a, step: float, bits: int) -> np.ndarray:
    """Real non-negative activations -> fine integers ``xf`` (the requantizer before OverQ).

    ``xf = min(floor(a / step * 2**b + 1/2), 2**(3b) - 1)`` in float64 (round half up, then
    saturate to the ``3b``-bit encoder port, which loses nothing OverQ could represent).

    Parameters
    ----------
    a : array_like of float, non-negative, finite
    step : float
        The ``b``-bit step ``s`` (> 0).
    bits : int
        Activation width ``b``, in :data:`BITS`.

    Returns
    -------
    ndarray of int64, same shape
    """
    bits = _check_bits(bits)
    step = _check_positive("step", step)
    a = _check_real("a", a)
    if (a < 0).any():
        where = _first(a < 0)
        raise ValueError(f"a must be non-negative (post-ReLU), found {a[where]} at index {where}")
    xf = np.floor(a / step * (1 << bits) + 0.5)
    return np.minimum(xf, (1 << 3 * bits) - 1).astype(np.int64)


def mse(ref, approx) -> float:
    """Mean squared error ``mean((approx - ref)**2)`` in float64.

    Parameters
    ----------
    ref, approx : array_like of real, same shape, non-empty

    Returns
    -------
    float
    """
    r, q = _check_real("ref", ref), _check_real("approx", approx)
    if r.shape != q.shape or r.size == 0:
        raise ValueError(f"ref and approx must have the same non-empty shape, not {r.shape} and "
                         f"{q.shape}")
    return float(np.mean((q - r) ** 2))


def qsnr(ref, approx) -> float:
    """Quantization signal-to-noise ratio ``10 log10(sum(ref**2) / sum((approx - ref)**2))`` dB.

    Parameters
    ----------
    ref, approx : array_like of real, same shape, non-empty

    Returns
    -------
    float
        ``inf`` for an exact ``approx``.
    """
    e = mse(ref, approx)
    s = float(np.mean(_check_real("ref", ref) ** 2))
    if e == 0:
        return float("inf")
    return 10 * math.log10(s / e) if s else float("-inf")


def quant_error(a, step: float, bits: int, cascade: int = 1, precision: bool = False) -> dict:
    """Quantization error of OverQ against plain ``b``-bit clipping on real activations.

    Both paths see the same fine input :func:`to_fine` ``(a, step, bits)``; errors are measured
    against ``a / step`` (units of the step, so MSE is in ``step**2``).

    Parameters
    ----------
    a : array_like of float, shape (..., R), non-negative
        Real activations; the last axis is the tile.
    step : float
        The ``b``-bit step ``s``.
    bits, cascade, precision
        As in :func:`encode`.

    Returns
    -------
    dict
        ``mse_overq``, ``mse_clip``, ``qsnr_overq``, ``qsnr_clip`` (dB) and ``coverage``.
    """
    xf = to_fine(a, step, bits)
    ref = np.asarray(a, dtype=np.float64) / step
    scale = 1.0 / (1 << bits)
    dq = decode(*encode(xf, bits, cascade, precision), bits) * scale
    dc = clip_quantize(xf, bits) * scale
    return {"mse_overq": mse(ref, dq), "mse_clip": mse(ref, dc), "qsnr_overq": qsnr(ref, dq),
            "qsnr_clip": qsnr(ref, dc), "coverage": coverage(xf, bits, cascade)}
