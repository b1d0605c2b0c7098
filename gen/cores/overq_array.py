"""Registry entries for ``overq-array`` and its baseline ``int-array``: one weight-stationary
systolic array (``hdl.overq.array.SystolicArray``) with and without OverQ lanes (ALGORITHMS.md §2),
against ``sim.golden.overq.array`` and ``x @ w``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.golden import overq as golden

from ..params import ParamError, Params, param
from ..registry import Core, VectorError, register
from .mx_blocking import require

#: Input beat kinds, as hdl.overq.array defines them (not imported: the registry loads without
#: amaranth).
ACTIVATION, WEIGHT = 0, 1
MAX_SIZE = 64


def _check_common(p) -> None:
    for name in ("rows", "cols"):
        value = getattr(p, name)
        if not 1 <= value <= MAX_SIZE:
            raise ParamError(f"parameter {name}={value} is not allowed; allowed: 1..{MAX_SIZE}")
    if not golden.BITS[0] <= p.bits <= golden.BITS[1]:
        raise ParamError(f"parameter bits={p.bits} is not allowed; allowed: "
                         f"{golden.BITS[0]}..{golden.BITS[1]}")
    if not golden.WEIGHT_BITS[0] <= p.weight_bits <= golden.WEIGHT_BITS[1]:
        raise ParamError(f"parameter weight_bits={p.weight_bits} is not allowed; allowed: "
                         f"{golden.WEIGHT_BITS[0]}..{golden.WEIGHT_BITS[1]}")


_SIZE = dict(kind="int", allowed=f"1..{MAX_SIZE}")


@dataclass(frozen=True)
class IntArrayParams(Params):
    rows: int = param(8, **_SIZE, doc="array rows R: activation values per vector (the tile)")
    cols: int = param(8, **_SIZE, doc="array columns C: outputs per vector")
    bits: int = param(4, kind="int", allowed=f"{golden.BITS[0]}..{golden.BITS[1]}",
                      doc="activation code width b (unsigned)")
    weight_bits: int = param(8, kind="int",
                             allowed=f"{golden.WEIGHT_BITS[0]}..{golden.WEIGHT_BITS[1]}",
                             doc="signed weight width")

    def check(self) -> None:
        _check_common(self)

    overq = False


@dataclass(frozen=True)
class OverQArrayParams(Params):
    rows: int = param(8, **_SIZE, doc="array rows R: the OverQ tile (activations per vector)")
    cols: int = param(8, **_SIZE, doc="array columns C: outputs per vector")
    bits: int = param(4, kind="int", allowed=f"{golden.BITS[0]}..{golden.BITS[1]}",
                      doc="activation code width b (fine inputs are 3b bits)")
    weight_bits: int = param(8, kind="int",
                             allowed=f"{golden.WEIGHT_BITS[0]}..{golden.WEIGHT_BITS[1]}",
                             doc="signed weight width")
    cascade: int = param(2, kind="int", allowed=f"0..{golden.MAX_CASCADE}",
                         doc="cascade depth D: an outlier reaches a zero at most D rows below "
                             "(0: no range overwrite)")
    precision: bool = param(False, kind="bool",
                            doc="precision overwrite: a value above a zero gains b fraction bits")

    def check(self) -> None:
        _check_common(self)
        if not 0 <= self.cascade <= golden.MAX_CASCADE:
            raise ParamError(f"parameter cascade={self.cascade} is not allowed; allowed: "
                             f"0..{golden.MAX_CASCADE}")

    overq = True


def _build(p):
    from hdl.overq.array import SystolicArray
    kw = {"cascade": p.cascade, "precision": p.precision} if p.overq else {}
    return SystolicArray(rows=p.rows, cols=p.cols, bits=p.bits, weight_bits=p.weight_bits,
                         overq=p.overq, **kw)


def _top_name(p) -> str:
    size = f"{p.rows}x{p.cols}_b{p.bits}_w{p.weight_bits}"
    if not p.overq:
        return f"int_array_{size}"
    return f"overq_array_{size}_d{p.cascade}" + ("_prec" if p.precision else "")


def _x_max(p) -> int:
    return (1 << (3 * p.bits if p.overq else p.bits)) - 1


def _random_weights(p, rng) -> np.ndarray:
    lo, hi = -(1 << p.weight_bits - 1), (1 << p.weight_bits - 1) - 1
    w = rng.integers(lo, hi + 1, (p.rows, p.cols))
    w[:, 0] = hi                      # extreme columns: the widest sums of either sign
    if p.cols > 1:
        w[:, 1] = lo
    return w.astype(np.int64)


def _overq_tiles(p, rng, n) -> np.ndarray:
    """Post-ReLU-like fine activations with outliers (half-normal and heavy-tailed, zero
    fractions 0.3..0.8, a step that makes a few percent outliers), then corner tiles."""
    R, b = p.rows, p.bits
    m, top = (1 << b) - 1, _x_max(p)
    parts = []
    for k, z in enumerate((0.3, 0.5, 0.8)):
        a = golden.post_relu(rng, (max(n, 3) // 3 + 1, R), zero_fraction=z,
                             tail=None if k % 2 else 3.0)
        parts.append(golden.to_fine(a, step=1.5 / m, bits=b))
    x = np.concatenate(parts)[:max(n, 1)]
    lo_zero = (1 << b - 1) - 1                      # largest fine value that is a zero
    outlier = (m << b) + (1 << b - 1)               # smallest outlier
    corners = [
        np.zeros(R),                                                   # all zero
        rng.integers(1 << b - 1, top + 1, R),                          # zero-free
        np.full(R, top),                                               # all maximal outliers
        np.where(np.arange(R) % 2 == 0, top, 0),                       # outlier, zero, ...
        np.where(np.arange(R) % 3 == 2, lo_zero, outlier),             # runs of outliers
        np.where(np.arange(R) % 2 == 0, rng.integers(0, m << b, R), 0),  # precision pairs
        np.concatenate([np.zeros(R - 1), [top]]),                      # outlier in the last slot
        rng.integers(0, top + 1, R),                                   # uniform over the port
    ]
    return np.concatenate([x, np.stack(corners)]).astype(np.int64)


def _int_vectors(p, rng, n) -> np.ndarray:
    R, top = p.rows, _x_max(p)
    x = rng.integers(0, top + 1, (max(n, 1), R))
    x[rng.random(x.shape) < 0.3] = 0
    corners = [np.zeros(R), np.full(R, top), rng.integers(0, top + 1, R)]
    return np.concatenate([x, np.stack(corners)]).astype(np.int64)


def _stimulus(p, rng: np.random.Generator, n: int) -> dict:
    x = _overq_tiles(p, rng, n) if p.overq else _int_vectors(p, rng, n)
    return {"x": x, "w": _random_weights(p, rng)}


def _check_vectors(p, arrays: dict) -> dict:
    unit = ("non-negative fine 3b-bit activations" if p.overq
            else "non-negative b-bit activation codes")
    x = require(arrays, "x", np.int64, f"[n, rows] = [n, {p.rows}] {unit}")
    w = require(arrays, "w", np.int64, f"[rows, cols] = [{p.rows}, {p.cols}] signed "
                                       f"{p.weight_bits}-bit weights")
    if w.shape[-2:] != (p.rows, p.cols) or w.ndim not in (2, 3):
        raise VectorError(f"array 'w' must have shape [rows, cols] = [{p.rows}, {p.cols}] (or "
                          f"[k, rows, cols] for k weight tiles), not {list(w.shape)}")
    tiles = () if w.ndim == 2 else (w.shape[0],)
    if x.ndim != len(tiles) + 2 or x.shape[:len(tiles)] != tiles or x.shape[-1] != p.rows:
        want = "[n, rows]" if not tiles else "[k, n, rows] (k = w.shape[0])"
        raise VectorError(f"array 'x' must have shape {want} with rows = {p.rows}, not "
                          f"{list(x.shape)}")
    top = _x_max(p)
    if x.min() < 0 or x.max() > top:
        bad = x[(x < 0) | (x > top)].flat[0]
        raise VectorError(f"array 'x' must hold {unit} in 0..{top} (bits={p.bits}), found "
                          f"{int(bad)}")
    lo, hi = -(1 << p.weight_bits - 1), (1 << p.weight_bits - 1) - 1
    if w.min() < lo or w.max() > hi:
        bad = w[(w < lo) | (w > hi)].flat[0]
        raise VectorError(f"array 'w' must hold signed weights in {lo}..{hi} "
                          f"(weight_bits={p.weight_bits}), found {int(bad)}")
    return {"x": x, "w": w}


def _tiles(inputs: dict) -> tuple[np.ndarray, np.ndarray]:
    """(x [k, n, rows], w [k, rows, cols]) whatever the user's shapes."""
    x, w = inputs["x"], inputs["w"]
    return (x[None], w[None]) if w.ndim == 2 else (x, w)


