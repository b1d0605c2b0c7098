"""Element codec of the MX golden model: exact binary values <-> private element codes.

One concept: a single element of an OCP MX block (MX_SPEC §2), independent of the shared scale.

* :func:`encode_elements` rounds exact values ``(-1)**sign * sig * 2**exp`` (integers) to element
  codes -- once, with a named rounding mode, saturating to +-max (MX_SPEC §4.1, §11).
* :func:`decode_elements` gives the exact value of every code as a signed integer in units of the
  element's smallest subnormal (its LSB), plus NaN/Inf flags.

Everything is integer numpy (int64); no floating-point arithmetic is involved. Widths, biases,
emax/emin and special codes come from :mod:`hdl.formats` only.
"""

from __future__ import annotations

import numpy as np

from hdl.formats import MX_FORMATS, ElementFormat, MXFormat, mx_format

__all__ = [
    "ROUNDING_MODES",
    "bit_length",
    "check_codes",
    "check_rounding",
    "decode_elements",
    "decode_parts",
    "element_format",
    "encode_elements",
    "lsb_exponent",
    "round_shift_right",
]

#: Rounding modes of every quantizer in the golden model.
#: ``"even"``: to nearest, ties to even (RNE, the default); ``"nearest"``: to nearest, ties away
#: from zero (microxcaling's default); ``"floor"``: toward zero (truncate the magnitude).
ROUNDING_MODES = ("even", "nearest", "floor")

_ELEMENTS: dict[str, ElementFormat] = {f.element.name: f.element for f in MX_FORMATS.values()}


def element_format(elem: str | ElementFormat | MXFormat) -> ElementFormat:
    """Resolve an element format.

    Parameters
    ----------
    elem : str or ElementFormat or MXFormat
        An :class:`~hdl.formats.ElementFormat`, an MX format (its element type is used), an
        element name such as ``"fp4_e2m1"`` or an MX format name such as ``"mxfp4_e2m1"``.

    Returns
    -------
    ElementFormat

    Raises
    ------
    ValueError
        If the name is unknown.
    """
    if isinstance(elem, ElementFormat):
        return elem
    if isinstance(elem, MXFormat):
        return elem.element
    if isinstance(elem, str) and elem in _ELEMENTS:
        return _ELEMENTS[elem]
    if isinstance(elem, str) and elem in MX_FORMATS:
        return mx_format(elem).element
    raise ValueError(
        f"unknown element format {elem!r}; allowed: {', '.join(_ELEMENTS)} "
        f"or an MX format name ({', '.join(MX_FORMATS)})")


def lsb_exponent(elem: ElementFormat) -> int:
    """Exponent k with ``elem.min_subnormal == 2**k`` (the weight of one integer unit).

    E5M2 -16, E4M3 -9, E3M2 -4, E2M3 -3, E2M1 -1, INT8 -6 (``hdl.formats``' ``lsb_exp``).
    """
    return elem.lsb_exp


def check_rounding(rounding: object) -> str:
    """Return ``rounding`` if it names a rounding mode, else raise ``ValueError``."""
    if not isinstance(rounding, str) or rounding not in ROUNDING_MODES:
        raise ValueError(
            f"rounding must be one of {', '.join(map(repr, ROUNDING_MODES))}, not {rounding!r}")
    return rounding


def bit_length(n: np.ndarray) -> np.ndarray:
    """Vectorised ``int.bit_length`` of non-negative int64 values (0 -> 0)."""
    n = n.copy()
    bl = np.zeros(n.shape, dtype=np.int64)
    for k in (32, 16, 8, 4, 2, 1):
        big = n >= (np.int64(1) << k)
        bl += big * k
        n = np.where(big, n >> k, n)
    return bl + (n > 0)


def round_shift_right(n: np.ndarray, shift: np.ndarray, rounding: str) -> np.ndarray:
    """Round ``n / 2**shift`` to an integer with a named rounding mode.

    Parameters
    ----------
    n : ndarray of int64
        Non-negative magnitudes, below ``2**62``.
    shift : ndarray of int64
        Non-negative shift amounts (any size; shifts above 62 round like 62, which is exact
        because ``n < 2**61`` then lies below one half).
    rounding : {"even", "nearest", "floor"}
        Ties to even, ties away from zero, or toward zero (see :data:`ROUNDING_MODES`).

    Returns
    -------
    ndarray of int64
        The rounded quotient (may equal ``2**(bit_length(n) - shift)``: the carry is left for the
        caller to absorb into its exponent).
    """
    check_rounding(rounding)
    n = np.asarray(n, dtype=np.int64)
    shift = np.minimum(np.asarray(shift, dtype=np.int64), 62)
    if np.any(shift < 0):
        raise ValueError(f"shift must be non-negative, not {int(shift.min())}")
    q = n >> shift
    if rounding == "floor":
        return q
    rem = n - (q << shift)
    half = (np.int64(1) << shift) >> 1          # 0 when shift == 0 (then rem == 0: exact)
    tie = (shift > 0) & (rem == half)
    up = rem > half
    if rounding == "even":
        up |= tie & ((q & 1) == 1)
    else:                                       # "nearest": ties away from zero
        up |= tie
    return q + up


