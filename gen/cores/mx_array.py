"""Registry entry for ``mx-array``: an R x C array of MX block-dot PEs computing C = A . B.

The host side of tiling lives here: a matrix product larger than the array is cut into
``rows x cols`` output tiles, each streamed as its K blocks (A rows and B columns past the edge
padded with zero blocks, whose results are dropped). ``verify --vectors`` takes whole matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdl.formats import mx_format
from sim.golden import mx as golden_mx
from sim.vectors.mx_dot import random_dot_groups

from ..params import Params, param
from ..registry import Core, VectorError, register
from .mx_blocking import BLOCK_SIZES, require
from .mx_dot_knobs import (
    DotKnobs,
    accum_param,
    adders_param,
    fifo_param,
    lanes_param,
    multipliers_param,
    muxes_param,
    pipeline_param,
)

ARRAY_SIZES = tuple(range(1, 17))
#: K blocks of the generated stimulus (user vectors may use any count >= 1).
STIMULUS_K_BLOCKS = 3
#: Scale code of padding blocks (any finite scale works: their codes are all zero).
PAD_SCALE = 127


@dataclass(frozen=True)
class MXArrayParams(DotKnobs, Params):
    # Default 2x2: with exact accumulators and DSP multipliers it fits an ECP5-85F (128 of 156
    # DSPs); 4x4 INT8 needs multipliers=lut there (see the README's numbers).
    rows: int = param(2, kind="int", choices=ARRAY_SIZES, doc="PE rows (A rows per tile)")
    cols: int = param(2, kind="int", choices=ARRAY_SIZES, doc="PE columns (B columns per tile)")
    a_format: str = param("mxint8", kind="format", doc="MX format of A (blocked along K)")
    b_format: str = param("mxint8", kind="format", doc="MX format of B (blocked along K)")
    block_size: int = param(32, kind="int", choices=BLOCK_SIZES,
                            doc="elements sharing one E8M0 scale")
    accum: str = accum_param("per output across K blocks, as for mx-dot (MX_SPEC §11)")
    pipeline: str = pipeline_param("register placement in every PE, as for mx-dot")
    multipliers: str = multipliers_param()
    adders: str = adders_param()
    muxes: str = muxes_param()
    fifo: str = fifo_param()
    lanes: int | None = lanes_param(
        "element pairs per PE per beat: a K step takes block_size/lanes beats, with lanes "
        "multipliers per PE; default block_size (one block pair per PE per cycle)")


def _build(p: MXArrayParams):
    from hdl.mx.array import MXArray
    return MXArray(p.rows, p.cols, p.a_format, p.b_format, block_size=p.block_size,
                   accum=p.accum, pipeline=p.pipeline_value, multipliers=p.multipliers,
                   adders=p.adders, muxes=p.muxes, fifo=p.fifo, lanes=p.lanes_resolved)


def _top_name(p: MXArrayParams) -> str:
    a = mx_format(p.a_format).element.name
    b = mx_format(p.b_format).element.name
    return f"mx_array_{p.rows}x{p.cols}_{a}_{b}_{p.datapath_tag}"


def _stimulus(p: MXArrayParams, rng: np.random.Generator, n: int) -> dict:
    """About ``n`` tiles: M and N one short of whole tiles (so edge padding is exercised)."""
    side = max(1, int(np.ceil(np.sqrt(max(n, 1)))))
    m_rows = max(1, side * p.rows - (1 if p.rows > 1 else 0))
    n_cols = max(1, side * p.cols - (1 if p.cols > 1 else 0))
    k = STIMULUS_K_BLOCKS
    a = random_dot_groups(rng, p.a_format, p.b_format, m_rows, k, p.block_size)
    b = random_dot_groups(rng, p.a_format, p.b_format, n_cols, k, p.block_size)
    return {"a_scales": a["a_scales"], "a_codes": a["a_codes"],
            "b_scales": np.ascontiguousarray(b["b_scales"].T),
            "b_codes": np.ascontiguousarray(b["b_codes"].transpose(1, 0, 2))}


def _check_vectors(p: MXArrayParams, arrays: dict) -> dict:
    a_s = require(arrays, "a_scales", np.uint8, "E8M0 codes of A [M, K blocks]")
    b_s = require(arrays, "b_scales", np.uint8, "E8M0 codes of B [K blocks, N]")
    a_c = require(arrays, "a_codes", np.uint8, "element codes of A [M, K blocks, block_size]")
    b_c = require(arrays, "b_codes", np.uint8, "element codes of B [K blocks, N, block_size]")
    if a_s.ndim != 2 or b_s.ndim != 2:
        raise VectorError(f"a_scales must be [M, K blocks] and b_scales [K blocks, N], not "
                          f"{a_s.shape} and {b_s.shape}")
    if a_s.shape[1] != b_s.shape[0]:
        raise VectorError(f"A has {a_s.shape[1]} K blocks but B has {b_s.shape[0]} "
                          f"(a_scales {a_s.shape}, b_scales {b_s.shape})")
    for name, c, s in (("a_codes", a_c, a_s), ("b_codes", b_c, b_s)):
        if c.shape != s.shape + (p.block_size,):
            raise VectorError(f"array {name!r} must have shape {s.shape + (p.block_size,)}, "
                              f"not {c.shape}")
    for name, c, fmt in (("a_codes", a_c, p.a_format), ("b_codes", b_c, p.b_format)):
        elem = mx_format(fmt).element
        if int(c.max()) >> elem.width:
            raise VectorError(f"array {name!r} holds {int(c.max())}, not a {elem.name} code "
                              f"(0..{(1 << elem.width) - 1})")
    return {"a_scales": a_s, "a_codes": a_c, "b_scales": b_s, "b_codes": b_c}


def _golden(p: MXArrayParams, inputs: dict) -> dict:
    """``result`` [M, N]; ``padded``: C of the zero-padded matrices the array actually computes
    (a padding result is +0.0, or NaN where the real row or column holds a NaN)."""
    a_s, a_c, b_s, b_c = _padded(p, inputs)
    shape = (a_s.shape[0], b_s.shape[1]) + a_s.shape[1:]
    padded = golden_mx.dot(
        np.broadcast_to(a_s[:, None], shape), np.broadcast_to(a_c[:, None], shape + a_c.shape[2:]),
        np.broadcast_to(b_s.T[None], shape),
        np.broadcast_to(b_c.transpose(1, 0, 2)[None], shape + b_c.shape[2:]),
        p.a_format, p.b_format, mode=p.accum)
    m_rows, n_cols = inputs["a_scales"].shape[0], inputs["b_scales"].shape[1]
    return {"result": np.ascontiguousarray(padded[:m_rows, :n_cols]), "padded": padded}


def _tiles(p: MXArrayParams, inputs: dict) -> tuple[int, int]:
    return (-(-inputs["a_scales"].shape[0] // p.rows), -(-inputs["b_scales"].shape[1] // p.cols))


def _pad(a: np.ndarray, axis: int, to: int, fill: int) -> np.ndarray:
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, to - a.shape[axis])
    return np.pad(a, pad, constant_values=fill)


def _padded(p: MXArrayParams, inputs: dict):
    """A and B padded with zero blocks to whole tiles."""
    tm, tn = _tiles(p, inputs)
    return (_pad(inputs["a_scales"], 0, tm * p.rows, PAD_SCALE),    # [tm*R, KB]
            _pad(inputs["a_codes"], 0, tm * p.rows, 0),             # [tm*R, KB, bs]
            _pad(inputs["b_scales"], 1, tn * p.cols, PAD_SCALE),    # [KB, tn*C]
            _pad(inputs["b_codes"], 1, tn * p.cols, 0))             # [KB, tn*C, bs]


def _to_beats(p: MXArrayParams, inputs: dict) -> dict:
    tm, tn = _tiles(p, inputs)
    R, C, ln, nb = p.rows, p.cols, p.lanes_resolved, p.beats_per_block
    a_s, a_c, b_s, b_c = _padded(p, inputs)
    kb = a_s.shape[1]
    # Beat order: tile (i, j) row-major, then k, then the block's beats (lanes elements each).
    # Per beat: A[i*R:(i+1)*R, k], B[k, j*C:(j+1)*C] (that beat's elements, all the scales).
    shape = (tm, tn, kb, nb)
    a_s_t = a_s.reshape(tm, R, kb).transpose(0, 2, 1)                  # [tm, KB, R]
    a_c_t = a_c.reshape(tm, R, kb, nb, ln).transpose(0, 2, 3, 1, 4)    # [tm, KB, nb, R, ln]
    b_s_t = b_s.reshape(kb, tn, C).transpose(1, 0, 2)                  # [tn, KB, C]
    b_c_t = b_c.reshape(kb, tn, C, nb, ln).transpose(1, 0, 3, 2, 4)    # [tn, KB, nb, C, ln]
    last = np.zeros(shape, dtype=np.uint8)
    last[:, :, -1, -1] = 1
    return {
        "a_scale": np.broadcast_to(a_s_t[:, None, :, None], shape + (R,)).reshape(-1, R),
        "a_codes": np.broadcast_to(a_c_t[:, None], shape + (R, ln)).reshape(-1, R * ln),
        "b_scale": np.broadcast_to(b_s_t[None, :, :, None], shape + (C,)).reshape(-1, C),
        "b_codes": np.broadcast_to(b_c_t[None], shape + (C, ln)).reshape(-1, C * ln),
        "last": last.reshape(-1),
    }


def _expected_beats(p: MXArrayParams, outputs: dict) -> dict:
    full = outputs["padded"]
    tm, tn = full.shape[0] // p.rows, full.shape[1] // p.cols
    tiles = full.reshape(tm, p.rows, tn, p.cols).transpose(0, 2, 1, 3)
    return {"result": tiles.reshape(tm * tn, p.rows * p.cols)}


def _from_beats(p: MXArrayParams, fields: dict, inputs: dict) -> dict:
    tm, tn = _tiles(p, inputs)
    m_rows, n_cols = inputs["a_scales"].shape[0], inputs["b_scales"].shape[1]
    tiles = fields["result"].astype(np.uint32).reshape(tm, tn, p.rows, p.cols)
    full = tiles.transpose(0, 2, 1, 3).reshape(tm * p.rows, tn * p.cols)
    return {"result": np.ascontiguousarray(full[:m_rows, :n_cols])}


CORE = register(Core(
    name="mx-array",
    description="R x C output-stationary array of MX block-dot PEs: C = A . B, FP32 out "
                "(host tiles larger matrices)",
    params=MXArrayParams,
    build=_build,
    top_name=_top_name,
    stimulus=_stimulus,
    check_vectors=_check_vectors,
    golden=_golden,
    to_beats=_to_beats,
    expected_beats=_expected_beats,
    from_beats=_from_beats,
    transactions=lambda p, inputs: int(np.prod(_tiles(p, inputs))),
    out_beats_per_transaction=lambda p: 1,
    vectors_doc="a_scales: uint8 [M, K blocks]; a_codes: uint8 [M, K blocks, block_size]; "
                "b_scales: uint8 [K blocks, N]; b_codes: uint8 [K blocks, N, block_size] "
                "(A blocked along its rows' K, B along its columns' K)",
    dump_doc="result: uint32 [M, N] FP32 bit patterns of C = A . B",
    formats=lambda p: sorted({p.a_format, p.b_format}) + ["e8m0"],
))