def _golden(p, inputs: dict) -> dict:
    xs, ws = _tiles(inputs)
    if p.overq:
        y = np.stack([golden.array(x, w, p.bits, p.weight_bits, p.cascade, p.precision)
                      for x, w in zip(xs, ws)])
    else:
        y = np.stack([x @ w for x, w in zip(xs, ws)]).astype(np.int64)
    return {"y": y if inputs["w"].ndim == 3 else y[0]}


def _to_beats(p, inputs: dict) -> dict:
    """Per weight tile: ``rows`` weight beats (row 0 first), then its activation vectors."""
    kinds, xs, ws = [], [], []
    for x, w in zip(*_tiles(inputs)):
        kinds += [np.full(p.rows, WEIGHT), np.full(len(x), ACTIVATION)]
        xs += [np.zeros((p.rows, p.rows), np.int64), x]
        ws += [w, np.zeros((len(x), p.cols), np.int64)]
    return {"kind": np.concatenate(kinds).astype(np.int64), "x": np.concatenate(xs),
            "w": np.concatenate(ws)}


def _expected_beats(p, outputs: dict) -> dict:
    return {"y": outputs["y"].reshape(-1, p.cols)}


def _from_beats(p, fields: dict, inputs: dict) -> dict:
    shape = inputs["x"].shape[:-1] + (p.cols,)
    return {"y": np.asarray(fields["y"], dtype=np.int64).reshape(shape)}


