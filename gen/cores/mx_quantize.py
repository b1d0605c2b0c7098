"""Registry entry for ``mx-quantize``: FP32 values → one E8M0 scale + element codes per block."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdl.formats import mx_format
from sim.golden import mx as golden_mx
from sim.vectors.mx import corner_fp32_blocks, random_fp32_blocks

from ..params import Params, param
from ..registry import Core, register
from .mx_blocking import BLOCK_SIZES, LANES_ALLOWED, BlockLanes, pad_last_axis, require


@dataclass(frozen=True)
class MXQuantizeParams(BlockLanes, Params):
    format: str = param("mxfp8_e4m3", kind="format", doc="element format of the MX output")
    block_size: int = param(32, kind="int", choices=BLOCK_SIZES,
                            doc="elements sharing one E8M0 scale")
    rounding: str = param("even", kind="enum", choices=("even", "nearest"),
                          doc="element rounding: even = RNE, nearest = ties away from zero")
    lanes: int | None = param(None, kind="int", allowed=LANES_ALLOWED, optional=True,
                              doc="FP32 values per input beat (a block spans block_size/lanes "
                                  "beats); default block_size")


def _build(p: MXQuantizeParams):
    from hdl.mx.quantize import MXQuantize
    return MXQuantize(p.format, block_size=p.block_size, rounding=p.rounding,
                      lanes=p.lanes_resolved)


def _top_name(p: MXQuantizeParams) -> str:
    elem = mx_format(p.format).element.name
    return f"mx_quantize_{elem}_b{p.block_size}_l{p.lanes_resolved}_{p.rounding}"


def _stimulus(p: MXQuantizeParams, rng: np.random.Generator, n: int) -> dict:
    blocks = np.concatenate([corner_fp32_blocks(p.format, p.block_size),
                             random_fp32_blocks(rng, p.format, n, p.block_size)])
    return {"x": blocks.view(np.float32)}


def _check_vectors(p: MXQuantizeParams, arrays: dict) -> dict:
    x = require(arrays, "x", np.float32, "float32 values, any shape, blocked along the last axis")
    return {"x": x}


def _golden(p: MXQuantizeParams, inputs: dict) -> dict:
    q = golden_mx.quantize(inputs["x"], p.format, block_size=p.block_size, axis=-1,
                           rounding=p.rounding)
    return {"scales": q.scales, "codes": q.codes}


def _blocks(p: MXQuantizeParams, x: np.ndarray) -> np.ndarray:
    return pad_last_axis(np.ascontiguousarray(x), p.block_size).view(np.uint32).reshape(
        -1, p.block_size)


def _to_beats(p: MXQuantizeParams, inputs: dict) -> dict:
    return {"values": _blocks(p, inputs["x"]).reshape(-1, p.lanes_resolved)}


def _expected_beats(p: MXQuantizeParams, outputs: dict) -> dict:
    return {"scale": outputs["scales"].reshape(-1),
            "codes": outputs["codes"].reshape(-1, p.block_size)}


def _from_beats(p: MXQuantizeParams, fields: dict, inputs: dict) -> dict:
    lead = inputs["x"].shape[:-1]
    nb = -(-inputs["x"].shape[-1] // p.block_size)
    return {"scales": fields["scale"].astype(np.uint8).reshape(*lead, nb),
            "codes": fields["codes"].astype(np.uint8).reshape(*lead, nb * p.block_size)}


def _transactions(p: MXQuantizeParams, inputs: dict) -> int:
    return _blocks(p, inputs["x"]).shape[0]


CORE = register(Core(
    name="mx-quantize",
    description="FP32 values -> one E8M0 scale + element codes per MX block (OCP MX v1.0 §6.3)",
    params=MXQuantizeParams,
    build=_build,
    top_name=_top_name,
    stimulus=_stimulus,
    check_vectors=_check_vectors,
    golden=_golden,
    to_beats=_to_beats,
    expected_beats=_expected_beats,
    from_beats=_from_beats,
    transactions=_transactions,
    out_beats_per_transaction=lambda p: 1,
    vectors_doc="x: float32, any shape; blocks run along the last axis, a partial last block is "
                "zero-padded",
    dump_doc="scales: uint8 [..., blocks]; codes: uint8 [..., blocks*block_size] (padded)",
    formats=lambda p: [p.format, "e8m0"],
))
