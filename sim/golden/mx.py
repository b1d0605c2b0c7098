"""Bit-exact golden model of OCP MX blocks: FP32 <-> MX conversion, packing and dot products.

Numeric contract: ``MX_SPEC.md`` §1-§7 and the frozen decisions of §11. Summary:

* **Scale** (§4, §11): exact, from the FP32 exponent *field* of the block's largest magnitude,
  ``code = max(Efield_max - emax_elem, 0)`` (``s = code - 127``; FP32 subnormals have field 0, so a
  block whose maximum is subnormal gets code 0 = 2**-127). NaN or +-Inf anywhere in a block:
  scale ``0xFF`` and all element codes 0. All-zero block (+0 / -0 only): scale 0, codes 0.
* **Elements**: ``V / 2**s`` rounded once (named mode, see :data:`ROUNDING_MODES`) to the element
  grid with subnormals, saturating at +-max; FP zero keeps its sign; INT8 never emits 0x80.
* **Decode**: ``X * P`` exactly in FP32 (always representable, subnormals included); a product
  beyond the FP32 range is +-Inf; every NaN is the canonical ``0x7FC00000``.
* **Packing** (§7, §11): elements LSB-first, element i at bits ``[w*i+w-1 : w*i]`` of the block
  word, the block word stored as little-endian bytes; the scale travels separately.
* **Dot** (§6, §11): exact integer block sums; modes ``"exact"`` (one wide accumulator, one RNE
  rounding to FP32) and ``"fp32"`` (each block sum rounded RNE, then FP32 adds in block order).

Integer arithmetic only (numpy int64, Python ints where wider); formats come from
:mod:`hdl.formats`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from hdl.formats import MX_FORMAT_SETS, MXFormat, MXFormatSet, mx_format

from .elements import (
    ROUNDING_MODES,
    bit_length,
    check_codes,
    check_rounding,
    decode_elements,
    decode_parts,
    element_format,
    encode_elements,
    lsb_exponent,
    round_shift_right,
)

__all__ = [
    "FP32_NAN",
    "ROUNDING_MODES",
    "BlockDot",
    "MXArray",
    "block_dot_exact",
    "block_dot_selected",
    "decode_elements",
    "dequantize",
    "dequantize_bits",
    "dequantize_blocks",
    "dot",
    "dot_selected",
    "pack",
    "quantize",
    "quantize_blocks",
    "round_to_fp32",
    "unpack",
]

# IEEE-754 binary32 layout (not an MX format, so it is not in hdl.formats).
_F32_MBITS = 23
_F32_BIAS = 127
_F32_EMIN = 1 - _F32_BIAS                       # -126
_F32_LSB_MIN = _F32_EMIN - _F32_MBITS           # -149: weight of the smallest subnormal
_F32_INF = 0x7F800000
_F32_SIGN = 0x80000000
_F32_ABS = 0x7FFFFFFF
#: Canonical quiet NaN bit pattern produced by every decoder and dot product.
FP32_NAN = 0x7FC00000

_MAX_BLOCK = 1024
_DOT_MODES = ("exact", "fp32")


# --------------------------------------------------------------------------------------------
# argument checks

def _check_block_size(block_size: object) -> int:
    if (isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer))
            or not 1 <= block_size <= _MAX_BLOCK or block_size & (block_size - 1)):
        raise ValueError(
            f"block_size must be a power of two in 1..{_MAX_BLOCK}, not {block_size!r}")
    return int(block_size)


def _check_scales(scales, name: str = "scales") -> np.ndarray:
    scales = np.asarray(scales)
    if scales.dtype.kind not in "ui":
        raise TypeError(f"{name} must be an integer array of E8M0 codes, not {scales.dtype}")
    if scales.size and (scales.min() < 0 or scales.max() > 255):
        bad = scales.min() if scales.min() < 0 else scales.max()
        raise ValueError(f"{name} must be E8M0 codes in 0..255, found {int(bad)}")
    return scales.astype(np.int64)


# --------------------------------------------------------------------------------------------
# FP32 bit helpers

def _fp32_parts(bits: np.ndarray):
    """FP32 bit patterns -> (sign, sig, exp, mag) with |value| = sig * 2**exp exactly."""
    bits = bits.astype(np.int64)
    mag = bits & _F32_ABS
    e = mag >> _F32_MBITS
    m = mag & ((1 << _F32_MBITS) - 1)
    sig = np.where(e > 0, m | (1 << _F32_MBITS), m)
    exp = np.maximum(e, 1) - (_F32_BIAS + _F32_MBITS)     # = max(E,1) - 150
    return (bits >> 31) == 1, sig, exp, mag


def _fp32_bits(sign, sig, exp) -> np.ndarray:
    """Exact values ``(-1)**sign * sig * 2**exp`` -> FP32 bit patterns, RNE, overflow -> +-Inf.

    ``sig`` non-negative int64 below 2**53. Used by the decoder, where the result is always exact
    (<= 8 significant bits, LSB >= 2**-143) unless it overflows.
    """
    sig = np.asarray(sig, dtype=np.int64)
    exp = np.asarray(exp, dtype=np.int64)
    lead = bit_length(sig) - 1 + exp
    over = lead > _F32_BIAS                     # >= 2**128: Inf whatever the rounding
    lsb = np.maximum(np.minimum(lead, _F32_BIAS) - _F32_MBITS, _F32_LSB_MIN)
    shift = lsb - exp
    q = np.where(shift >= 0, round_shift_right(sig, np.maximum(shift, 0), "even"),
                 sig << np.clip(-shift, 0, 62))
    # Unified encoding: field*2**23 + mantissa == ((lsb + 149) << 23) + q for q in [0, 2**24],
    # including subnormals (lsb == -149, q < 2**23) and the rounding carry (q == 2**24).
    mag = np.where(sig > 0, ((lsb - _F32_LSB_MIN) << _F32_MBITS) + q, 0)
    mag = np.where(over, _F32_INF, np.minimum(mag, _F32_INF))   # RNE carry past FLT_MAX -> Inf
    return (mag | (np.asarray(sign).astype(np.int64) << 31)).astype(np.uint32)


def round_to_fp32(numerator: int, exponent: int) -> int:
    """Round the exact rational ``numerator * 2**exponent`` to FP32, ties to even (RNE).

    Parameters
    ----------
    numerator : int
        Any Python int (arbitrary size, signed).
    exponent : int

    Returns
    -------
    int
        FP32 bit pattern (0 .. 2**32-1). Zero gives +0.0 (``0``); a nonzero value that rounds to
        zero keeps its sign (-0.0 is ``0x80000000``); overflow (>= 2**128 - 2**103 in magnitude)
        gives +-Inf.
    """
    numerator, exponent = operator.index(numerator), operator.index(exponent)
    if numerator == 0:
        return 0
    sign = _F32_SIGN if numerator < 0 else 0
    n = abs(numerator)
    lsb = max(exponent + n.bit_length() - 1 - _F32_MBITS, _F32_LSB_MIN)
    shift = lsb - exponent
    if shift <= 0:
        q = n << -shift
    else:
        q, rem = n >> shift, n & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        q += rem > half or (rem == half and q & 1)          # RNE
    mag = ((lsb - _F32_LSB_MIN) << _F32_MBITS) + q           # carry into the exponent field
    return sign | min(mag, _F32_INF)


# --------------------------------------------------------------------------------------------
# block-level quantize / dequantize

def quantize_blocks(bits_u32, fmt, rounding: str = "even", flush_subnormals: bool = False):
    """Quantize FP32 blocks (one block per row) to MX scale and element codes.

    Parameters
    ----------
    bits_u32 : ndarray of uint32, shape (..., block_size)
        FP32 bit patterns; the last axis is the block (``block_size`` a power of two, 1..1024).
    fmt : str or MXFormat
        MX format, e.g. ``"mxfp8_e4m3"``.
    rounding : {"even", "nearest", "floor"}
        Element rounding: ties to even, ties away from zero, toward zero.
    flush_subnormals : bool
        Turn FP32 subnormal inputs into (signed) zeros before anything else.

    Returns
    -------
    scales : ndarray of uint8, shape (...)
        E8M0 scale codes.
    codes : ndarray of uint8, shape (..., block_size)
        Element codes, LSB-aligned.
    """
    fmt = mx_format(fmt)
    check_rounding(rounding)
    if not isinstance(flush_subnormals, (bool, np.bool_)):
        raise TypeError(f"flush_subnormals must be a bool, not {flush_subnormals!r}")
    bits = np.asarray(bits_u32)
    if bits.dtype != np.uint32:
        raise TypeError(
            f"bits_u32 must be a uint32 array of FP32 bit patterns, not {bits.dtype} "
            "(use x.view(np.uint32) on a float32 array)")
    if bits.ndim < 1:
        raise ValueError(
            "bits_u32 must have a block axis (shape (..., block_size)), not a 0-d array")
    _check_block_size(bits.shape[-1])
    elem, scale = fmt.element, fmt.scale

    sign, sig, exp, mag = _fp32_parts(bits)
    if flush_subnormals:
        sub = mag < (1 << _F32_MBITS)
        sig, mag = np.where(sub, 0, sig), np.where(sub, 0, mag)
    bad = np.any(mag >= _F32_INF, axis=-1)                 # NaN or +-Inf in the block
    amax = mag.max(axis=-1)                                # magnitude order == bit-pattern order
    zero = amax == 0
    # s = floor(log2 amax) - emax, clamped at the E8M0 minimum. For a normal amax the exponent
    # field E gives floor(log2 amax) = E - 127 exactly; a subnormal amax (E = 0) is below 2**-126,
    # so s < -127 - emax <= -127 and the clamp gives -127 -- the same as using E = 0.
    s = np.maximum((amax >> _F32_MBITS) - _F32_BIAS - elem.emax, scale.min_exp)
    s = np.where(bad, 0, s)
    assert s.size == 0 or s.max() <= scale.max_exp      # E <= 254 for finite values
    # Scaled element exponent: value / 2**s = sig * 2**(exp - s). The element's LSB exponent L is
    # te - mbits >= t - mbits (FP) with t = bit_length(sig) - 1 + exp - s, so the right shift
    # L - (exp - s) >= bit_length(sig) - 1 - mbits >= 23 - mbits > 0 for normal inputs; for
    # subnormal inputs exp = -149 and s >= -127 give shift >= emin - mbits + 22 >= 6 (E5M2).
    # INT8: L = -6 and s >= E_max - 127 >= E - 127 give shift = -6 - (E - 150) + s >= 17 (a
    # subnormal input, exp = -149, gives >= 16). So the quantizer only ever shifts right: one
    # rounding, never an exact left shift (encode_elements still handles those for other callers).
    exp_scaled = exp - s[..., None]
    codes = encode_elements(sign, sig, exp_scaled, elem, rounding)
    codes = np.where((bad | zero)[..., None], np.uint8(0), codes)
    scales = np.where(bad, scale.nan_code, s + scale.bias).astype(np.uint8)
    return scales, codes


def dequantize_blocks(scales, codes, fmt) -> np.ndarray:
    """Decode MX blocks to FP32 bit patterns.

    Parameters
    ----------
    scales : array_like of int, shape (...)
        E8M0 codes 0..255 (``c`` means ``2**(c-127)``, 255 is NaN).
    codes : array_like of int, shape (..., block_size)
        Element codes of ``fmt``.
    fmt : str or MXFormat

    Returns
    -------
    ndarray of uint32, shape (..., block_size)
        ``X * P`` exactly; +-Inf where the product exceeds the FP32 range; E5M2 Inf elements give
        +-Inf; NaN scale or NaN element gives the canonical NaN ``0x7FC00000``.
    """
    fmt = mx_format(fmt)
    scales = _check_scales(scales)
    codes = np.asarray(codes)
    if codes.shape[:-1] != scales.shape or codes.ndim < 1:
        raise ValueError(
            f"codes must have shape scales.shape + (block_size,) = {scales.shape} + (n,), "
            f"not {codes.shape}")
    elem = fmt.element
    sign, mag, is_nan, is_inf = decode_parts(codes, elem)
    s = scales - fmt.scale.bias
    out = _fp32_bits(sign, mag, lsb_exponent(elem) + s[..., None])
    out = np.where(is_inf, (sign.astype(np.int64) << 31) | _F32_INF, out)
    nan = is_nan | (scales == fmt.scale.nan_code)[..., None]
    return np.where(nan, FP32_NAN, out).astype(np.uint32)


# --------------------------------------------------------------------------------------------
# tensor-level API

@dataclass(frozen=True, eq=False)
class MXArray:
    """A tensor quantized to an MX format along one axis.

    Attributes
    ----------
    scales : ndarray of uint8
        One E8M0 code per block; shape = ``shape`` with ``shape[axis]`` replaced by the number of
        blocks ``ceil(shape[axis] / block_size)``.
    codes : ndarray of uint8
        Element codes, LSB-aligned; shape = ``shape`` with ``shape[axis]`` padded up to
        ``n_blocks * block_size`` (the padding encodes +0).
    fmt : MXFormat
    block_size : int
    axis : int
        Blocked axis, non-negative.
    shape : tuple of int
        Shape of the original (unpadded) tensor.
    rounding : str
        Rounding mode used by :func:`quantize` (informational).
    """

    scales: np.ndarray
    codes: np.ndarray
    fmt: MXFormat
    block_size: int
    axis: int
    shape: tuple
    rounding: str = "even"

    def __post_init__(self):
        if not isinstance(self.fmt, MXFormat):
            object.__setattr__(self, "fmt", mx_format(self.fmt))
        _check_block_size(self.block_size)
        check_rounding(self.rounding)
        shape = tuple(int(n) for n in self.shape)
        object.__setattr__(self, "shape", shape)
        if not (isinstance(self.axis, (int, np.integer)) and 0 <= self.axis < len(shape)):
            raise ValueError(f"axis must be in 0..{len(shape) - 1} for shape {shape}, "
                             f"not {self.axis!r}")
        n_blocks = -(-shape[self.axis] // self.block_size)
        want_s = shape[:self.axis] + (n_blocks,) + shape[self.axis + 1:]
        want_c = shape[:self.axis] + (n_blocks * self.block_size,) + shape[self.axis + 1:]
        for name, want in (("scales", want_s), ("codes", want_c)):
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.shape != want:
                got = (arr.dtype, arr.shape) if isinstance(arr, np.ndarray) else type(arr).__name__
                raise ValueError(f"{name} must be a uint8 array of shape {want}, not {got}")

    @property
    def n_blocks(self) -> int:
        """Number of blocks along ``axis``."""
        return self.scales.shape[self.axis]


def _check_axis(axis: object, ndim: int) -> int:
    if (isinstance(axis, bool) or not isinstance(axis, (int, np.integer))
            or not -ndim <= axis < ndim):
        raise ValueError(f"axis must be an int in {-ndim}..{ndim - 1} for a {ndim}-d x, "
                         f"not {axis!r}")
    return int(axis) % ndim


def quantize(x, fmt, block_size: int = 32, axis: int = -1, rounding: str = "even",
             flush_subnormals: bool = False) -> MXArray:
    """Quantize a float32 tensor to an MX format (MX_SPEC §4, §11).

    Parameters
    ----------
    x : array_like of float32
        Input tensor (at least 1-d). float16 is accepted (it converts to float32 exactly); any other
        dtype, float64 and Python floats included, raises ``TypeError`` because casting it to
        float32 would be a second, hidden rounding: cast explicitly with ``np.float32`` first.
    fmt : str or MXFormat
        ``"mxfp8_e5m2"``, ``"mxfp8_e4m3"``, ``"mxfp6_e3m2"``, ``"mxfp6_e2m3"``, ``"mxfp4_e2m1"``,
        ``"mxint8"`` or an :class:`~hdl.formats.MXFormat`.
    block_size : int
        Elements per block, a power of two in 1..1024 (OCP: 32).
    axis : int
        Axis along which blocks are formed. A partial last block is zero-padded.
    rounding : {"even", "nearest", "floor"}
        Element rounding: ties to even (RNE), ties away from zero, toward zero.
    flush_subnormals : bool
        Turn FP32 subnormal inputs into signed zeros first.

    Returns
    -------
    MXArray

    Raises
    ------
    TypeError
        Bad dtype of ``x`` or type of ``flush_subnormals``.
    ValueError
        Unknown format or rounding, bad ``block_size`` or ``axis``.
    """
    fmt = mx_format(fmt)
    block_size = _check_block_size(block_size)
    check_rounding(rounding)
    arr = np.asarray(x)
    if arr.dtype.kind == "f" and arr.dtype.itemsize in (2, 4):
        arr = arr.astype(np.float32)                        # float16 or byte-swapped: exact
    if arr.dtype != np.float32:
        raise TypeError(
            f"x must be float32 (or float16, which converts exactly), not {arr.dtype}; "
            "cast explicitly, e.g. np.asarray(x, dtype=np.float32)")
    if arr.ndim == 0:
        raise ValueError("x must have at least one dimension, not a 0-d array")
    axis = _check_axis(axis, arr.ndim)
    moved = np.moveaxis(arr, axis, -1)
    n = moved.shape[-1]
    n_blocks = -(-n // block_size)
    pad = n_blocks * block_size - n
    bits = np.ascontiguousarray(moved).view(np.uint32)
    if pad:
        bits = np.concatenate(
            [bits, np.zeros(moved.shape[:-1] + (pad,), dtype=np.uint32)], axis=-1)
    blocks = bits.reshape(moved.shape[:-1] + (n_blocks, block_size))
    scales, codes = quantize_blocks(blocks, fmt, rounding, flush_subnormals)
    codes = codes.reshape(moved.shape[:-1] + (n_blocks * block_size,))
    return MXArray(
        scales=np.ascontiguousarray(np.moveaxis(scales, -1, axis)),
        codes=np.ascontiguousarray(np.moveaxis(codes, -1, axis)),
        fmt=fmt, block_size=block_size, axis=axis, shape=arr.shape, rounding=rounding)


def dequantize_bits(q: MXArray) -> np.ndarray:
    """Bit-level :func:`dequantize`: FP32 bit patterns (uint32) of the original shape."""
    if not isinstance(q, MXArray):
        raise TypeError(f"q must be an MXArray, not {type(q).__name__}")
    codes = np.moveaxis(q.codes, q.axis, -1)
    scales = np.moveaxis(q.scales, q.axis, -1)
    blocks = codes.reshape(codes.shape[:-1] + (scales.shape[-1], q.block_size))
    bits = dequantize_blocks(scales, blocks, q.fmt).reshape(codes.shape)
    bits = bits[..., :q.shape[q.axis]]
    return np.ascontiguousarray(np.moveaxis(bits, -1, q.axis))


def dequantize(q: MXArray) -> np.ndarray:
    """Decode an :class:`MXArray` to float32 of the original shape (padding dropped).

    Every value is ``X * P`` exactly (always representable in FP32, subnormals included), except
    that a product beyond the FP32 range becomes +-Inf. A NaN scale makes its whole block NaN;
    NaN elements give NaN, E5M2 Inf elements +-Inf; every NaN is the bit pattern ``0x7FC00000``.
    INT8 code 0x80 decodes to -2.0 * X. See :func:`dequantize_bits` for the bit patterns.
    """
    return dequantize_bits(q).view(np.float32)


# --------------------------------------------------------------------------------------------
# packing (§7, §11)

def _packed_bytes(block_size: int, width: int) -> int:
    return -(-block_size * width // 8)


def pack(codes, elem) -> np.ndarray:
    """Pack element codes of each block into bytes, LSB-first.

    Element i occupies bits ``[w*i+w-1 : w*i]`` of the block word (``w = elem.width``), and the
    block word is stored as little-endian bytes; unused high bits of the last byte are 0.

    Parameters
    ----------
    codes : array_like of int, shape (..., block_size)
    elem : ElementFormat, MXFormat or str

    Returns
    -------
    ndarray of uint8, shape (..., ceil(block_size * w / 8))
    """
    elem = element_format(elem)
    c = check_codes(codes, elem)
    if c.ndim < 1:
        raise ValueError("codes must have a block axis (shape (..., block_size)), not a 0-d array")
    bs = c.shape[-1]
    w = elem.width
    bits = ((c[..., None] >> np.arange(w)) & 1).astype(np.uint8)      # (..., bs, w), LSB first
    bits = bits.reshape(c.shape[:-1] + (bs * w,))
    nbytes = _packed_bytes(bs, w)
    pad = nbytes * 8 - bs * w
    if pad:
        bits = np.concatenate([bits, np.zeros(c.shape[:-1] + (pad,), dtype=np.uint8)], axis=-1)
    return np.packbits(bits, axis=-1, bitorder="little")


def unpack(packed, elem, block_size: int) -> np.ndarray:
    """Inverse of :func:`pack`.

    Parameters
    ----------
    packed : array_like of uint8, shape (..., ceil(block_size * w / 8))
    elem : ElementFormat, MXFormat or str
    block_size : int
        Elements per block (power of two, 1..1024). Bits beyond ``block_size * w`` are ignored.

    Returns
    -------
    ndarray of uint8, shape (..., block_size)
    """
    elem = element_format(elem)
    block_size = _check_block_size(block_size)
    p = np.asarray(packed)
    if p.dtype != np.uint8:
        raise TypeError(f"packed must be a uint8 array, not {p.dtype}")
    w = elem.width
    nbytes = _packed_bytes(block_size, w)
    if p.ndim < 1 or p.shape[-1] != nbytes:
        raise ValueError(f"packed must have last axis {nbytes} bytes for {block_size} "
                         f"{elem.name} elements, not shape {p.shape}")
    bits = np.unpackbits(p, axis=-1, bitorder="little")[..., :block_size * w]
    bits = bits.reshape(p.shape[:-1] + (block_size, w)).astype(np.uint16)
    return (bits << np.arange(w, dtype=np.uint16)).sum(axis=-1).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# dot products (§6, §11)

class BlockDot(NamedTuple):
    """Exact dot product of MX block pairs.

    The value of block pair ``j`` is ``total[j] * 2**(exponent[j] + lsb_exp)``, i.e. ``total`` is
    the integer sum of element products in units of ``a_lsb * b_lsb`` (``lsb_exp = log2(a_lsb *
    b_lsb)``) and ``exponent = s_a + s_b`` (unbiased scale exponents). Where ``is_nan`` is set,
    ``total`` and ``exponent`` are 0.
    """

    total: np.ndarray       # object array of Python int
    exponent: np.ndarray    # int64
    is_nan: np.ndarray      # bool
    lsb_exp: int


def _check_dot_operands(a_scales, a_codes, b_scales, b_codes, a_fmt, b_fmt):
    a_fmt, b_fmt = mx_format(a_fmt), mx_format(b_fmt)
    a_s, b_s = _check_scales(a_scales, "a_scales"), _check_scales(b_scales, "b_scales")
    a_c, b_c = np.asarray(a_codes), np.asarray(b_codes)
    if a_s.shape != b_s.shape:
        raise ValueError(f"a_scales and b_scales must have the same shape, not {a_s.shape} "
                         f"and {b_s.shape}")
    for name, c in (("a_codes", a_c), ("b_codes", b_c)):
        if c.ndim != a_s.ndim + 1 or c.shape[:-1] != a_s.shape:
            raise ValueError(f"{name} must have shape scales.shape + (block_size,) = "
                             f"{a_s.shape} + (n,), not {c.shape}")
    if a_c.shape != b_c.shape:
        raise ValueError(f"a_codes and b_codes must have the same shape, not {a_c.shape} "
                         f"and {b_c.shape}")
    _check_block_size(a_c.shape[-1])
    return a_s, a_c, b_s, b_c, a_fmt, b_fmt


def block_dot_exact(a_scales, a_codes, b_scales, b_codes, a_fmt, b_fmt) -> BlockDot:
    """Exact dot product of each pair of MX blocks (MX_SPEC §6: ``X_A X_B sum P_A P_B``).

    Parameters
    ----------
    a_scales, b_scales : array_like of int, shape (...)
        E8M0 codes.
    a_codes, b_codes : array_like of int, shape (..., block_size)
        Element codes of ``a_fmt`` / ``b_fmt``.
    a_fmt, b_fmt : str or MXFormat

    Returns
    -------
    BlockDot
        ``total`` (exact integer sums, object array of Python ints, shape (...)), ``exponent``
        (``s_a + s_b``), ``is_nan``, ``lsb_exp``. A block pair is NaN when either scale is 0xFF or
        any element of either block is NaN **or Inf** (E5M2): non-finite elements poison the
        block; no Inf arithmetic is modelled (our quantizer never emits Inf elements).
    """
    a_s, a_c, b_s, b_c, a_fmt, b_fmt = _check_dot_operands(
        a_scales, a_codes, b_scales, b_codes, a_fmt, b_fmt)
    a_sign, a_mag, a_nan, a_inf = decode_parts(a_c, a_fmt.element)
    b_sign, b_mag, b_nan, b_inf = decode_parts(b_c, b_fmt.element)
    a_val = np.where(a_sign, -a_mag, a_mag)
    b_val = np.where(b_sign, -b_mag, b_mag)
    # |a| < 2**32 and |b| < 2**32 (E5M2 is the widest, 32 bits): split b into 16-bit limbs,
    # b = hi * 2**16 + lo with 0 <= lo < 2**16, so each partial product is < 2**48 and a block sum
    # of <= 1024 of them < 2**58 fits int64; the limbs are recombined in Python ints.
    lo, hi = b_val & 0xFFFF, b_val >> 16
    s_lo = (a_val * lo).sum(axis=-1)
    s_hi = (a_val * hi).sum(axis=-1)
    total = s_lo.astype(object) + s_hi.astype(object) * (1 << 16)
    is_nan = ((a_s == a_fmt.scale.nan_code) | (b_s == b_fmt.scale.nan_code)
              | np.any(a_nan | a_inf | b_nan | b_inf, axis=-1))
    exponent = np.where(is_nan, 0, (a_s - a_fmt.scale.bias) + (b_s - b_fmt.scale.bias))
    total = np.where(is_nan, 0, total).astype(object)     # Python ints
    return BlockDot(total, exponent.astype(np.int64), is_nan,
                    lsb_exponent(a_fmt.element) + lsb_exponent(b_fmt.element))


def dot(a_scales, a_codes, b_scales, b_codes, a_fmt, b_fmt,
        mode: str = "exact") -> np.ndarray:
    """Dot product of MX vectors (``DotGeneral``, MX_SPEC §6, §11), one FP32 result per group.

    Parameters
    ----------
    a_scales, b_scales : array_like of int, shape (groups, blocks)
        E8M0 codes (any leading shape is allowed; the last axis is summed).
    a_codes, b_codes : array_like of int, shape (groups, blocks, block_size)
    a_fmt, b_fmt : str or MXFormat
    mode : {"exact", "fp32"}
        ``"exact"``: one wide exact accumulator over all blocks of a group, one RNE rounding to FP32
        at the end (overflow -> +-Inf, underflow -> subnormal / signed zero, exact zero -> +0.0).
        ``"fp32"``: every block sum rounded RNE to FP32, then added in block order into an FP32
        accumulator that starts at +0.0, with RNE after every addition.

    Returns
    -------
    ndarray of uint32, shape (groups,)
        FP32 bit patterns. Any NaN scale or NaN/Inf element in a group (see
        :func:`block_dot_exact`), and in mode ``"fp32"`` also Inf - Inf, gives ``0x7FC00000``.
    """
    _check_mode_and_blocks(mode, a_scales)
    return _accumulate(block_dot_exact(a_scales, a_codes, b_scales, b_codes, a_fmt, b_fmt), mode)


def _check_mode_and_blocks(mode, a_scales):
    if not isinstance(mode, str) or mode not in _DOT_MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, _DOT_MODES))}, not {mode!r}")
    if np.asarray(a_scales).ndim < 1:
        raise ValueError("a_scales must have a blocks axis (shape (groups, blocks)), not 0-d")


def _accumulate(bd: BlockDot, mode: str) -> np.ndarray:
    """The groups of ``bd`` (last axis: blocks) accumulated as ``mode`` says (see :func:`dot`)."""
    lead = bd.is_nan.shape[:-1]
    nb = bd.is_nan.shape[-1]
    ng = int(np.prod(lead, dtype=np.int64))
    totals = bd.total.reshape(ng, nb)
    exps = bd.exponent.reshape(ng, nb)
    nans = bd.is_nan.reshape(ng, nb)
    out = np.empty(totals.shape[0], dtype=np.uint32)
    if mode == "exact":
        for g in range(totals.shape[0]):
            if nans[g].any():
                out[g] = FP32_NAN
                continue
            if nb == 0:
                out[g] = 0
                continue
            e0 = int(exps[g].min())
            acc = sum(int(t) << (int(e) - e0) for t, e in zip(totals[g], exps[g]))
            out[g] = round_to_fp32(acc, e0 + bd.lsb_exp)
    else:
        blk = np.array([[round_to_fp32(int(t), int(e) + bd.lsb_exp) for t, e in zip(tr, er)]
                        for tr, er in zip(totals, exps)], dtype=np.uint32).reshape(totals.shape)
        blk = np.where(nans, FP32_NAN, blk).astype(np.uint32).view(np.float32)
        acc = np.zeros(totals.shape[0], dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            for j in range(nb):
                acc = acc + blk[:, j]            # IEEE binary32 addition, RNE
        out = acc.view(np.uint32).copy()
        out[np.isnan(acc)] = FP32_NAN
    return out.reshape(lead)


def block_dot_selected(a_scales, a_codes, a_sel, b_scales, b_codes, b_sel,
                       fmt_set) -> BlockDot:
    """:func:`block_dot_exact` with each block's formats chosen from a format set.

    Block pair ``j`` is read as A format ``fmt_set.members[a_sel[j]]`` and B format
    ``members[b_sel[j]]``; codes of a member narrower than the slot are its low bits. ``total``
    is in the set's common unit (``lsb_exp`` = twice the smallest member LSB exponent, so every
    pair's sum is an integer in it). An index past the members makes the block NaN, as the
    hardware does.
    """
    fmt_set = MX_FORMAT_SETS[fmt_set] if isinstance(fmt_set, str) else fmt_set
    if not isinstance(fmt_set, MXFormatSet):
        raise ValueError(f"fmt_set must be one of {', '.join(MX_FORMAT_SETS)}, not {fmt_set!r}")
    a_s, b_s = _check_scales(a_scales, "a_scales"), _check_scales(b_scales, "b_scales")
    a_c, b_c = np.asarray(a_codes), np.asarray(b_codes)
    a_i, b_i = np.asarray(a_sel), np.asarray(b_sel)
    for name, sel in (("a_sel", a_i), ("b_sel", b_i)):
        if sel.shape != a_s.shape:
            raise ValueError(f"{name} must have the scales' shape {a_s.shape}, not {sel.shape}")
    lsb = 2 * fmt_set.element.lsb_exp
    total = np.zeros(a_s.shape, dtype=object)
    exponent = np.zeros(a_s.shape, dtype=np.int64)
    is_nan = (a_i >= len(fmt_set.members)) | (b_i >= len(fmt_set.members))
    for i, fa in enumerate(fmt_set.members):
        for j, fb in enumerate(fmt_set.members):
            pick = (a_i == i) & (b_i == j)
            if not pick.any():
                continue
            bd = block_dot_exact(a_s[pick], a_c[pick] & ((1 << fa.element.width) - 1),
                                 b_s[pick], b_c[pick] & ((1 << fb.element.width) - 1), fa, fb)
            total[pick] = [int(t) << (bd.lsb_exp - lsb) for t in bd.total]
            exponent[pick] = bd.exponent
            is_nan[pick] = bd.is_nan
    total[is_nan] = 0
    exponent[is_nan] = 0
    return BlockDot(total, exponent, is_nan, lsb)


def dot_selected(a_scales, a_codes, a_sel, b_scales, b_codes, b_sel, fmt_set,
                 mode: str = "exact") -> np.ndarray:
    """:func:`dot` with each block pair's formats chosen from a format set (see
    :func:`block_dot_selected`): the result of ``mx-dot`` with ``a_format = b_format =
    fmt_set``."""
    _check_mode_and_blocks(mode, a_scales)
    return _accumulate(block_dot_selected(a_scales, a_codes, a_sel, b_scales, b_codes, b_sel,
                                          fmt_set), mode)
