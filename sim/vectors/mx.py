"""Stimulus for MX cores: random FP32 blocks of many characters, random MX blocks, §11 corners.

Everything returns numpy arrays and is deterministic for a given ``numpy.random.Generator``.
FP32 data is produced as ``uint32`` bit patterns and viewed as ``float32`` so that NaN payloads,
``-0.0`` and subnormals survive exactly.
"""

from __future__ import annotations

import numpy as np

from hdl.formats import MXFormat, mx_format

__all__ = ["random_fp32_blocks", "corner_fp32_blocks", "random_mx_blocks", "corner_mx_blocks"]

F32_MAX_BITS = 0x7F7FFFFF
F32_INF_BITS = 0x7F800000
F32_QNAN_BITS = 0x7FC00000

#: Kinds of random FP32 block, drawn in turn so every run exercises each of them.
BLOCK_KINDS = ("normal", "heavy", "tiny", "huge", "pow2_edge", "ties", "bits", "mixed_scale")


def _f32(bits: np.ndarray) -> np.ndarray:
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def _bits(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def _random_sign(rng, shape) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def _tie_block(rng, fmt: MXFormat, block_size: int) -> np.ndarray:
    """A block whose scale is known and whose other elements sit exactly on rounding midpoints."""
    elem = fmt.element
    s = int(rng.integers(-100, 100))
    top = 2.0 ** (elem.emax + s)                       # in the block's top binade: fixes the scale
    # Midpoints between adjacent element magnitudes (and just beyond max, which saturates).
    mags = sorted({float(elem.decode_exact(c)) for c in range(elem.max_code + 1)
                   if not elem.is_nan_code(c) and not elem.is_inf_code(c)})
    mids = [(a + b) / 2 for a, b in zip(mags, mags[1:])] + [mags[-1] * 1.03]
    pick = rng.choice(np.asarray(mids + mags), size=block_size)
    vals = pick * 2.0 ** s * _random_sign(rng, block_size)
    vals[rng.integers(block_size)] = top * (1.0 if rng.random() < 0.5 else -1.0)
    return vals


def random_fp32_blocks(rng: np.random.Generator, fmt: str | MXFormat, n: int,
                       block_size: int) -> np.ndarray:
    """``n`` random blocks (``uint32 [n, block_size]``) cycling through :data:`BLOCK_KINDS`."""
    fmt = mx_format(fmt)
    out = np.zeros((n, block_size), dtype=np.uint32)
    for k in range(n):
        kind = BLOCK_KINDS[k % len(BLOCK_KINDS)]
        if kind == "normal":
            v = rng.standard_normal(block_size) * 2.0 ** rng.integers(-30, 30)
        elif kind == "heavy":
            v = rng.standard_t(2, block_size) * 2.0 ** rng.integers(-60, 60)
        elif kind == "tiny":                      # FP32 subnormals and the smallest normals
            v = _f32(rng.integers(0, 0x01000000, block_size, dtype=np.uint32)).astype(np.float64)
            v *= _random_sign(rng, block_size)
        elif kind == "huge":
            v = _f32(rng.integers(0x7E000000, F32_MAX_BITS + 1, block_size,
                                  dtype=np.uint32)).astype(np.float64)
            v *= _random_sign(rng, block_size)
        elif kind == "pow2_edge":                 # block max a few ulps below a power of two
            e = int(rng.integers(-126, 127))
            base = _bits(np.float32(2.0 ** e)).astype(np.int64)
            v = _f32(base - rng.integers(1, 4, block_size)).astype(np.float64)
            v *= rng.random(block_size) ** 2
            v[0] = _f32(np.uint32(base - 1))
            v *= _random_sign(rng, block_size)
        elif kind == "ties":
            v = _tie_block(rng, fmt, block_size)
        elif kind == "bits":                      # any finite bit pattern
            b = rng.integers(0, 1 << 32, block_size, dtype=np.uint64).astype(np.uint32)
            b = np.where((b & F32_INF_BITS) == F32_INF_BITS, b & 0xBF7FFFFF, b)
            out[k] = b
            continue
        else:                                     # elements spread over many binades
            v = rng.standard_normal(block_size) * 2.0 ** rng.integers(-40, 10, block_size)
        out[k] = _bits(v.astype(np.float32))
    return out


def corner_fp32_blocks(fmt: str | MXFormat, block_size: int) -> np.ndarray:
    """The §11 corner cases as FP32 blocks (``uint32 [k, block_size]``)."""
    fmt = mx_format(fmt)
    elem = fmt.element
    z = np.zeros(block_size, dtype=np.uint32)
    ramp = _bits(np.linspace(-3.0, 3.0, block_size).astype(np.float32))
    blocks = []

    def put(idx_vals, base=None):
        b = (ramp if base is None else base).copy()
        for i, val in idx_vals:
            b[i % block_size] = val
        blocks.append(b)

    put([(1, F32_QNAN_BITS)])                                 # NaN anywhere → NaN block
    put([(block_size - 1, 0xFFC00001)])                        # negative NaN with payload
    put([(0, F32_INF_BITS)])                                   # +Inf
    put([(2, F32_INF_BITS | 0x80000000)])                      # -Inf
    blocks.append(z.copy())                                    # all-zero
    blocks.append(z | 0x80000000)                              # all -0
    put([(0, 0x80000000), (1, 0x80000000)])                    # -0 inside a nonzero block
    put([(0, F32_MAX_BITS)])                                   # FLT_MAX
    put([(1, F32_MAX_BITS | 0x80000000)], base=z | 0x80000001)  # -FLT_MAX with tiny negatives
    put([(0, F32_MAX_BITS), (1, F32_MAX_BITS | 0x80000000)], base=z | F32_MAX_BITS)
    blocks.append(np.arange(1, block_size + 1, dtype=np.uint32))   # subnormals only
    blocks.append(np.full(block_size, 0x807FFFFF, dtype=np.uint32))  # largest subnormals, neg
    put([(0, 0x00000001)], base=z)                             # one min subnormal
    put([(0, 0x00800000)], base=z | 0x00000001)                # min normal + min subnormals
    for e in (-126, -100, -1, 0, 1, 64, 127):                  # one ulp below 2^e (and 2^e)
        below = int(_bits(np.float32(2.0 ** e))) - 1
        put([(0, below)], base=z | (below & 0x7FFFFFFF))
        put([(0, int(_bits(np.float32(2.0 ** e))))])
    # Exact ties at the element's own grid for a known scale, both signs.
    if elem.is_float:
        for s in (-127, -3, 0, 5, 127 - elem.emax):
            top = np.float32(2.0 ** (elem.emax + s))
            lsb = 2.0 ** (elem.emin - elem.mbits + s)
            span = 1 << (elem.emax - elem.emin + elem.mbits)   # top / lsb: stay below the top
            ties = (np.arange(block_size) % span + 0.5) * lsb
            b = _bits(ties.astype(np.float32))
            b[0] = _bits(top)
            b[1::2] |= 0x80000000
            blocks.append(b)
    else:
        for s in (-127, 0, 100):
            ties = (np.arange(block_size) * 4 + 0.5) * 2.0 ** (s - 6)
            b = _bits(ties.astype(np.float32))
            b[0] = _bits(np.float32(2.0 ** s * 1.999))
            b[1::2] |= 0x80000000
            blocks.append(b)
    # Values that round up into the next binade / saturate at the element's max.
    mx = float(elem.max_value)
    for f in (1.0, 1.03, 1.0625, 1.999):
        b = _bits(np.full(block_size, mx * f, dtype=np.float32))
        b[1::2] |= 0x80000000
        blocks.append(b)
    return np.stack(blocks).astype(np.uint32)


def random_mx_blocks(rng: np.random.Generator, fmt: str | MXFormat, n: int,
                     block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random MX blocks: (scales ``uint8 [n]``, codes ``uint8 [n, block_size]``).

    Codes are uniform over every code (NaN/Inf codes and INT8's 0x80 included); scales favour the
    interesting E8M0 codes (0, 1, 126..128, 253, 254, 255) a third of the time.
    """
    fmt = mx_format(fmt)
    w = fmt.element.width
    codes = rng.integers(0, 1 << w, (n, block_size), dtype=np.uint16).astype(np.uint8)
    special = np.array([0, 1, 126, 127, 128, 253, 254, 255], dtype=np.uint8)
    scales = rng.integers(0, 256, n, dtype=np.uint16).astype(np.uint8)
    pick = rng.random(n) < 1 / 3
    scales[pick] = rng.choice(special, int(pick.sum()))
    return scales, codes


def corner_mx_blocks(fmt: str | MXFormat, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every element code under scale codes 0, 1, 127, 200, 254 and 255 (exhaustive per scale)."""
    fmt = mx_format(fmt)
    w = fmt.element.width
    all_codes = np.arange(1 << w, dtype=np.uint16).astype(np.uint8)
    reps = -(-all_codes.size // block_size)
    padded = np.resize(all_codes, reps * block_size).reshape(reps, block_size)
    scales, codes = [], []
    for s in (0, 1, 127, 200, 254, 255):
        scales.append(np.full(reps, s, dtype=np.uint8))
        codes.append(padded)
    return np.concatenate(scales), np.concatenate(codes)