def encode_elements(sign, sig, exp, elem: ElementFormat, rounding: str = "even") -> np.ndarray:
    """Round exact values ``(-1)**sign * sig * 2**exp`` to element codes.

    One rounding (``rounding``) from the exact value to the element grid: FP elements with
    subnormals (exponent clipped at ``elem.emin``), INT8 on the fixed grid ``2**-frac_bits``.
    Results beyond the largest finite value saturate to ``+-max`` (never Inf/NaN).
    FP results keep the sign (a negative value that rounds to zero gives ``-0``); INT8 has a single
    zero and never produces ``0x80``.

    Parameters
    ----------
    sign : array_like of bool or int
        1 / True for negative values.
    sig : array_like of int64
        Non-negative integer significands, below ``2**53``.
    exp : array_like of int64
        Exponents (the value is ``sig * 2**exp``).
    elem : ElementFormat
    rounding : {"even", "nearest", "floor"}

    Returns
    -------
    ndarray of uint8
        Element codes, LSB-aligned (bit ``elem.width - 1`` is the sign).
    """
    elem = element_format(elem)
    check_rounding(rounding)
    sign = np.asarray(sign).astype(bool)
    sig = np.asarray(sig, dtype=np.int64)
    exp = np.asarray(exp, dtype=np.int64)
    sign, sig, exp = np.broadcast_arrays(sign, sig, exp)
    nonzero = sig > 0
    # t: exponent of the leading bit of the exact value (floor(log2 |value|)).
    t = bit_length(sig) - 1 + exp
    # Anything at or above 2**(emax+2) saturates whatever the rounding; excluding it here keeps the
    # shifts below small. In range values have t <= emax + 1.
    over = nonzero & (t > elem.emax + 1)
    t = np.where(nonzero & ~over, t, elem.emin)
    if elem.is_float:
        te = np.maximum(t, elem.emin)           # subnormals: exponent clipped at emin
        lsb = te - elem.mbits
    else:
        lsb = np.full(t.shape, lsb_exponent(elem), dtype=np.int64)
    shift = lsb - exp
    # shift < 0 only for short significands (FP: bit_length(sig) <= mbits) or INT8 values with few
    # bits; there q = sig << -shift < 2**(mbits + 2) (FP) or < 2**9 (INT8, as t <= emax + 1): exact.
    left = np.clip(-shift, 0, 62)
    q = np.where(shift >= 0, round_shift_right(sig, np.maximum(shift, 0), rounding), sig << left)
    q = np.where(nonzero & ~over, q, 0)
    max_code = elem.max_code
    if elem.is_float:
        # Rounding carry (q == 2**(mbits+1)) propagates into the exponent field by the addition.
        mag = np.where(q > 0, ((te + elem.bias - 1) << elem.mbits) + q, 0)
        mag = np.where(over, max_code, np.minimum(mag, max_code))
        code = mag | (sign.astype(np.int64) << (elem.width - 1))
    else:
        mag = np.where(over, max_code, np.minimum(q, max_code))
        code = np.where(sign & (mag > 0), (1 << elem.width) - mag, mag)
    return code.astype(np.uint8)


def check_codes(codes, elem: ElementFormat, name: str = "codes") -> np.ndarray:
    """Validate element codes (integer dtype, ``0 .. 2**width - 1``); return them as int64."""
    codes = np.asarray(codes)
    if codes.dtype.kind not in "ui":
        raise TypeError(f"{name} must be an integer array of {elem.name} codes, not {codes.dtype}")
    top = (1 << elem.width) - 1
    if codes.size and (codes.min() < 0 or codes.max() > top):
        bad = codes.min() if codes.min() < 0 else codes.max()
        raise ValueError(f"{name} must be {elem.name} codes in 0..{top}, found {int(bad)}")
    return codes.astype(np.int64)


def decode_parts(codes, elem: ElementFormat):
    """Split element codes into ``(sign, magnitude, is_nan, is_inf)``.

    ``magnitude`` is the exact ``|value|`` in units of ``elem.min_subnormal`` (int64, 0 for NaN
    and Inf codes); ``sign`` is the sign bit (FP: also for -0; INT8: ``value < 0``).
    """
    elem = element_format(elem)
    c = check_codes(codes, elem)
    if not elem.is_float:
        q = np.where(c >> (elem.width - 1) == 1, c - (1 << elem.width), c)   # 0x80 -> -128
        false = np.zeros(c.shape, dtype=bool)
        return q < 0, np.abs(q), false, false
    sign = (c >> (elem.width - 1)) == 1
    e = (c >> elem.mbits) & ((1 << elem.ebits) - 1)
    m = c & ((1 << elem.mbits) - 1)
    top = e == (1 << elem.ebits) - 1
    is_nan = top & np.isin(m, np.asarray(elem.nan_mantissas, dtype=np.int64))
    is_inf = top & (m == 0) if elem.has_inf else np.zeros(c.shape, dtype=bool)
    # |value| / min_subnormal = (M + [E>0]*2**mbits) * 2**(max(E,1) - 1), since emin = 1 - bias.
    mag = (m | ((e > 0).astype(np.int64) << elem.mbits)) << (np.maximum(e, 1) - 1)
    mag = np.where(is_nan | is_inf, 0, mag)
    return sign, mag, is_nan, is_inf


def decode_elements(codes, elem: str | ElementFormat | MXFormat):
    """Exact values of element codes.

    Parameters
    ----------
    codes : array_like of int
        Element codes, LSB-aligned, in ``0 .. 2**elem.width - 1``.
    elem : ElementFormat, MXFormat or str
        Element format (see :func:`element_format`).

    Returns
    -------
    is_nan : ndarray of bool
    is_inf : ndarray of bool
        Only E5M2 has Inf codes.
    value : ndarray of int64
        Signed exact value in units of ``elem.min_subnormal`` (0 for NaN/Inf codes; -0 decodes to
        0). INT8 ``0x80`` decodes to -128 (= -2.0).

    Raises
    ------
    TypeError
        If ``codes`` is not an integer array.
    ValueError
        If a code is outside ``0 .. 2**elem.width - 1``.
    """
    sign, mag, is_nan, is_inf = decode_parts(codes, elem)
    return is_nan, is_inf, np.where(sign, -mag, mag)