def _common(params, **kw) -> Core:
    return Core(
        params=params, build=_build, top_name=_top_name, stimulus=_stimulus,
        check_vectors=_check_vectors, golden=_golden, to_beats=_to_beats,
        expected_beats=_expected_beats, from_beats=_from_beats,
        transactions=lambda p, inputs: int(np.prod(inputs["x"].shape[:-1])),
        out_beats_per_transaction=lambda p: 1, formats=lambda p: [], **kw)


INT_ARRAY = register(_common(
    IntArrayParams,
    name="int-array",
    description="R x C weight-stationary systolic integer array: y = x . W for b-bit activation "
                "codes and signed weights (the OverQ baseline); weights loaded through the stream",
    vectors_doc="x: int64 [n, rows] b-bit activation codes 0..2**bits-1; w: int64 [rows, cols] "
                "signed weight_bits weights (or x [k, n, rows] with w [k, rows, cols]: k weight "
                "tiles, each followed by its vectors)",
    dump_doc="y: int64 [n, cols] = x @ w ([k, n, cols] for k weight tiles)",
))

OVERQ_ARRAY = register(_common(
    OverQArrayParams,
    name="overq-array",
    description="OverQ encoder feeding an R x C weight-stationary systolic array: outliers "
                "overwrite nearby zeros (ALGORITHMS.md §2 proposal); weights loaded through "
                "the stream",
    vectors_doc="x: int64 [n, rows] non-negative fine activations 0..2**(3*bits)-1 (LSB = "
                "step / 2**bits; each row is one tile); w: int64 [rows, cols] signed weight_bits "
                "weights (or x [k, n, rows] with w [k, rows, cols]: k weight tiles)",
    dump_doc="y: int64 [n, cols], accumulators in fine units = decode(encode(x)) @ w "
             "([k, n, cols] for k weight tiles)",
))
