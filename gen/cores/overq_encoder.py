"""Registry entry for ``overq-encoder``: OverQ outlier/precision overwrite of one tile per beat
(ALGORITHMS.md §2.2-2.3), against ``sim.golden.overq.encode``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.golden import overq as golden

from ..params import ParamError, Params, param
from ..registry import Core, VectorError, register

#: Largest tile (equal to hdl.overq.encoder.MAX_ROWS; not imported: the registry loads without
#: amaranth).
MAX_ROWS = 256
BITS = golden.BITS
MAX_CASCADE = golden.MAX_CASCADE


@dataclass(frozen=True)
class OverQEncoderParams(Params):
    rows: int = param(16, kind="int", allowed=f"1..{MAX_ROWS}",
                      doc="slots per tile R (rows of the array column one tile feeds)")
    bits: int = param(4, kind="int", allowed=f"{BITS[0]}..{BITS[1]}",
                      doc="activation width b: b-bit slot values, 3b-bit fine inputs")
    cascade: int = param(2, kind="int", allowed=f"0..{MAX_CASCADE}",
                         doc="cascade depth D: an outlier borrows the nearest zero at most D "
                             "slots below it (0: no range overwrite; >= rows-1 acts as rows-1)")
    precision: bool = param(False, kind="bool",
                            doc="precision overwrite: a zero below a non-outlier holds its "
                                "b fractional bits")

    def check(self) -> None:
        for name, lo, hi in (("rows", 1, MAX_ROWS), ("bits", *BITS),
                             ("cascade", 0, MAX_CASCADE)):
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ParamError(f"parameter {name}={value} is not allowed; allowed: {lo}..{hi}")

    @property
    def x_max(self) -> int:
        return (1 << 3 * self.bits) - 1


def _build(p: OverQEncoderParams):
    from hdl.overq import OverQEncoder
    return OverQEncoder(p.rows, p.bits, p.cascade, p.precision)


def _top_name(p: OverQEncoderParams) -> str:
    return (f"overq_encoder_r{p.rows}_b{p.bits}_d{p.cascade}"
            + ("_prec" if p.precision else ""))


def _corner_tiles(p: OverQEncoderParams) -> np.ndarray:
    """Directed tiles: all zero, zero-free, outlier-heavy, every class boundary, cascades just
    in and just out of reach, alternating zero / non-zero (precision pass)."""
    b, r = p.bits, p.rows
    half = 1 << (b - 1)
    zmax = half - 1                          # largest fine value that is a zero (c == 0)
    small = half                             # smallest non-zero (c == 1)
    nmax = (1 << 2 * b) - half - 1           # largest non-outlier (c == M)
    omin = nmax + 1                          # smallest outlier (c == M + 1)
    vsat = p.x_max - half + 1                # smallest input whose code saturates at 2b bits
    top = p.x_max
    mid = 1 << (2 * b - 1)                   # a plain non-zero non-outlier

    def tile(pattern):
        return np.resize(np.asarray(pattern, dtype=np.int64), r)

    tiles = [
        tile([0]), tile([zmax]),                              # all zero
        tile([small, mid, nmax, omin, top]),                  # zero-free
        tile([top]), tile([omin, vsat]),                      # all outliers
        tile([top, 0]), tile([omin, zmax]), tile([vsat, small]),   # every other slot
        tile([top, mid]),                                     # outliers, no zero anywhere
        tile([0, mid]), tile([mid, 0]), tile([small, zmax]), tile([nmax, 0, 0]),   # precision
        tile([0, nmax, 0, omin, 0]), tile([mid, 0, top, 0, 0, small]),
    ]
    # Runs of outliers ahead of runs of zeros (displaced outliers saturate), an outlier in the
    # last slot, and for each reach 1..D+1 an outlier whose nearest zero is that far down.
    run = np.zeros(r, dtype=np.int64)
    run[: (r + 1) // 2] = top
    tiles.append(run)
    last = tile([mid, 0])
    last[-1] = top
    tiles.append(last)
    last0 = tile([0])
    last0[-1] = omin
    tiles.append(last0)
    for reach in range(1, p.cascade + 2):
        t = tile([mid])
        t[0] = top
        if reach < r:
            t[reach] = 0
        tiles.append(t)
        t2 = t.copy()
        t2[1:reach] = omin                   # the slots in between are outliers themselves
        tiles.append(t2)
    return np.stack(tiles)


def _stimulus(p: OverQEncoderParams, rng: np.random.Generator, n: int) -> dict:
    """``n`` random tiles (half synthetic post-ReLU activations with a heavy tail at a random
    zero fraction, half a per-slot mix of classes that straddles the zero, outlier and
    saturation boundaries), then the corner tiles of :func:`_corner_tiles`."""
    b, r, n = p.bits, p.rows, int(n)
    half = 1 << (b - 1)
    n_relu = n // 2
    zf = rng.uniform(0.1, 0.8, (n_relu, 1))
    a = np.where(rng.random((n_relu, r)) < zf, 0.0,
                 np.abs(rng.standard_t(3.0, (n_relu, r))))
    relu = golden.to_fine(a, 2.5 / ((1 << b) - 1), b)
    n_mix = n - n_relu
    edges = np.array([0, half - 1, half, (1 << 2 * b) - half - 1, (1 << 2 * b) - half,
                      p.x_max - half + 1, p.x_max], dtype=np.int64)
    cls = rng.choice(5, (n_mix, r), p=[0.35, 0.3, 0.15, 0.15, 0.05])
    mix = np.select(
        [cls == 0, cls == 1, cls == 2, cls == 3],
        [rng.integers(0, half, (n_mix, r)),                          # zeros
         rng.integers(half, (1 << 2 * b) - half, (n_mix, r)),        # non-zero non-outliers
         rng.integers((1 << 2 * b) - half, p.x_max + 1, (n_mix, r)),  # outliers
         edges[rng.integers(0, len(edges), (n_mix, r))]],            # class boundaries
        rng.integers(0, p.x_max + 1, (n_mix, r)))                    # anything
    return {"x": np.concatenate([relu, mix, _corner_tiles(p)]).astype(np.int64)}


def _check_vectors(p: OverQEncoderParams, arrays: dict) -> dict:
    what = (f"non-negative {3 * p.bits}-bit fine activations 0..{p.x_max}, any integer dtype, "
            f"shape [n, rows] = [n, {p.rows}]")
    if "x" not in arrays:
        raise VectorError(f"vectors file has no array 'x' ({what}); it holds: "
                          f"{', '.join(sorted(arrays)) or 'nothing'}")
    x = np.asarray(arrays["x"])
    if x.dtype.kind not in "iu":
        raise VectorError(f"array 'x' must be an integer array ({what}), not {x.dtype.name}")
    if x.ndim != 2 or x.shape[1] != p.rows:
        raise VectorError(f"array 'x' must have shape [n, rows] = [n, {p.rows}], not "
                          f"{list(x.shape)}")
    if x.shape[0] == 0:
        raise VectorError("array 'x' is empty: nothing to verify")
    lo, hi = int(x.min()), int(x.max())
    if lo < 0 or hi > p.x_max:
        bad = lo if lo < 0 else hi
        where = tuple(int(i) for i in np.argwhere(x == bad)[0])
        raise VectorError(f"array 'x' holds {bad} at index {list(where)}; allowed: "
                          f"0..{p.x_max} ({3 * p.bits}-bit fine activations for bits={p.bits})")
    return {"x": x.astype(np.int64)}


def _golden(p: OverQEncoderParams, inputs: dict) -> dict:
    values, tags = golden.encode(inputs["x"], p.bits, p.cascade, p.precision)
    return {"values": values, "tags": tags}


def _to_beats(p: OverQEncoderParams, inputs: dict) -> dict:
    return {"x": inputs["x"].astype(np.int64)}


def _expected_beats(p: OverQEncoderParams, outputs: dict) -> dict:
    return {"values": outputs["values"].astype(np.int64),
            "tags": outputs["tags"].astype(np.int64)}


def _from_beats(p: OverQEncoderParams, fields: dict, inputs: dict) -> dict:
    shape = inputs["x"].shape
    return {"values": np.asarray(fields["values"], dtype=np.int64).reshape(shape),
            "tags": np.asarray(fields["tags"]).astype(np.uint8).reshape(shape)}


CORE = register(Core(
    name="overq-encoder",
    description="OverQ encoder: one tile of 3b-bit fine activations per beat -> b-bit values "
                "and 2-bit tags (range overwrite with cascade, optional precision overwrite)",
    params=OverQEncoderParams,
    build=_build,
    top_name=_top_name,
    stimulus=_stimulus,
    check_vectors=_check_vectors,
    golden=_golden,
    to_beats=_to_beats,
    expected_beats=_expected_beats,
    from_beats=_from_beats,
    transactions=lambda p, inputs: int(inputs["x"].shape[0]),
    out_beats_per_transaction=lambda p: 1,
    vectors_doc="x: integer [n, rows] non-negative fine activations 0..2**(3*bits)-1 (any "
                "integer dtype), one tile per row",
    dump_doc="values: int64 [n, rows] b-bit slot values; tags: uint8 [n, rows] (0 NORMAL, "
             "1 SHIFTED, 2 RANGE, 3 PREC)",
    formats=lambda p: [],
))
