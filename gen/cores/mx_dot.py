"""Registry entry for ``mx-dot``: pairs of MX blocks → one FP32 dot product per group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdl.formats import MX_FORMAT_SETS, MX_FORMATS, MXFormatSet, mx_format
from sim.golden import mx as golden_mx
from sim.vectors.mx_dot import corner_dot_groups, random_dot_groups
from sim.vectors.mx_dot_sets import SEL_KEYS, selected_dot_groups

from ..params import ParamError, Params, param
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

#: Blocks per group in the generated stimulus (user vectors may use any count >= 1).
STIMULUS_BLOCKS = 3


#: ``a_format`` / ``b_format`` values: an MX format, or (both operands the same) a format set
#: whose member each block pair chooses at run time (``a_sel``, ``b_sel``).
DOT_FORMATS = (*MX_FORMATS, *MX_FORMAT_SETS)


@dataclass(frozen=True)
class MXDotParams(DotKnobs, Params):
    a_format: str = param("mxfp8_e4m3", kind="format", choices=DOT_FORMATS,
                          doc="MX format of the A blocks, or a format set (mxfp8, mxfp6, "
                              "mxall; as b_format too) chosen per block by a_sel")
    b_format: str = param("mxfp8_e4m3", kind="format", choices=DOT_FORMATS,
                          doc="MX format of the B blocks, or the format set of a_format, chosen "
                              "per block by b_sel")
    block_size: int = param(32, kind="int", choices=BLOCK_SIZES,
                            doc="elements sharing one E8M0 scale")
    accum: str = accum_param("across blocks: exact = one wide accumulator, one RNE rounding; "
                             "fp32 = each block sum rounded, ordered FP32 adds (MX_SPEC §11)")
    pipeline: str = pipeline_param("register placement: a stage count or a target frequency")
    multipliers: str = multipliers_param()
    adders: str = adders_param()
    muxes: str = muxes_param()
    fifo: str = fifo_param()
    lanes: int | None = lanes_param(
        "element pairs per beat: a block pair takes block_size/lanes beats (every beat carries "
        "the block's scales; last on its final beat), with lanes multipliers; default "
        "block_size")

    @property
    def format_set(self) -> MXFormatSet | None:
        """The format set both operands choose from per block, or ``None``."""
        return MX_FORMAT_SETS.get(self.a_format)

    def check(self):
        sets = [f"{side}_format={getattr(self, f'{side}_format')}" for side in ("a", "b")
                if getattr(self, f"{side}_format") in MX_FORMAT_SETS]
        if sets and self.a_format != self.b_format:
            raise ParamError(f"parameter {sets[0]} needs the same set on the other operand: "
                             f"a format set goes on both (a_format=b_format, one of "
                             f"{', '.join(MX_FORMAT_SETS)}), each operand's format is still "
                             f"chosen per block")
        if sets and self.multipliers == "ecp5-dsp-fp":
            raise ParamError(f"parameter multipliers=ecp5-dsp-fp is not available with "
                             f"{sets[0]} (a set's products are built in logic): use ecp5-dsp "
                             f"or lut")
        super().check()


def _build(p: MXDotParams):
    from hdl.mx.dot import MXDot
    return MXDot(p.a_format, p.b_format, block_size=p.block_size, accum=p.accum,
                 pipeline=p.pipeline_value, multipliers=p.multipliers, adders=p.adders,
                 muxes=p.muxes, fifo=p.fifo, lanes=p.lanes_resolved)


def _top_name(p: MXDotParams) -> str:
    if p.format_set:
        return f"mx_dot_{p.format_set.name}_{p.datapath_tag}"
    a = mx_format(p.a_format).element.name
    b = mx_format(p.b_format).element.name
    return f"mx_dot_{a}_{b}_{p.datapath_tag}"


def _stimulus(p: MXDotParams, rng: np.random.Generator, n: int) -> dict:
    if p.format_set:
        return selected_dot_groups(rng, p.format_set, n, STIMULUS_BLOCKS, p.block_size)
    corner = corner_dot_groups(p.a_format, p.b_format, p.block_size, STIMULUS_BLOCKS)
    rand = random_dot_groups(rng, p.a_format, p.b_format, n, STIMULUS_BLOCKS, p.block_size)
    return {k: np.concatenate([corner[k], rand[k]]) for k in corner}


def _check_vectors(p: MXDotParams, arrays: dict) -> dict:
    fs = p.format_set
    out = {}
    for side in ("a", "b"):
        what = ("element codes of each block's format" if fs
                else f"{mx_format(getattr(p, f'{side}_format')).element.name} codes")
        s = require(arrays, f"{side}_scales", np.uint8, "E8M0 codes [groups, blocks]")
        c = require(arrays, f"{side}_codes", np.uint8, f"{what} [groups, blocks, block_size]")
        if s.ndim != 2:
            raise VectorError(f"array '{side}_scales' must be 2-d [groups, blocks], not shape "
                              f"{s.shape}")
        if c.shape != s.shape + (p.block_size,):
            raise VectorError(f"array '{side}_codes' must have shape [groups, blocks, "
                              f"block_size] = {s.shape + (p.block_size,)}, not {c.shape}")
        if fs:
            out[f"{side}_sel"] = _check_selected_codes(p, arrays, side, s, c)
        else:
            elem = mx_format(getattr(p, f"{side}_format")).element
            if c.size and int(c.max()) >> elem.width:
                raise VectorError(f"array '{side}_codes' holds {int(c.max())}, not a "
                                  f"{elem.name} code (0..{(1 << elem.width) - 1})")
        out[f"{side}_scales"], out[f"{side}_codes"] = s, c
    if out["a_scales"].shape != out["b_scales"].shape:
        raise VectorError(f"a_scales {out['a_scales'].shape} and b_scales "
                          f"{out['b_scales'].shape} must have the same shape")
    return out


def _check_selected_codes(p: MXDotParams, arrays: dict, side: str, scales, codes):
    """With a format set: ``{side}_sel``, checked, and every code a code of its block's
    format."""
    fs = p.format_set
    members = fs.members
    sel = require(arrays, f"{side}_sel", np.uint8,
                  f"index in {fs.name} ({', '.join(f.name for f in members)}) of each "
                  f"block's format [groups, blocks]")
    if sel.shape != scales.shape:
        raise VectorError(f"array '{side}_sel' must have the shape of '{side}_scales' "
                          f"{scales.shape}, not {sel.shape}")
    if sel.size and int(sel.max()) >= len(members):
        raise VectorError(f"array '{side}_sel' holds {int(sel.max())}; {fs.name} has "
                          f"formats 0..{len(members) - 1}: "
                          + ", ".join(f"{k} = {f.name}" for k, f in enumerate(members)))
    for k, f in enumerate(members):
        if (codes[sel == k] >> f.element.width).any():
            raise VectorError(f"array '{side}_codes' holds {int(codes[sel == k].max())} in a "
                              f"block of {f.name} ({side}_sel {k}): not a {f.element.name} "
                              f"code (0..{(1 << f.element.width) - 1})")
    return sel


def _golden(p: MXDotParams, inputs: dict) -> dict:
    if p.format_set:
        return {"result": golden_mx.dot_selected(
            inputs["a_scales"], inputs["a_codes"], inputs["a_sel"], inputs["b_scales"],
            inputs["b_codes"], inputs["b_sel"], p.format_set, mode=p.accum)}
    return {"result": golden_mx.dot(inputs["a_scales"], inputs["a_codes"], inputs["b_scales"],
                                    inputs["b_codes"], p.a_format, p.b_format, mode=p.accum)}


def _to_beats(p: MXDotParams, inputs: dict) -> dict:
    """One beat per ``lanes`` element pairs: a block's beats in order, each with its scales;
    ``last`` on the final beat of a group's final block."""
    groups, blocks = inputs["a_scales"].shape
    beats = p.beats_per_block
    last = np.zeros((groups, blocks, beats), dtype=np.uint8)
    last[:, -1, -1] = 1
    # With a format set every beat also carries its block's format indices.
    sels = {key: np.repeat(inputs[key].reshape(-1), beats)
            for key in SEL_KEYS if p.format_set}
    return {
        "a_scale": np.repeat(inputs["a_scales"].reshape(-1), beats),
        "b_scale": np.repeat(inputs["b_scales"].reshape(-1), beats),
        "a_codes": inputs["a_codes"].reshape(-1, p.lanes_resolved),
        "b_codes": inputs["b_codes"].reshape(-1, p.lanes_resolved),
        **sels,
        "last": last.reshape(-1),
    }


