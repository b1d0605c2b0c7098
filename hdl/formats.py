"""The single definition of every number format narrowgen knows.

Pure Python: no amaranth, no numpy. Hardware generators (``hdl``), golden models (``sim.golden``)
and the CLI (``gen``) all read their widths, biases and special codes from here, so the RTL and the
reference cannot drift apart.

Numeric contract: ``MX_SPEC.md`` §2 (element formats), §3 (E8M0), §10 (MX9/MX6/MX4).

Format names used everywhere, the CLI included::

    mxfp8_e5m2  mxfp8_e4m3  mxfp6_e3m2  mxfp6_e2m3  mxfp4_e2m1  mxint8     (OCP MX v1.0)
    mx9  mx6  mx4                                                      (shared micro-exponents)
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "ElementFormat", "ScaleFormat", "MXFormat", "BDRFormat",
    "FP8_E5M2", "FP8_E4M3", "FP6_E3M2", "FP6_E2M3", "FP4_E2M1", "INT8", "E8M0",
    "MX_FORMATS", "BDR_FORMATS", "mx_format", "bdr_format",
    "ElementSet", "MXFormatSet", "MX_FORMAT_SETS",
]


@dataclass(frozen=True)
class ElementFormat:
    """A private element type of an MX block.

    Floating-point elements are sign-magnitude, fields MSB to LSB ``sign | exponent | mantissa``.
    Integer elements (``kind == "int"``) are two's complement with ``frac_bits`` fractional bits.

    Attributes
    ----------
    name : str
        Short name, e.g. ``"fp8_e4m3"``.
    kind : str
        ``"fp"`` or ``"int"``.
    width : int
        Bits per element code.
    ebits, mbits : int
        Exponent and mantissa field widths (``ebits == 0`` for integers; ``mbits`` is then the
        number of magnitude bits, 7 for INT8).
    bias : int
        Exponent bias (0 for integers).
    emax : int
        Unbiased exponent of the largest normal value; the constant subtracted from the block's
        maximum exponent when the shared scale is chosen (MX_SPEC §4.1). 0 for INT8.
    has_inf : bool
        Whether the format encodes infinities (only E5M2).
    nan_mantissas : tuple of int
        Mantissa field values that are NaN when the exponent field is all ones
        (E5M2: 1, 2, 3; E4M3: 7; none elsewhere).
    frac_bits : int
        Integer formats only: value = code * 2**-frac_bits.
    """

    name: str
    kind: str
    width: int
    ebits: int
    mbits: int
    bias: int
    emax: int
    has_inf: bool = False
    nan_mantissas: tuple[int, ...] = ()
    frac_bits: int = 0

    @property
    def is_float(self) -> bool:
        return self.kind == "fp"

    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal value (FP) or of the LSB (INT)."""
        return 1 - self.bias if self.is_float else -self.frac_bits

    @property
    def max_code(self) -> int:
        """Magnitude code (sign bit clear) of the largest finite value.

        For INT8 this is the largest positive code, 127 (the encoder never emits 0x80).
        """
        if not self.is_float:
            return (1 << (self.width - 1)) - 1
        top_exp = (1 << self.ebits) - 1
        if self.has_inf:                       # E5M2: exponent all-ones is Inf/NaN
            return ((top_exp - 1) << self.mbits) | ((1 << self.mbits) - 1)
        mant = (1 << self.mbits) - 1
        while mant in self.nan_mantissas:      # E4M3: S.1111.111 is NaN
            mant -= 1
        return (top_exp << self.mbits) | mant

    @property
    def max_value(self) -> Fraction:
        """Largest finite magnitude."""
        return self.decode_exact(self.max_code)

    @property
    def lsb_exp(self) -> int:
        """Exponent k of the element's integer LSB: ``min_subnormal == 2**k``.

        E5M2 -16, E4M3 -9, E3M2 -4, E2M3 -3, E2M1 -1, INT8 -6.
        """
        return self.emin - (self.mbits if self.is_float else 0)

    @property
    def min_subnormal(self) -> Fraction:
        """Smallest positive magnitude (the element's integer LSB)."""
        return Fraction(2) ** self.lsb_exp

    def is_nan_code(self, code: int) -> bool:
        if not self.is_float:
            return False
        exp, mant = (code >> self.mbits) & ((1 << self.ebits) - 1), code & ((1 << self.mbits) - 1)
        return exp == (1 << self.ebits) - 1 and mant in self.nan_mantissas

    def is_inf_code(self, code: int) -> bool:
        if not self.has_inf:
            return False
        exp, mant = (code >> self.mbits) & ((1 << self.ebits) - 1), code & ((1 << self.mbits) - 1)
        return exp == (1 << self.ebits) - 1 and mant == 0

    def decode_exact(self, code: int) -> Fraction:
        """Exact value of a finite element code (NaN/Inf codes raise ``ValueError``).

        Pure-Python reference used by tests and by the formats table; the vectorised decoder lives
        in ``sim.golden``.
        """
        if not 0 <= code < (1 << self.width):
            raise ValueError(f"{self.name} code must be in 0..{(1 << self.width) - 1}, not {code}")
        if not self.is_float:
            q = code - (1 << self.width) if code >> (self.width - 1) else code
            return Fraction(q, 1 << self.frac_bits)
        if self.is_nan_code(code) or self.is_inf_code(code):
            raise ValueError(f"{self.name} code {code:#x} is not finite")
        sign = -1 if code >> (self.width - 1) else 1
        exp = (code >> self.mbits) & ((1 << self.ebits) - 1)
        mant = code & ((1 << self.mbits) - 1)
        if exp == 0:
            return sign * Fraction(mant, 1 << self.mbits) * Fraction(2) ** (1 - self.bias)
        return sign * (1 + Fraction(mant, 1 << self.mbits)) * Fraction(2) ** (exp - self.bias)

    @property
    def int_bits(self) -> int:
        """Bits of the exact magnitude of any finite element in units of ``min_subnormal``.

        MX_SPEC §6: E5M2 32, E4M3 18, E3M2 9, E2M3 6, E2M1 4, INT8 7 (decoders also accept the
        INT8 code 0x80 = -2.0, whose magnitude needs 8).
        """
        if not self.is_float:
            return self.width - 1
        return (self.max_value / self.min_subnormal).numerator.bit_length()


