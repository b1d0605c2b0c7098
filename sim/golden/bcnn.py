"""Bit-exact golden model of binarized 3x3 conv layers, full and separable (BCNNw/SF).

Numeric contract: ``ALGORITHMS.md`` §5 (BCNN with separable filters) and §6.2 (the FPGA'17 BNN it
builds on), with the conventions fixed for issue 5 below. Where they differ from §5.2/§6.2 the
difference is named.

* **Values.** Activations and weights are ``+1`` / ``-1`` (int8 arrays); nothing else is accepted.
* **Convolution** is cross-correlation as in PyTorch (no kernel flip; ``bnn-fpga`` flips, see
  §6.2 -- to use its weights, reverse both kernel axes, or both ``u`` and ``v``), weights OIHW,
  3x3, stride 1, "same" output size::

      sums[o, r, c] = sum_{m, kr, kc} w[o, m, kr, kc] * xp[m, r + kr - 1, c + kc - 1]

  ``xp`` is ``x`` padded by one pixel on every side with the value ``pad``: ``0`` (zero padding,
  padded pixels contribute nothing; FPGA'17's choice, the default) or ``1`` (+1 padding, every
  pixel is +-1 so the datapath stays 1 bit wide).
* **Separable kernels** are ``w[o, m] = outer(u[o, m], v[o, m])``: ``u`` runs over kernel rows
  (the vertical 3x1 factor), ``v`` over kernel columns (the horizontal 1x3 factor). The hardware
  order -- vertical pass, then horizontal pass -- equals the full convolution with that kernel
  exactly, in both padding modes, because the padded columns of the vertical pass carry
  ``pad * sum(u)`` (see :func:`vertical_pass`).
* **Threshold.** Output ``+1`` where the integer sum ``>= t[o]``, else ``-1`` (ties give +1).
  Batch norm is folded into ``t`` by :func:`fold_batchnorm`; a negative BN scale is folded by
  negating that output channel's weights (``w[o]``, or ``v[o]`` for separable kernels) and its
  threshold, so the hardware always compares ``sum >= t``.
* **Max-pool** 2x2, stride 2, on the binarized +-1 maps (= OR of the packed bits); odd sizes
  floor (the last row / column is dropped, as PyTorch ``MaxPool2d(2)``).
* **Packing.** Bit ``1`` means ``+1`` and bit ``0`` means ``-1`` (the opposite of ``bnn-fpga``'s
  encoding in §6.2 and of the sketch in §5.2); channel ``c`` is bit ``c % word`` of word
  ``c // word``.
* **Separable factors** (:func:`sf_kernels`): float64 SVD of the (binarized) kernel, leading
  singular pair, canonical sign (the first component of ``u`` above rounding noise is positive,
  hence ``u_b[0] = +1`` and 5 bits per kernel suffice), then ``sign`` with ``sign(0) = +1``.

Integer arithmetic in int64 with the range of every hardware port asserted; the BN folding is
exact rational arithmetic; only the training-side SVD helpers use floats. numpy only.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from .checks import check_bool, check_int

__all__ = [
    "KERNELS",
    "KERNEL_BITS",
    "PADS",
    "SVD_OF",
    "BatchNormFold",
    "binarize",
    "conv_full",
    "conv_separable",
    "fold_batchnorm",
    "layer",
    "maxpool2x2",
    "negate_channels",
    "outer_kernels",
    "pack_channels",
    "sf_backward",
    "sf_gradient",
    "sf_kernels",
    "sf_svd",
    "sum_bits",
    "threshold",
    "unpack_channels",
    "vertical_pass",
    "weight_bits",
]

#: Padding modes: the value of every out-of-image pixel (0: zero padding, 1: +1 padding).
PADS = (0, 1)
#: Kernel kinds: ``"full"`` (any +-1 3x3 kernel) or ``"separable"`` (``outer(u, v)``).
KERNELS = ("full", "separable")
#: What :func:`sf_kernels` decomposes: ``"sign"`` (the SVD of ``sign(k)``, §5.1 step 1, default)
#: or ``"real"`` (the SVD of the real-valued ``k``; §5.5 leaves this open).
SVD_OF = ("sign", "real")
#: Stored weight bits per 3x3 kernel: full 9; separable 6 (``u``, ``v``) or 5 when ``u[0] = +1``
#: is canonical and not stored.
KERNEL_BITS = {"full": 9, "separable": 6, "separable_canonical": 5}

_TAPS = 9                   # |sum| <= 9 * c_in for every +-1 3x3 kernel, either padding
_INT32_MAX = 2**31 - 1
_MAX_C_IN = (_INT32_MAX - 1) // _TAPS   # every sum and folded threshold fits int32
_MAX_WORD = 64
# A component of a unit singular vector at or below this magnitude is rounding noise of an exact
# zero: it counts as 0 (sign +1) and never decides the canonical sign.
_VEC_TOL = 1e-9
# sigma_1 - sigma_l <= _SV_TOL * sigma_1 counts as a repeated leading singular value.
_SV_TOL = 1e-9


# --------------------------------------------------------------------------------------------
# argument checks

def _check_choice(name: str, value: object, allowed: tuple) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")
    return value


def _check_pad(pad: object) -> int:
    if isinstance(pad, (bool, np.bool_)) or not isinstance(pad, (int, np.integer)) \
            or pad not in PADS:
        raise ValueError(f"pad must be 0 (zero padding) or 1 (+1 padding), not {pad!r}")
    return int(pad)


def _check_pm1(name: str, a: object, shape_doc: str, ndim: int | None = None) -> np.ndarray:
    """A +-1 integer array (any integer dtype) -> int64; ``ndim`` None means at least 1-d."""
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array of -1/+1 values, not {a.dtype}")
    if a.ndim < 1 or (ndim is not None and a.ndim != ndim):
        raise ValueError(f"{name} must have shape {shape_doc}, not {a.shape}")
    bad = (a != 1) & (a != -1)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must hold only -1 and +1, found {a[where]} at index {where}")
    return a.astype(np.int64)


def _check_x(x: object) -> np.ndarray:
    x = _check_pm1("x", x, "(c_in, height, width)", 3)
    if 0 in x.shape:
        raise ValueError(f"x must have shape (c_in, height, width) with every dimension >= 1, "
                         f"not {x.shape}")
    if x.shape[0] > _MAX_C_IN:
        raise ValueError(f"x has c_in = {x.shape[0]}; at most {_MAX_C_IN} channels keep every "
                         "sum in int32")
    return x


def _check_w(w: object, c_in: int) -> np.ndarray:
    w = _check_pm1("w", w, f"(c_out, {c_in}, 3, 3)", 4)
    if w.shape[1:] != (c_in, 3, 3) or w.shape[0] < 1:
        raise ValueError(f"w must have shape (c_out, {c_in}, 3, 3) for x with c_in = {c_in}, "
                         f"not {w.shape}")
    return w


def _check_uv(u: object, v: object, c_in: int) -> tuple[np.ndarray, np.ndarray]:
    u = _check_pm1("u", u, f"(c_out, {c_in}, 3)", 3)
    v = _check_pm1("v", v, f"(c_out, {c_in}, 3)", 3)
    for name, a in (("u", u), ("v", v)):
        if a.shape[1:] != (c_in, 3) or a.shape[0] < 1:
            raise ValueError(f"{name} must have shape (c_out, {c_in}, 3) for x with "
                             f"c_in = {c_in}, not {a.shape}")
    if u.shape != v.shape:
        raise ValueError(f"u and v must have the same shape, not {u.shape} and {v.shape}")
    return u, v


def _check_t(t: object, c_out: int) -> np.ndarray:
    t = np.asarray(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"t must be an integer array of thresholds, not {t.dtype}")
    if t.shape != (c_out,):
        raise ValueError(f"t must have shape (c_out,) = ({c_out},), not {t.shape}")
    if t.size and (t.min() < -_INT32_MAX - 1 or t.max() > _INT32_MAX):
        bad = t.min() if t.min() < -_INT32_MAX - 1 else t.max()
        raise ValueError(f"t must be int32 thresholds in {-_INT32_MAX - 1}..{_INT32_MAX}, "
                         f"found {int(bad)}")
    return t.astype(np.int64)


def _check_float(name: str, a: object, shape_doc: str, trailing: tuple) -> np.ndarray:
    """A finite real array whose shape ends with ``trailing`` -> float64."""
    a = np.asarray(a)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real (float or integer) array, not {a.dtype}")
    if a.ndim < len(trailing) or a.shape[a.ndim - len(trailing):] != trailing:
        raise ValueError(f"{name} must have shape {shape_doc}, not {a.shape}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(f"{name} must be finite, found {a[where]} at index {where}")
    return a


# --------------------------------------------------------------------------------------------
# sizes

def sum_bits(c_in: int) -> int:
    """Signed width that holds every conv sum and every folded threshold of a layer.

    Sums lie in ``-9*c_in .. 9*c_in`` and :func:`fold_batchnorm` thresholds in
    ``-9*c_in .. 9*c_in + 1``, so the width is the smallest ``n`` with
    ``2**(n-1) - 1 >= 9*c_in + 1`` (FPGA'17's fixed ``ap_int<12>`` is too narrow for 512 channels,
    §6.2).

    Parameters
    ----------
    c_in : int
        Input channels, >= 1.

    Returns
    -------
    int
    """
    c_in = check_int("c_in", c_in, 1, _MAX_C_IN)
    return (_TAPS * c_in + 1).bit_length() + 1


def weight_bits(c_out: int, c_in: int, kernel: str, canonical: bool = True) -> int:
    """Stored weight bits of a layer: ``c_out * c_in`` kernels times the bits per kernel.

    Parameters
    ----------
    c_out, c_in : int
        Output and input channels, >= 1.
    kernel : {"full", "separable"}
        ``"full"``: 9 bits per kernel. ``"separable"``: ``u`` and ``v``, 6 bits, or 5 with
        ``canonical`` (``u[0] = +1`` is implied, as :func:`sf_kernels` guarantees).
    canonical : bool
        Separable only (no effect on full kernels): drop the implied ``u[0]`` bit.

    Returns
    -------
    int
    """
    c_out = check_int("c_out", c_out, 1, 2**31)
    c_in = check_int("c_in", c_in, 1, _MAX_C_IN)
    kernel = _check_choice("kernel", kernel, KERNELS)
    canonical = check_bool("canonical", canonical)
    if kernel == "full":
        per = KERNEL_BITS["full"]
    else:
        per = KERNEL_BITS["separable_canonical" if canonical else "separable"]
    return c_out * c_in * per


# --------------------------------------------------------------------------------------------
# convolution

def outer_kernels(u, v) -> np.ndarray:
    """Full kernels of separable factors: ``w[..., kr, kc] = u[..., kr] * v[..., kc]``.

    Parameters
    ----------
    u, v : array_like of int, +-1, shape (..., 3)
        Vertical (row) and horizontal (column) factors, same shape.

    Returns
    -------
    ndarray of int8, shape (..., 3, 3)
    """
    u = _check_pm1("u", u, "(..., 3)")
    v = _check_pm1("v", v, "(..., 3)")
    if u.shape[-1] != 3 or u.shape != v.shape:
        raise ValueError(f"u and v must have the same shape (..., 3), not {u.shape} and "
                         f"{v.shape}")
    return (u[..., :, None] * v[..., None, :]).astype(np.int8)


def conv_full(x, w, pad: int = 0) -> np.ndarray:
    """Binary 3x3 convolution (cross-correlation), stride 1, "same" size, integer sums.

    ``sums[o, r, c] = sum_{m, kr, kc} w[o, m, kr, kc] * xp[m, r + kr - 1, c + kc - 1]`` with
    out-of-image pixels ``xp = pad``.

    Parameters
    ----------
    x : array_like of int, +-1, shape (c_in, height, width)
    w : array_like of int, +-1, shape (c_out, c_in, 3, 3)
        OIHW weights, not flipped.
    pad : {0, 1}
        Value of the padded pixels: 0 (zero padding) or 1 (+1 padding).

    Returns
    -------
    ndarray of int32, shape (c_out, height, width)
        Exact sums, ``|sum| <= 9 * c_in``.
    """
    pad = _check_pad(pad)
    x = _check_x(x)
    w = _check_w(w, x.shape[0])
    c_in, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=pad)
    sums = np.zeros((w.shape[0], h, wd), dtype=np.int64)
    for kr in range(3):
        for kc in range(3):
            sums += np.tensordot(w[:, :, kr, kc], xp[:, kr:kr + h, kc:kc + wd], axes=(1, 0))
    assert np.abs(sums).max() <= _TAPS * c_in
    return sums.astype(np.int32)


def _vertical(xr: np.ndarray, u_o: np.ndarray, pad: int) -> np.ndarray:
    """Vertical pass of one output channel: ``xr`` row-padded [c_in, h+2, w], ``u_o`` [c_in, 3].

    Returns int64 [c_in, h, w + 2]: column j is image column j - 1; the two padded columns are
    ``pad * sum(u_o)`` (the vertical sum of a column of padded pixels).
    """
    c_in, hp, wd = xr.shape
    h = hp - 2
    t = np.empty((c_in, h, wd + 2), dtype=np.int64)
    t[:, :, 1:-1] = sum(u_o[:, k, None, None] * xr[:, k:k + h, :] for k in range(3))
    edge = pad * u_o.sum(axis=1)
    t[:, :, 0] = edge[:, None]
    t[:, :, -1] = edge[:, None]
    assert np.abs(t).max() <= 3
    return t


def vertical_pass(x, u, pad: int = 0) -> np.ndarray:
    """First (3x1, vertical) stage of the separable convolution, with its padded columns.

    ``t[o, m, r, j] = sum_k u[o, m, k] * xp[m, r + k - 1, j - 1]`` for ``j = 0 .. width + 1``,
    i.e. image columns ``-1 .. width`` (§5.2). The hardware sums only the ``width`` real columns;
    the two padded columns ``j = 0`` and ``j = width + 1`` are a column of padded pixels, so they
    hold ``0`` for ``pad = 0`` and ``sum(u[o, m])`` for ``pad = 1``.

    Parameters
    ----------
    x : array_like of int, +-1, shape (c_in, height, width)
    u : array_like of int, +-1, shape (c_out, c_in, 3)
    pad : {0, 1}

    Returns
    -------
    ndarray of int32, shape (c_out, c_in, height, width + 2)
        Values in ``-3 .. 3``.
    """
    pad = _check_pad(pad)
    x = _check_x(x)
    u = _check_pm1("u", u, f"(c_out, {x.shape[0]}, 3)", 3)
    if u.shape[1:] != (x.shape[0], 3) or u.shape[0] < 1:
        raise ValueError(f"u must have shape (c_out, {x.shape[0]}, 3) for x with "
                         f"c_in = {x.shape[0]}, not {u.shape}")
    xr = np.pad(x, ((0, 0), (1, 1), (0, 0)), constant_values=pad)
    return np.stack([_vertical(xr, u_o, pad) for u_o in u]).astype(np.int32)


def conv_separable(x, u, v, pad: int = 0) -> np.ndarray:
    """Separable binary 3x3 convolution in the hardware's order: vertical 3x1, then 1x3.

    Per output channel ``o`` and input channel ``m``: the vertical pass :func:`vertical_pass`
    gives ``t`` in ``-3..3`` (padded columns ``pad * sum(u)``), the horizontal pass
    ``y[r, c] = sum_l v[o, m, l] * t[r, c + l - 1]`` gives ``-9..9`` (integer times sign, not
    XNOR), and the sums over ``m`` are the result. Equal, exactly and in both padding modes, to
    ``conv_full(x, outer_kernels(u, v), pad)``.

    Parameters
    ----------
    x : array_like of int, +-1, shape (c_in, height, width)
    u, v : array_like of int, +-1, shape (c_out, c_in, 3)
        Vertical and horizontal factors (kernel ``outer(u, v)``).
    pad : {0, 1}

    Returns
    -------
    ndarray of int32, shape (c_out, height, width)
    """
    pad = _check_pad(pad)
    x = _check_x(x)
    u, v = _check_uv(u, v, x.shape[0])
    c_in, h, wd = x.shape
    xr = np.pad(x, ((0, 0), (1, 1), (0, 0)), constant_values=pad)
    sums = np.empty((u.shape[0], h, wd), dtype=np.int64)
    for o in range(u.shape[0]):                   # one output channel at a time: bounded memory
        t = _vertical(xr, u[o], pad)
        y = sum(v[o, :, j, None, None] * t[:, :, j:j + wd] for j in range(3))
        assert np.abs(y).max() <= 9
        sums[o] = y.sum(axis=0)
    assert np.abs(sums).max() <= _TAPS * c_in
    return sums.astype(np.int32)


# --------------------------------------------------------------------------------------------
# batch norm, threshold, pool

class BatchNormFold(NamedTuple):
    """Batch norm + sign folded for a ``sum >= t`` comparator.

    Output channel ``o`` gives ``+1`` iff ``s_o >= t[o]``, where ``s_o`` is its conv sum computed
    with the weights negated when ``flip[o]`` (see :func:`negate_channels`).
    """

    t: np.ndarray       # int32 [c_out], in -9*c_in .. 9*c_in + 1
    flip: np.ndarray    # bool [c_out]: negate this output channel's weights (BN scale < 0)


def fold_batchnorm(gamma, beta, mean, var, eps: float = 1e-5, bias=None, *,
                   c_in: int) -> BatchNormFold:
    """Fold inference batch norm and ``sign`` into integer thresholds and weight flips.

    The float layer is PyTorch's ``BatchNorm2d`` (eval mode) on the conv sum ``s`` (plus an
    optional conv ``bias``), then ``sign`` with ``sign(0) = +1``::

        y = gamma * (s + bias - mean) / sqrt(var + eps) + beta;   out = +1 if y >= 0 else -1

    Multiplying by ``sigma = sqrt(var + eps) > 0`` and solving for the integer ``s`` with
    ``tau = mean - bias - beta * sigma / gamma``:

    * ``gamma > 0``: ``+1 iff s >= tau iff s >= ceil(tau)``: ``t = ceil(tau)``, no flip.
    * ``gamma < 0`` (negative BN scale; the comparison flips): ``+1 iff s <= tau iff
      -s >= ceil(-tau)``: ``t = ceil(-tau)`` and ``flip``, i.e. that channel's weights are
      negated (which negates ``s``) so the hardware still compares ``>=``.
    * ``gamma == 0``: constant ``sign(beta)``: ``t = -9*c_in`` (always +1) for ``beta >= 0``,
      ``t = 9*c_in + 1`` (always -1) for ``beta < 0``; no flip.

    Every ``t`` is then clamped to ``-9*c_in .. 9*c_in + 1``, which changes no output because
    ``|s| <= 9*c_in``; so ``t`` fits :func:`sum_bits` ``(c_in)`` bits. Unlike FPGA'17 (§6.2:
    ``T = round_away_from_zero(-h/k)``, off by one for negative non-integer thresholds, and
    ``k > 0`` assumed) this is exact for every sign: ``sigma`` is the float64 ``sqrt`` of the
    float64 sum ``var + eps`` (each correctly rounded, as numpy / PyTorch float64 compute it);
    everything else is exact rational arithmetic on the float64 values, so a tie ``y == 0``
    always gives ``+1``.

    Parameters
    ----------
    gamma, beta, mean, var : array_like of float, shape (c_out,)
        BN weight, bias, running mean and running variance (float32 inputs convert exactly).
    eps : float
        BN epsilon (PyTorch default ``1e-5``), ``>= 0`` with ``var + eps > 0``.
    bias : array_like of float, shape (c_out,), optional
        Conv bias (FPGA'17 removes it; default none).
    c_in : int
        Input channels of the layer (bounds the sums at ``9 * c_in``).

    Returns
    -------
    BatchNormFold
        ``t`` (int32 [c_out]) and ``flip`` (bool [c_out]).
    """
    c_in = check_int("c_in", c_in, 1, _MAX_C_IN)
    gamma = _check_float("gamma", gamma, "(c_out,)", ())
    if gamma.ndim != 1 or gamma.size < 1:
        raise ValueError(f"gamma must have shape (c_out,) with c_out >= 1, not {gamma.shape}")
    n = gamma.shape[0]
    args = {"beta": beta, "mean": mean, "var": var, "bias": np.zeros(n) if bias is None else bias}
    for name in args:
        args[name] = _check_float(name, args[name], f"(c_out,) = ({n},)", ())
        if args[name].shape != (n,):
            raise ValueError(f"{name} must have shape (c_out,) = ({n},) like gamma, not "
                             f"{args[name].shape}")
    beta, mean, var, bias = args["beta"], args["mean"], args["var"], args["bias"]
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (int, float, np.integer,
                                                                   np.floating)) \
            or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite float >= 0, not {eps!r}")
    denom = var + np.float64(eps)
    if np.any(denom <= 0):
        o = int(np.argmax(denom <= 0))
        raise ValueError(f"var + eps must be > 0 for every channel, found {float(denom[o])!r} at "
                         f"channel {o}")
    sigma = np.sqrt(denom)
    bound = _TAPS * c_in
    t = np.empty(n, dtype=np.int64)
    flip = np.zeros(n, dtype=bool)
    for o in range(n):
        g = Fraction(float(gamma[o]))
        if g == 0:
            t[o] = -bound if beta[o] >= 0 else bound + 1
            continue
        tau = (Fraction(float(mean[o])) - Fraction(float(bias[o]))
               - Fraction(float(beta[o])) * Fraction(float(sigma[o])) / g)
        if g > 0:
            thr = math.ceil(tau)
        else:
            thr, flip[o] = math.ceil(-tau), True
        t[o] = min(max(thr, -bound), bound + 1)
    return BatchNormFold(t.astype(np.int32), flip)


def negate_channels(a, flip) -> np.ndarray:
    """Negate the output channels selected by ``flip`` (folds a negative BN scale).

    Use it on ``w`` for full kernels and on ``v`` for separable ones: negating ``v`` (not ``u``)
    keeps the canonical ``u[0] = +1`` of :func:`sf_kernels`, so 5-bit storage still works.

    Parameters
    ----------
    a : array_like of int, +-1, shape (c_out, ...)
    flip : array_like of bool, shape (c_out,)

    Returns
    -------
    ndarray of int8, same shape as ``a``
    """
    a = _check_pm1("a", a, "(c_out, ...)")
    flip = np.asarray(flip)
    if flip.dtype != np.bool_:
        raise TypeError(f"flip must be a bool array, not {flip.dtype}")
    if flip.shape != a.shape[:1]:
        raise ValueError(f"flip must have shape (c_out,) = {a.shape[:1]}, not {flip.shape}")
    sign = np.where(flip, -1, 1).reshape(flip.shape + (1,) * (a.ndim - 1))
    return (a * sign).astype(np.int8)


def threshold(sums, t) -> np.ndarray:
    """Binarize integer sums per output channel: ``+1`` where ``sums >= t``, else ``-1``.

    Parameters
    ----------
    sums : array_like of int, shape (c_out, ...)
    t : array_like of int, shape (c_out,)
        int32 thresholds (see :func:`fold_batchnorm`).

    Returns
    -------
    ndarray of int8, +-1, same shape as ``sums``
    """
    sums = np.asarray(sums)
    if sums.dtype.kind not in "iu":
        raise TypeError(f"sums must be an integer array, not {sums.dtype}")
    if sums.ndim < 1:
        raise ValueError("sums must have a channel axis (shape (c_out, ...)), not a 0-d array")
    t = _check_t(t, sums.shape[0])
    t = t.reshape(t.shape + (1,) * (sums.ndim - 1))
    return np.where(sums.astype(np.int64) >= t, 1, -1).astype(np.int8)


def maxpool2x2(y) -> np.ndarray:
    """2x2 max-pool, stride 2, of +-1 maps (``-1`` only where all four inputs are ``-1``).

    With the packed encoding (bit 1 = +1) this is the OR of the four bits. Odd sizes floor:
    ``height // 2`` by ``width // 2`` outputs, the last row / column of an odd map is dropped
    (PyTorch ``MaxPool2d(2)``, ``ceil_mode=False``). Pooling after the threshold equals pooling
    the sums first, because ``s >= t`` is monotone in ``s`` (negative BN scales are folded into
    the weights, so this holds for every channel).

    Parameters
    ----------
    y : array_like of int, +-1, shape (c, height, width)
        ``height, width >= 2``.

    Returns
    -------
    ndarray of int8, shape (c, height // 2, width // 2)
    """
    y = _check_pm1("y", y, "(c, height, width)", 3)
    c, h, w = y.shape
    if h < 2 or w < 2:
        raise ValueError(f"y must be at least 2x2 to pool (shape (c, height, width)), "
                         f"not {y.shape}")
    y = y[:, :h // 2 * 2, :w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2)
    return y.max(axis=(2, 4)).astype(np.int8)


# --------------------------------------------------------------------------------------------
# the layer (verify schema)

def layer(x, *, w=None, u=None, v=None, t=None, kernel: str = "full", pad: int = 0,
          pool: bool = False, thresholds: bool = True) -> dict[str, np.ndarray]:
    """One binary conv layer, in the verify schema of the BCNN core.

    conv (full or separable) -> threshold ``sum >= t`` -> optional 2x2 max-pool; or the raw sums
    when ``thresholds`` is off.

    Parameters
    ----------
    x : array_like of int, +-1, shape (c_in, height, width)
    w : array_like of int, +-1, shape (c_out, c_in, 3, 3)
        ``kernel="full"`` only.
    u, v : array_like of int, +-1, shape (c_out, c_in, 3)
        ``kernel="separable"`` only; the kernel is ``outer(u, v)``.
    t : array_like of int, shape (c_out,)
        int32 thresholds; required with ``thresholds``, not allowed without.
    kernel : {"full", "separable"}
    pad : {0, 1}
        Zero padding or +1 padding.
    pool : bool
        2x2 max-pool of the binarized outputs (requires ``thresholds``).
    thresholds : bool
        Binarize (``y``); off gives the integer ``sums``.

    Returns
    -------
    dict
        ``{"y": int8 +-1 [c_out, H', W']}`` (``H' = height // 2``, ``W' = width // 2`` with
        ``pool``, else ``height``, ``width``), or ``{"sums": int32 [c_out, height, width]}`` when
        ``thresholds`` is off.
    """
    kernel = _check_choice("kernel", kernel, KERNELS)
    pad = _check_pad(pad)
    pool = check_bool("pool", pool)
    thresholds = check_bool("thresholds", thresholds)
    given = {"w": w is not None, "u": u is not None, "v": v is not None}
    need = ("w",) if kernel == "full" else ("u", "v")
    for name, present in given.items():
        if present != (name in need):
            raise ValueError(f"kernel={kernel!r} takes {' and '.join(need)} "
                             f"({'missing' if not present else 'unexpected'}: {name})")
    if thresholds != (t is not None):
        raise ValueError("t is required when thresholds is on" if thresholds
                         else "t must be None when thresholds is off (the output is the sums)")
    if pool and not thresholds:
        raise ValueError("pool needs thresholds: the max-pool acts on the binarized outputs")
    sums = conv_full(x, w, pad) if kernel == "full" else conv_separable(x, u, v, pad)
    if not thresholds:
        return {"sums": sums}
    y = threshold(sums, t)
    return {"y": maxpool2x2(y) if pool else y}


# --------------------------------------------------------------------------------------------
# channel packing

def pack_channels(x, word: int = 64) -> np.ndarray:
    """Pack +-1 values along the channel axis into words.

    Channel ``c`` is bit ``c % word`` of word ``c // word``; bit 1 means ``+1``, bit 0 ``-1``. The
    unused high bits of the last word (channels ``c_in .. n_words * word - 1``) are 0.

    Parameters
    ----------
    x : array_like of int, +-1, shape (c, ...)
    word : int
        Bits per word, 1..64.

    Returns
    -------
    ndarray of uint64, shape (ceil(c / word), ...)
    """
    word = check_int("word", word, 1, _MAX_WORD)
    x = _check_pm1("x", x, "(c, ...)")
    c, rest = x.shape[0], x.shape[1:]
    n = -(-c // word)
    bits = np.zeros((n * word,) + rest, dtype=np.uint64)
    bits[:c] = x == 1
    bits = bits.reshape((n, word) + rest)
    weights = np.left_shift(np.uint64(1), np.arange(word, dtype=np.uint64))
    weights = weights.reshape((1, word) + (1,) * len(rest))
    return (bits * weights).sum(axis=1, dtype=np.uint64)


def unpack_channels(words, c: int, word: int = 64) -> np.ndarray:
    """Inverse of :func:`pack_channels`.

    Parameters
    ----------
    words : array_like of int, shape (ceil(c / word), ...)
        Words in ``0 .. 2**word - 1`` (uint64 or any integer dtype). The bits of channels beyond
        ``c`` in the last word are ignored.
    c : int
        Number of channels, >= 1.
    word : int
        Bits per word, 1..64.

    Returns
    -------
    ndarray of int8, +-1, shape (c, ...)
    """
    word = check_int("word", word, 1, _MAX_WORD)
    c = check_int("c", c, 1, 2**31)
    p = np.asarray(words)
    if p.dtype.kind not in "iu":
        raise TypeError(f"words must be an integer array, not {p.dtype}")
    n = -(-c // word)
    if p.ndim < 1 or p.shape[0] != n:
        raise ValueError(f"words must have shape (ceil(c / word), ...) = ({n}, ...) for "
                         f"c = {c}, word = {word}, not {p.shape}")
    if p.size and (p.min() < 0 or (word < 64 and p.max() >= 1 << word)):
        bad = p.min() if p.min() < 0 else p.max()
        raise ValueError(f"words must be {word}-bit words in 0..{2**word - 1}, found {int(bad)}")
    p = p.astype(np.uint64)
    shifts = np.arange(word, dtype=np.uint64).reshape((1, word) + (1,) * (p.ndim - 1))
    bits = (p[:, None] >> shifts) & np.uint64(1)
    bits = bits.reshape((n * word,) + p.shape[1:])[:c]
    return np.where(bits == 1, 1, -1).astype(np.int8)


# --------------------------------------------------------------------------------------------
# separable factors (training side: float64, never seen by the hardware)

def binarize(a) -> np.ndarray:
    """``sign`` with ``sign(0) = +1`` (``-0.0`` too): ``+1`` where ``a >= 0``, else ``-1``.

    Parameters
    ----------
    a : array_like of float or int (finite)

    Returns
    -------
    ndarray of int8, same shape
    """
    a = _check_float("a", a, "(...)", ())
    return np.where(a >= 0, 1, -1).astype(np.int8)


def _svd_pairs(w: np.ndarray):
    """Canonical SVD of float64 [N, 3, 3]: (U [N,3,3], S [N,3], V [N,3,3]), W = U diag(S) V^T.

    Column 0 of U / V is the leading pair :func:`sf_svd` documents: for a repeated leading
    singular value, the normalised projection of the first standard basis vector e_i with a
    non-negligible projection onto the leading left singular subspace (the remaining columns of
    that subspace are rotated along with it, so every column stays a singular pair); for the zero
    matrix U = V = I; then the canonical sign.
    """
    n = w.shape[0]
    U, S, Vt = np.linalg.svd(w)
    V = np.swapaxes(Vt, -1, -2).copy()
    s1 = S[:, 0]
    mult = ((s1[:, None] - S) <= _SV_TOL * s1[:, None]).sum(axis=1)
    zero = s1 == 0
    for m in (2, 3):
        idx = np.nonzero((mult == m) & ~zero)[0]
        if not idx.size:
            continue
        Us, Vs = U[idx, :, :m], V[idx, :, :m]
        rn = np.linalg.norm(Us, axis=2)                     # |P e_i| for i = 0, 1, 2
        i = np.argmax(rn > _VEC_TOL, axis=1)                # first basis vector not orthogonal
        ar = np.arange(idx.size)
        c = Us[ar, i, :] / rn[ar, i][:, None]               # P e_i / |P e_i| in the Us basis
        # Householder reflection H (orthogonal) with H e_0 = c: a basis of the subspace led by c.
        d = -c
        d[:, 0] += 1.0
        dd = (d * d).sum(axis=1)
        scale = np.where(dd > 1e-30, 2.0 / np.where(dd > 1e-30, dd, 1.0), 0.0)
        H = np.eye(m) - scale[:, None, None] * d[:, :, None] * d[:, None, :]
        U[idx, :, :m] = Us @ H
        V[idx, :, :m] = Vs @ H
    U[zero] = np.eye(3)
    V[zero] = np.eye(3)
    u1 = U[:, :, 0]
    first = np.argmax(np.abs(u1) > _VEC_TOL, axis=1)
    sgn = np.where(u1[np.arange(n), first] < 0, -1.0, 1.0)
    U[:, :, 0] *= sgn[:, None]
    V[:, :, 0] *= sgn[:, None]
    return U, S, V


def _binarize_vec(a: np.ndarray) -> np.ndarray:
    return np.where(a >= -_VEC_TOL, 1, -1).astype(np.int8)


def sf_svd(w):
    """Leading singular triple of 3x3 matrices, with a deterministic (canonical) choice.

    ``w = sum_l sigma_l u_l v_l^T`` (float64 LAPACK SVD); returns ``(u_1, sigma_1, v_1)``, fixed
    so that it does not depend on LAPACK's arbitrary choices:

    * **Canonical sign.** ``(u, v)`` and ``(-u, -v)`` are both valid; the one whose first
      component of ``u`` above rounding noise (``|u_i| > 1e-9``) is positive is returned. Fixing
      the float vectors *before* ``sign`` matters: with a zero component, ``sign(-u)`` is not
      ``-sign(u)`` (``sign(0) = +1``). Consequence: ``sign(u)[0] = +1`` always (components
      ``<= 1e-9`` count as 0), which is what lets 5 bits store a separable kernel.
    * **Repeated leading singular value** (``sigma_1 - sigma_2 <= 1e-9 sigma_1``; 192 of the
      512 +-1 3x3 matrices have ``sigma = (2, 2, 1)``): every unit vector of the leading left
      singular subspace is a valid ``u_1``. Returned: ``u = P e_i / |P e_i|`` with ``P`` the
      projector onto that subspace and ``e_i`` the first standard basis vector with
      ``|P e_i| > 1e-9``, and ``v = w^T u / sigma_1``. ``P`` is unique, so the choice is too.
    * The zero matrix gives ``u = v = e_0``, ``sigma = 0``.

    Parameters
    ----------
    w : array_like of float, shape (..., 3, 3)

    Returns
    -------
    u : ndarray of float64, shape (..., 3)
    sigma : ndarray of float64, shape (...)
    v : ndarray of float64, shape (..., 3)
    """
    w = _check_float("w", w, "(..., 3, 3)", (3, 3))
    lead = w.shape[:-2]
    U, S, V = _svd_pairs(w.reshape(-1, 3, 3))
    return (U[:, :, 0].reshape(lead + (3,)), S[:, 0].reshape(lead),
            V[:, :, 0].reshape(lead + (3,)))


def sf_kernels(k, svd_of: str = "sign") -> tuple[np.ndarray, np.ndarray]:
    """Binarized separable factors of real 3x3 kernels (§5.1 forward).

    ``W = sign(k)`` (``sign(0) = +1``) for ``svd_of="sign"``, else ``W = k``; ``(u, sigma, v) =``
    :func:`sf_svd` ``(W)`` (float64, canonical sign, deterministic for repeated singular values);
    ``u_b = sign(u)``, ``v_b = sign(v)`` (components within ``1e-9`` of 0 count as 0, giving +1).
    ``sigma_1`` is dropped (batch norm and ``sign`` follow). The binary kernel is
    ``outer(u_b, v_b)``; ``u_b[0] = +1`` always (canonical sign), so ``(u_b[1:], v_b)`` -- 5 bits
    -- store it. An exactly rank-1 sign pattern ``outer(a, b)`` comes back as
    ``(a[0] * a, a[0] * b)``.

    Parameters
    ----------
    k : array_like of float, shape (..., 3, 3)
        Real-valued kernels, typically OIHW ``(c_out, c_in, 3, 3)``.
    svd_of : {"sign", "real"}
        Decompose ``sign(k)`` (default, §5.1) or ``k`` itself (§5.5 leaves this open).

    Returns
    -------
    u, v : ndarray of int8, +-1, shape (..., 3)
    """
    svd_of = _check_choice("svd_of", svd_of, SVD_OF)
    k = _check_float("k", k, "(..., 3, 3)", (3, 3))
    w = binarize(k).astype(np.float64) if svd_of == "sign" else k
    u, _, v = sf_svd(w)
    return _binarize_vec(u), _binarize_vec(v)


def sf_gradient(w, grad_u, grad_v, eps: float = 0.0) -> np.ndarray:
    """Closed-form gradient through the leading singular vectors of 3x3 matrices (§5.1).

    For ``L(w)`` depending on ``w`` through ``u_1, v_1`` of :func:`sf_svd`, returns
    ``dL/dw = sum_k grad_u[k] du_1[k]/dw + grad_v[k] dv_1[k]/dw`` with the SVD Jacobian of the
    paper (Papadopoulo & Lourakis), for ``l = 2, 3``::

        du_1/dW_ij = sum_l u_l (sigma_1 U_il V_j1 + sigma_l U_i1 V_jl) / (sigma_1^2 - sigma_l^2)
        dv_1/dW_ij = sum_l v_l (sigma_l U_il V_j1 + sigma_1 U_i1 V_jl) / (sigma_1^2 - sigma_l^2)

    i.e. ``dL/dw = sum_l (sigma_1 a_l + sigma_l b_l) u_l v_1^T + (sigma_l a_l + sigma_1 b_l)
    u_1 v_l^T`` with ``a_l = grad_u . u_l / D_l``, ``b_l = grad_v . v_l / D_l``,
    ``D_l = sigma_1^2 - sigma_l^2 + eps``. The canonical sign of :func:`sf_svd` is locally
    constant, so this is the gradient of the canonical vectors.

    Parameters
    ----------
    w : array_like of float, shape (..., 3, 3)
        Matrices at which to differentiate (``sign(W_r)`` in the paper's training).
    grad_u, grad_v : array_like of float, shape (..., 3)
        Upstream gradients ``dL/du_1``, ``dL/dv_1``.
    eps : float
        Added to every denominator ``sigma_1^2 - sigma_l^2``. With ``eps = 0`` (default) a repeated
        leading singular value -- where the Jacobian does not exist -- raises ``ValueError``; the
        paper's regularisation is unknown (§5.1), ``eps > 0`` is the usual fix.

    Returns
    -------
    ndarray of float64, shape (..., 3, 3)
    """
    w = _check_float("w", w, "(..., 3, 3)", (3, 3))
    lead = w.shape[:-2]
    gu = _check_float("grad_u", grad_u, f"{lead + (3,)}", (3,))
    gv = _check_float("grad_v", grad_v, f"{lead + (3,)}", (3,))
    for name, g in (("grad_u", gu), ("grad_v", gv)):
        if g.shape != lead + (3,):
            raise ValueError(f"{name} must have shape w.shape[:-2] + (3,) = {lead + (3,)}, "
                             f"not {g.shape}")
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (int, float, np.integer,
                                                                   np.floating)) \
            or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite float >= 0, not {eps!r}")
    U, S, V = _svd_pairs(w.reshape(-1, 3, 3))
    gu, gv = gu.reshape(-1, 3), gv.reshape(-1, 3)
    s1, sl = S[:, :1], S[:, 1:]                               # [N, 1], [N, 2]
    if eps == 0:
        degenerate = (S[:, 0] - S[:, 1] <= _SV_TOL * S[:, 0])
        if degenerate.any():
            j = int(np.argmax(degenerate))
            where = tuple(int(i) for i in np.unravel_index(j, lead)) if lead else ()
            raise ValueError(
                f"w has a repeated leading singular value (sigma = {S[j].round(12).tolist()}) "
                f"at index {where}: the SVD gradient does not exist there; pass eps > 0")
    D = s1 ** 2 - sl ** 2 + eps
    u1, v1 = U[:, :, 0], V[:, :, 0]
    ul, vl = U[:, :, 1:], V[:, :, 1:]                         # [N, 3, 2]
    a = np.einsum("nk,nkl->nl", gu, ul) / D
    b = np.einsum("nk,nkl->nl", gv, vl) / D
    cu = s1 * a + sl * b                                      # coefficient of u_l v_1^T
    cv = sl * a + s1 * b                                      # coefficient of u_1 v_l^T
    g = (np.einsum("nl,nil,nj->nij", cu, ul, v1) + np.einsum("nl,ni,njl->nij", cv, u1, vl))
    return g.reshape(lead + (3, 3))


def sf_backward(k, grad_kernel, svd_of: str = "sign", eps: float = 0.0) -> np.ndarray:
    """Training backward pass of :func:`sf_kernels`: ``dL/dK`` -> ``dL/dk``.

    Straight-through estimators around the closed-form SVD gradient (§5.1):
    ``dL/du = G v_b`` and ``dL/dv = G^T u_b`` (``G = dL/dK``; the ``|.| <= 1`` gate always passes
    for unit vectors), then :func:`sf_gradient` at ``W``; for ``svd_of="sign"`` the STE of
    ``W = sign(k)`` passes that gradient where ``|k| <= 1`` and zeroes it elsewhere.

    Parameters
    ----------
    k : array_like of float, shape (..., 3, 3)
        Real-valued kernels.
    grad_kernel : array_like of float, shape (..., 3, 3)
        ``dL/dK`` for the binary kernels ``K = outer(u_b, v_b)``.
    svd_of : {"sign", "real"}
    eps : float
        See :func:`sf_gradient`.

    Returns
    -------
    ndarray of float64, shape (..., 3, 3)
    """
    svd_of = _check_choice("svd_of", svd_of, SVD_OF)
    k = _check_float("k", k, "(..., 3, 3)", (3, 3))
    g = _check_float("grad_kernel", grad_kernel, f"{k.shape}", (3, 3))
    if g.shape != k.shape:
        raise ValueError(f"grad_kernel must have the shape of k, {k.shape}, not {g.shape}")
    w = binarize(k).astype(np.float64) if svd_of == "sign" else k
    u, _, v = sf_svd(w)
    ub, vb = _binarize_vec(u).astype(np.float64), _binarize_vec(v).astype(np.float64)
    gu = np.einsum("...ij,...j->...i", g, vb)
    gv = np.einsum("...ij,...i->...j", g, ub)
    gw = sf_gradient(w, gu, gv, eps)
    return gw * (np.abs(k) <= 1) if svd_of == "sign" else gw