def _expected_beats(p: MXDotParams, outputs: dict) -> dict:
    return {"result": outputs["result"].reshape(-1)}


def _from_beats(p: MXDotParams, fields: dict, inputs: dict) -> dict:
    return {"result": fields["result"].astype(np.uint32)}


CORE = register(Core(
    name="mx-dot",
    description="dot product of MX vectors: a pair of MX blocks per beat, one FP32 result per "
                "group (MX_SPEC §6, §11)",
    params=MXDotParams,
    build=_build,
    top_name=_top_name,
    stimulus=_stimulus,
    check_vectors=_check_vectors,
    golden=_golden,
    to_beats=_to_beats,
    expected_beats=_expected_beats,
    from_beats=_from_beats,
    transactions=lambda p, inputs: inputs["a_scales"].shape[0],
    out_beats_per_transaction=lambda p: 1,
    vectors_doc="a_scales, b_scales: uint8 [groups, blocks] E8M0 codes; a_codes, b_codes: "
                "uint8 [groups, blocks, block_size] element codes; a group's blocks are "
                "accumulated into one result; with a format set (a_format=b_format=mxfp8, "
                "mxfp6 or mxall) also a_sel, b_sel: uint8 [groups, blocks], each block's "
                "format as its index in the set",
    dump_doc="result: uint32 [groups] FP32 bit patterns",
    formats=lambda p: (sorted(f.name for f in p.format_set.members) if p.format_set
                       else sorted({p.a_format, p.b_format})) + ["e8m0"],
))