@dataclass(frozen=True)
class ScaleFormat:
    """An exponent-only shared scale (E8M0): code c means 2**(c - bias); ``nan_code`` is NaN."""

    name: str
    width: int
    bias: int
    nan_code: int

    @property
    def min_exp(self) -> int:
        return -self.bias

    @property
    def max_exp(self) -> int:
        return self.nan_code - 1 - self.bias


@dataclass(frozen=True)
class MXFormat:
    """An OCP MX format: an E8M0 scale shared by ``block_size`` elements of one type."""

    name: str
    element: ElementFormat
    scale: ScaleFormat
    default_block_size: int = 32

    @property
    def bits_per_element(self) -> Fraction:
        return self.element.width + Fraction(self.scale.width, self.default_block_size)


@dataclass(frozen=True)
class ElementSet:
    """Element formats selectable per block at run time: a block's codes are read as
    ``members[sel]``, each code in the low ``members[sel].width`` bits of a ``width``-bit slot.

    Values are exact in one common unit, ``2**lsb_exp`` (the smallest member LSB): a member's
    integer magnitude is worth ``2**offset(member)`` of it.
    """

    name: str
    members: tuple[ElementFormat, ...]

    @property
    def width(self) -> int:
        """Bits per element slot: the widest member's code."""
        return max(e.width for e in self.members)

    @property
    def sel_bits(self) -> int:
        """Bits of the per-block format index."""
        return max(1, (len(self.members) - 1).bit_length())

    @property
    def lsb_exp(self) -> int:
        """Exponent of the common unit: the smallest member LSB."""
        return min(e.lsb_exp for e in self.members)

    def offset(self, elem: ElementFormat) -> int:
        """log2 of ``elem``'s LSB in common units."""
        return elem.lsb_exp - self.lsb_exp


