"""The datapath parameters mx-dot and mx-array share (each mx-array PE is the mx-dot datapath):
``accum``, ``pipeline``, ``multipliers``, ``adders``, ``muxes``, ``fifo``, ``lanes``, their check,
and the module-name suffix they make."""

from __future__ import annotations

from ..params import ParamError, param
from .mx_blocking import BlockLanes

PIPELINE_ALLOWED = ("adder-tree register stages 0..log2(block_size)+1, or a target clock "
                    "'<N>mhz'")


def accum_param(doc: str):
    return param("exact", kind="enum", choices=("exact", "fp32"), doc=doc)


def pipeline_param(doc: str):
    return param("200mhz", kind="str", allowed=PIPELINE_ALLOWED, doc=doc)


def multipliers_param():
    return param("dsp", kind="enum", choices=("dsp", "lut", "ecp5-dsp", "ecp5-dsp-fp"),
                 doc="INT8 x INT8 products in DSP blocks (dsp: inferred, any device; "
                     "ecp5-dsp: ECP5 MULT18X18D with its input and output registers, ECP5 "
                     "targets only) or in logic (lut); other pairs use logic, except with "
                     "ecp5-dsp-fp: as ecp5-dsp, and the products of E3M2, E2M3, E2M1 and INT8 "
                     "magnitudes in a MULT18X18D per lane too (not E4M3 or E5M2)")


def adders_param():
    return param("generic", kind="enum", choices=("generic", "ecp5-ccu2c"),
                 doc="adders (generic: inferred, any device; ecp5-ccu2c: ECP5 CCU2C carry "
                     "chains, ECP5 targets only, that apply the product signs in the block's "
                     "first adder level and clear the exact accumulator's pieces: fewer LUT4s, "
                     "faster, one cycle more latency with accum=exact)")


def muxes_param():
    return param("generic", kind="enum", choices=("generic", "ecp5-pfumx"),
                 doc="the exact accumulator's candidate chain (accum=exact only; generic: "
                     "inferred 2:1 muxes, one piece per stage, any device; ecp5-pfumx: 4:1 "
                     "muxes of two LUT4s and the slice's PFUMX, three pieces per stage, ECP5 "
                     "targets only: fewer LUT4s, one cycle more latency)")


def fifo_param():
    return param("generic", kind="enum", choices=("generic", "ecp5-ebr"),
                 doc="the result FIFO (generic: an inferred memory behind an output register, "
                     "LUT RAM on ECP5, any device; ecp5-ebr: an ECP5 DP16KD block RAM whose own "
                     "output register drives the output, ECP5 targets only: no LUT4s for the "
                     "FIFO's read mux and output register, one cycle more latency)")


def lanes_param(doc: str):
    return param(None, kind="int", optional=True, doc=doc,
                 allowed="power of two in 2..block_size (default: block_size, one block pair "
                         "per beat)")


class DotKnobs(BlockLanes):
    """Methods of the parameter dataclasses with ``block_size``, ``accum``, ``pipeline`` and
    ``multipliers``, ``adders``, ``muxes``, ``fifo``, ``lanes`` fields."""

    block_size: int
    accum: str
    pipeline: str
    multipliers: str
    adders: str
    muxes: str
    fifo: str
    lanes: int | None
    #: The block's adder tree needs two products at least.
    MIN_LANES = 2

    @property
    def beats_per_block(self) -> int:
        return self.block_size // self.lanes_resolved

    def check(self):
        from hdl.mx.dot import resolve_pipeline
        super().check()
        try:
            resolve_pipeline(self.pipeline, self.lanes_resolved)
        except ValueError as e:
            raise ParamError(f"parameter {e}") from None
        if self.muxes != "generic" and self.accum != "exact":
            raise ParamError(f"parameter muxes={self.muxes} builds the exact accumulator's "
                             f"candidate chain; with accum={self.accum} there is none: use "
                             f"muxes=generic")
        if self.multipliers == "ecp5-dsp-fp":
            from hdl.formats import MX_FORMATS, mx_format
            from hdl.mx.block_dot import DSP_MAGNITUDE_BITS, too_wide_for_dsp

            formats = {f"{side}_format": getattr(self, f"{side}_format") for side in ("a", "b")}
            for name, bits in too_wide_for_dsp(**{k: mx_format(f).element
                                                  for k, f in formats.items()})[:1]:
                fits = ", ".join(f for f in MX_FORMATS
                                 if not too_wide_for_dsp(x=mx_format(f).element))
                raise ParamError(
                    f"parameter multipliers=ecp5-dsp-fp is not allowed with "
                    f"{name}={formats[name]}: its element magnitudes need {bits} bits, a "
                    f"MULT18X18D operand takes {DSP_MAGNITUDE_BITS}; formats that fit: "
                    f"{fits} (or use ecp5-dsp, which keeps the other pairs' products in logic)")

    @property
    def pipeline_value(self) -> int | str:
        """``pipeline`` as the generators take it: a stage count (int) or a frequency text."""
        return int(self.pipeline) if self.pipeline.strip().isdigit() else self.pipeline

    @property
    def datapath_tag(self) -> str:
        """Module-name suffix: block size (and lanes below it), accumulation, register
        placement, multipliers, adders, muxes, result FIFO."""
        pipe = self.pipeline.strip().lower().replace(" ", "")
        pipe = f"p{pipe}" if pipe.isdigit() else pipe
        mul = {"lut": "_lutmul", "ecp5-dsp": "_ecp5dsp",
               "ecp5-dsp-fp": "_ecp5dspfp"}.get(self.multipliers, "")
        add = "_ccu2c" if self.adders == "ecp5-ccu2c" else ""
        mux = "_pfumx" if self.muxes == "ecp5-pfumx" else ""
        ram = "_ebr" if self.fifo == "ecp5-ebr" else ""
        lanes = f"_l{self.lanes_resolved}" if self.beats_per_block > 1 else ""
        return f"b{self.block_size}{lanes}_{self.accum}_{pipe}{mul}{add}{mux}{ram}"
