"""A slow pure-Python MX reference written from MX_SPEC §4.1 and §11 with Fractions.

It shares no code with ``sim.golden`` and is the oracle the golden model and ``narrowgen
quantize`` are checked against.
"""

from __future__ import annotations

import bisect
import math
from fractions import Fraction

import numpy as np

from hdl.formats import MX_FORMATS, mx_format

FORMATS = list(MX_FORMATS)


class RefFormat:
    """Non-negative finite element magnitudes of a format, sorted, with their codes."""

    def __init__(self, name):
        self.fmt = mx_format(name)
        e = self.fmt.element
        self.elem = e
        if e.is_float:
            pairs = [(e.decode_exact(c), c) for c in range(e.max_code + 1)]
        else:
            pairs = [(Fraction(q, 64), q) for q in range(128)]
        self.vals = [v for v, _ in pairs]
        self.codes = [c for _, c in pairs]
        assert self.vals == sorted(self.vals)

    def round_mag(self, a: Fraction, rounding: str) -> int:
        vals = self.vals
        if a >= vals[-1]:
            return self.codes[-1]                               # saturate
        i = bisect.bisect_right(vals, a) - 1                    # vals[i] <= a < vals[i+1]
        lo, hi = vals[i], vals[i + 1]
        if a == lo or rounding == "floor":
            return self.codes[i]
        if a - lo != hi - a:
            return self.codes[i] if a - lo < hi - a else self.codes[i + 1]
        if rounding == "nearest":
            return self.codes[i + 1]
        return self.codes[i] if self.codes[i] % 2 == 0 else self.codes[i + 1]


REF = {name: RefFormat(name) for name in FORMATS}


def ref_quantize_block(values, name, rounding, flush=False):
    """MX_SPEC §4.1 + §11 for one block of float32 values -> (scale code, [codes])."""
    r = REF[name]
    e = r.elem
    vals = [float(v) for v in values]
    n = len(vals)
    if any(math.isnan(v) or math.isinf(v) for v in vals):
        return 255, [0] * n
    if flush:
        vals = [math.copysign(0.0, v) if abs(v) < 2.0 ** -126 else v for v in vals]
    amax = max(abs(v) for v in vals)
    if amax == 0:
        return 0, [0] * n
    floor_log2 = math.frexp(amax)[1] - 1                        # exact, subnormals too
    s = max(floor_log2 - e.emax, -127)
    codes = []
    for v in vals:
        a = abs(Fraction(v)) / Fraction(2) ** s
        c = r.round_mag(a, rounding)
        neg = math.copysign(1.0, v) < 0
        if e.is_float:
            codes.append(c | (neg << (e.width - 1)))
        else:
            codes.append((-c) & 0xFF if neg else c)
    return s + 127, codes


def ref_fp32_bits(v: Fraction) -> int:
    """Round a Fraction to FP32 (RNE; overflow to Inf), independent of sim.golden."""
    if v == 0:
        return 0
    sign = 0x80000000 if v < 0 else 0
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    ulp = max(e - 23, -149)
    q = round(a / Fraction(2) ** ulp)                           # round(Fraction): half to even
    val = q * Fraction(2) ** ulp
    if val >= 2 ** 128:
        return sign | 0x7F800000
    return sign | int(np.float32(float(val)).view(np.uint32))


def ref_element_value(name, code):
    e = REF[name].elem
    if e.is_float and (e.is_nan_code(code) or e.is_inf_code(code)):
        return None
    return e.decode_exact(code)