@dataclass(frozen=True)
class MXFormatSet:
    """MX formats selectable per block at run time, one E8M0 scale per block as for each member.

    The format index of a block is its position in ``members``.
    """

    name: str
    members: tuple[MXFormat, ...]

    @property
    def element(self) -> ElementSet:
        return ElementSet(self.name, tuple(f.element for f in self.members))


@dataclass(frozen=True)
class BDRFormat:
    """A two-level shared-microexponent format of the BDR family (MX_SPEC §10).

    ``k1`` elements share a ``d1``-bit exponent; each sub-block of ``k2`` elements shares a
    ``d2``-bit micro-exponent that lowers it; elements are sign + ``m`` magnitude bits.
    """

    name: str
    k1: int
    d1: int
    k2: int
    d2: int
    m: int

    @property
    def element_width(self) -> int:
        return self.m + 1

    @property
    def bits_per_element(self) -> Fraction:
        return self.element_width + Fraction(self.d1, self.k1) + Fraction(self.d2, self.k2)


FP8_E5M2 = ElementFormat("fp8_e5m2", "fp", 8, 5, 2, 15, 15, has_inf=True, nan_mantissas=(1, 2, 3))
FP8_E4M3 = ElementFormat("fp8_e4m3", "fp", 8, 4, 3, 7, 8, nan_mantissas=(7,))
FP6_E3M2 = ElementFormat("fp6_e3m2", "fp", 6, 3, 2, 3, 4)
FP6_E2M3 = ElementFormat("fp6_e2m3", "fp", 6, 2, 3, 1, 2)
FP4_E2M1 = ElementFormat("fp4_e2m1", "fp", 4, 2, 1, 1, 2)
INT8 = ElementFormat("int8", "int", 8, 0, 7, 0, 0, frac_bits=6)

E8M0 = ScaleFormat("e8m0", 8, 127, 255)

MX_FORMATS: dict[str, MXFormat] = {
    f.name: f
    for f in (
        MXFormat("mxfp8_e5m2", FP8_E5M2, E8M0),
        MXFormat("mxfp8_e4m3", FP8_E4M3, E8M0),
        MXFormat("mxfp6_e3m2", FP6_E3M2, E8M0),
        MXFormat("mxfp6_e2m3", FP6_E2M3, E8M0),
        MXFormat("mxfp4_e2m1", FP4_E2M1, E8M0),
        MXFormat("mxint8", INT8, E8M0),
    )
}

#: Format sets a dot product can select from per block (``mx-dot`` with ``a_format`` and
#: ``b_format`` both naming the same set; each operand's format is chosen per block): the two
#: MXFP8 formats, the two MXFP6 formats, and all six.
MX_FORMAT_SETS: dict[str, MXFormatSet] = {
    s.name: s
    for s in (
        MXFormatSet("mxfp8", (MX_FORMATS["mxfp8_e5m2"], MX_FORMATS["mxfp8_e4m3"])),
        MXFormatSet("mxfp6", (MX_FORMATS["mxfp6_e3m2"], MX_FORMATS["mxfp6_e2m3"])),
        MXFormatSet("mxall", tuple(MX_FORMATS.values())),
    )
}

BDR_FORMATS: dict[str, BDRFormat] = {
    f.name: f
    for f in (
        BDRFormat("mx9", 16, 8, 2, 1, 7),
        BDRFormat("mx6", 16, 8, 2, 1, 4),
        BDRFormat("mx4", 16, 8, 2, 1, 2),
    )
}


def mx_format(name: str | MXFormat) -> MXFormat:
    """Look up an OCP MX format by name, with an error that lists the allowed names."""
    if isinstance(name, MXFormat):
        return name
    try:
        return MX_FORMATS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown MX format {name!r}; allowed: {', '.join(MX_FORMATS)}") from None


def bdr_format(name: str | BDRFormat) -> BDRFormat:
    """Look up an MX9/MX6/MX4 format by name, with an error that lists the allowed names."""
    if isinstance(name, BDRFormat):
        return name
    try:
        return BDR_FORMATS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown BDR format {name!r}; allowed: {', '.join(BDR_FORMATS)}") from None
