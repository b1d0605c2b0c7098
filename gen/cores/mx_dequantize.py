"""Registry entry for ``mx-dequantize``: one E8M0 scale + element codes → FP32 bit patterns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdl.formats import mx_format
from sim.golden import mx as golden_mx
from sim.vectors.mx import corner_mx_blocks, random_mx_blocks

from ..params import Params, param
from ..registry import Core, VectorError, register
from .mx_blocking import BLOCK_SIZES, LANES_ALLOWED, BlockLanes, require


@dataclass(frozen=True)
class MXDequantizeParams(BlockLanes, Params):
    format: str = param("mxfp8_e4m3", kind="format", doc="element format of the MX input")
    block_size: int = param(32, kind="int", choices=BLOCK_SIZES,
                            doc="elements sharing one E8M0 scale")
    lanes: int | None = param(None, kind="int", allowed=LANES_ALLOWED, optional=True,
                              doc="FP32 values per output beat (a block leaves in "
                                  "block_size/lanes beats); default block_size")


def _build(p: MXDequantizeParams):
    from hdl.mx.dequantize import MXDequantize
    return MXDequantize(p.format, block_size=p.block_size, lanes=p.lanes_resolved)


def _top_name(p: MXDequantizeParams) -> str:
    elem = mx_format(p.format).element.name
    return f"mx_dequantize_{elem}_b{p.block_size}_l{p.lanes_resolved}"


def _stimulus(p: MXDequantizeParams, rng: np.random.Generator, n: int) -> dict:
    cs, cc = corner_mx_blocks(p.format, p.block_size)
    rs, rc = random_mx_blocks(rng, p.format, n, p.block_size)
    return {"scales": np.concatenate([cs, rs]),
            "codes": np.concatenate([cc, rc]).reshape(-1)}


def _check_vectors(p: MXDequantizeParams, arrays: dict) -> dict:
    scales = require(arrays, "scales", np.uint8, "E8M0 codes, one per block: [..., blocks]")
    codes = require(arrays, "codes", np.uint8,
                    "element codes, LSB-aligned: [..., blocks*block_size]")
    want = scales.shape[:-1] + (scales.shape[-1] * p.block_size,)
    if codes.shape != want:
        raise VectorError(f"array 'codes' must have shape {want} for 'scales' of shape "
                          f"{scales.shape} and block_size {p.block_size}, not {codes.shape}")
    width = mx_format(p.format).element.width
    if int(codes.max()) >= 1 << width:
        raise VectorError(f"array 'codes' holds {int(codes.max())}, wider than the "
                          f"{width}-bit {p.format} element codes (0..{(1 << width) - 1})")
    return {"scales": scales, "codes": codes}


def _golden(p: MXDequantizeParams, inputs: dict) -> dict:
    scales = inputs["scales"].reshape(-1)
    codes = inputs["codes"].reshape(-1, p.block_size)
    bits = golden_mx.dequantize_blocks(scales, codes, p.format)
    return {"values": bits.reshape(inputs["codes"].shape).view(np.float32)}


def _to_beats(p: MXDequantizeParams, inputs: dict) -> dict:
    return {"scale": inputs["scales"].reshape(-1),
            "codes": inputs["codes"].reshape(-1, p.block_size)}


def _expected_beats(p: MXDequantizeParams, outputs: dict) -> dict:
    return {"values": outputs["values"].view(np.uint32).reshape(-1, p.lanes_resolved)}


def _from_beats(p: MXDequantizeParams, fields: dict, inputs: dict) -> dict:
    bits = fields["values"].astype(np.uint32).reshape(inputs["codes"].shape)
    return {"values": bits.view(np.float32)}


CORE = register(Core(
    name="mx-dequantize",
    description="one E8M0 scale + element codes per MX block -> FP32 values (IEEE bit patterns)",
    params=MXDequantizeParams,
    build=_build,
    top_name=_top_name,
    stimulus=_stimulus,
    check_vectors=_check_vectors,
    golden=_golden,
    to_beats=_to_beats,
    expected_beats=_expected_beats,
    from_beats=_from_beats,
    transactions=lambda p, inputs: int(inputs["scales"].size),
    out_beats_per_transaction=lambda p: p.block_size // p.lanes_resolved,
    vectors_doc="scales: uint8 [..., blocks] E8M0 codes; codes: uint8 [..., blocks*block_size] "
                "element codes, LSB-aligned",
    dump_doc="values: float32 [..., blocks*block_size] (exact bit patterns; NaN is 0x7FC00000)",
    formats=lambda p: [p.format, "e8m0"],
))
