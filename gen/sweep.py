"""Design-space sweeps: synthesize (and optionally verify) a core over a parameter grid on Dask.

Each grid point is one Dask task. By default a local cluster is started (one single-threaded
worker process per core, so the WebAssembly tools run in parallel); ``scheduler`` connects to an
existing cluster instead (``tcp://host:8786``), which is how a sweep goes past one machine. The
workers must have narrowgen installed, and ``cache_dir`` should be a path they all see (or each
keeps its own cache).

Every tool step is cached by a content hash of (Verilog, target, seed, tool versions) in
``boards.synth``, so rerunning a sweep, or extending its grid, repeats no work. A point that fails
(illegal parameter combination, design does not fit, tool error) is recorded with its error and
the sweep goes on.

Outputs in ``out_dir``: ``sweep.json`` (every point's report), ``sweep.csv`` (one row per point)
and ``sweep.png`` (LUT4 vs median Fmax, one marker per point, labelled by the swept parameters).
"""

from __future__ import annotations

import csv
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

from .params import ParamError

__all__ = ["SweepError", "parse_grid", "expand_grid", "run_sweep", "CSV_COLUMNS"]

CSV_COLUMNS = ["point", "status", "lut4", "carry", "ff", "dsp", "bram", "fmax_median_mhz",
               "fmax_min_mhz", "harness", "fallback_seeds", "verified", "cached_steps", "wall_s",
               "error"]


class SweepError(ValueError):
    """A bad grid or sweep option (one line)."""


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``["block_size=16,32", "format=mxint8"]`` → ``{"block_size": ["16", "32"], ...}``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise SweepError(f"--grid must look like KEY=V1,V2,..., not {item!r}")
        key, values = item.split("=", 1)
        key = key.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not vals:
            raise SweepError(f"--grid {key}= lists no values")
        if key in grid:
            raise SweepError(f"--grid {key} given twice")
        grid[key] = vals
    if not grid:
        raise SweepError("a sweep needs at least one --grid KEY=V1,V2,...")
    return grid


def expand_grid(grid: dict[str, list[str]], fixed: list[str] | None = None,
                points: list[dict[str, str]] | None = None) -> list[list[str]]:
    """Cartesian product of the grid, as ``KEY=VALUE`` assignment lists (fixed ones first).

    ``points`` picks grid points instead of the whole product, each a ``{key: value}`` over the
    keys of ``grid`` (e.g. a diagonal of format pairs); one off the grid is a :class:`SweepError`.
    """
    keys = list(grid)
    if points is None:
        combos = itertools.product(*(grid[k] for k in keys))
    else:
        for point in points:
            if set(point) != set(keys) or any(point[k] not in grid[k] for k in keys):
                raise SweepError(f"sweep point {point!r} is not on the grid {grid!r}")
        combos = [tuple(point[k] for k in keys) for point in points]
    return [list(fixed or []) + [f"{k}={v}" for k, v in zip(keys, combo)] for combo in combos]


@dataclass(frozen=True)
class PointJob:
    core: str
    assignments: tuple[str, ...]
    swept: tuple[str, ...]
    target: str
    seeds: int
    freq_mhz: float | None
    work_dir: str
    cache_dir: str
    verify_vectors: int


def run_point(job: PointJob) -> dict:
    """One grid point, run on a Dask worker: emit, synthesize, optionally verify. Never raises."""
    from boards.synth import SynthError, synthesize

    from .emit import emit
    from .params import parse_assignments
    from .registry import get_core

    t0 = time.perf_counter()
    label = " ".join(job.swept)
    row: dict = {"point": label, "assignments": list(job.assignments), "status": "ok",
                 "error": None}
    try:
        core = get_core(job.core)
        params = parse_assignments(core.params, job.assignments)
        emitted = emit(core, params)
        report = synthesize(emitted.component, emitted.top, job.target, seeds=job.seeds,
                            freq_mhz=job.freq_mhz, work_dir=Path(job.work_dir) / emitted.top,
                            cache_dir=Path(job.cache_dir),
                            meta={"core": core.name, "params": params.resolved()})
        row["report"] = report
        if job.verify_vectors:
            from .verify import verify
            r = verify(core, params, sim="verilator", n=job.verify_vectors, seed=1,
                       work_dir=Path(job.work_dir))
            row["verified"] = r.passed
            if not r.passed:
                row["status"] = "verify-failed"
                row["error"] = f"{r.mismatches} of {r.transactions} vectors mismatched"
    except (ParamError, SynthError, ValueError) as exc:
        row["status"] = "failed"
        row["error"] = str(exc).splitlines()[0]
    except Exception as exc:  # a sweep must go on: record the unexpected too
        row["status"] = "failed"
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    row["wall_s"] = round(time.perf_counter() - t0, 2)
    return row


def _fallback_seeds(rep: dict) -> list[int]:
    """Seeds of a synthesis report rerouted with the fallback router (they report a lower
    Fmax, so tables name them)."""
    return [r["seed"] for r in rep.get("pnr_runs") or [] if r["fallback"]]


def synth_fields(point: dict) -> dict:
    """The synthesis numbers of one :func:`run_sweep` point, as the bench reports keep them."""
    rep = point.get("report") or {}
    cells = rep.get("cells") or {}
    fmax = rep.get("fmax_mhz") or {}
    return {"status": point["status"], "error": point.get("error"),
            "lut4": cells.get("lut4"), "carry": cells.get("carry"), "ff": cells.get("ff"),
            "dsp": cells.get("dsp"), "bram": cells.get("bram"),
            "fmax_seeds_mhz": fmax.get("per_seed"), "fmax_median_mhz": fmax.get("median"),
            "harness": rep.get("harness"), "critical_path": rep.get("critical_path"),
            "fallback_seeds": _fallback_seeds(rep),
            "assignments": point.get("assignments")}


def _csv_row(row: dict) -> dict:
    rep = row.get("report") or {}
    cells = rep.get("cells") or {}
    fmax = rep.get("fmax_mhz") or {}
    steps = rep.get("steps") or []
    return {
        "point": row["point"], "status": row["status"],
        "lut4": cells.get("lut4", cells.get("lut")), "carry": cells.get("carry"),
        "ff": cells.get("ff"), "dsp": cells.get("dsp", cells.get("dsp48")),
        "bram": cells.get("bram"), "fmax_median_mhz": fmax.get("median"),
        "fmax_min_mhz": fmax.get("min"), "harness": rep.get("harness"),
        "fallback_seeds": " ".join(map(str, _fallback_seeds(rep))),
        "verified": row.get("verified"),
        "cached_steps": f"{sum(1 for s in steps if s.get('cached'))}/{len(steps)}",
        "wall_s": row.get("wall_s"), "error": row.get("error"),
    }


def _plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    pts = [(r["lut4"], r["fmax_median_mhz"], r["point"]) for r in map(_csv_row, rows)
           if r["lut4"] is not None and r["fmax_median_mhz"] is not None]
    for x, y, label in pts:
        ax.scatter([x], [y], s=30)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("LUT4")
    ax.set_ylabel("Fmax, median of seeds (MHz)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    if not pts:
        ax.text(0.5, 0.5, "no point has both LUT4 and Fmax\n(failed points, or a Yosys-only "
                "target)", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_sweep(core: str, grid: dict[str, list[str]], target: str, *, fixed: list[str] | None = None,
              seeds: int = 1, freq_mhz: float | None = None, scheduler: str | None = None,
              out_dir: Path = Path("build/sweep"), work_dir: Path = Path("build/synth"),
              cache_dir: Path = Path("build/synth_cache"), verify_vectors: int = 0,
              workers: int | None = None, progress: bool = True,
              points: list[dict[str, str]] | None = None) -> list[dict]:
    """Run the sweep and write ``sweep.json``, ``sweep.csv`` and ``sweep.png`` to ``out_dir``.

    ``points`` (optional) lists the grid points to run instead of the whole cartesian product
    (see :func:`expand_grid`).
    """
    from distributed import Client, LocalCluster, as_completed

    keys = list(grid)
    combos = expand_grid(grid, fixed, points)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for assignments in combos:
        swept = tuple(a for a in assignments if a.split("=", 1)[0] in keys)
        jobs.append(PointJob(core, tuple(assignments), swept, target, seeds, freq_mhz,
                             str(Path(work_dir).resolve()), str(Path(cache_dir).resolve()),
                             verify_vectors))

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise SweepError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    else:
        import os
        n = workers or max(1, min(len(jobs), os.cpu_count() or 1))
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        client = Client(cluster)
    try:
        futures = client.map(run_point, jobs, pure=False)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(futures), unit="point", desc=f"sweep {core} on {target}")
        for fut in as_completed(futures):
            row = fut.result()
            if bar is not None:
                bar.set_postfix_str(f"{row['point']}: {row['status']}")
                bar.update(1)
        if bar is not None:
            bar.close()
        rows = [fut.result() for fut in futures]        # grid order
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    (out_dir / "sweep.json").write_text(json.dumps(
        {"core": core, "target": target, "grid": grid, "fixed": fixed or [], "seeds": seeds,
         "points": rows}, indent=2) + "\n")
    with open(out_dir / "sweep.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for row in rows:
            w.writerow(_csv_row(row))
    _plot(rows, out_dir / "sweep.png", f"{core} on {target}: " + ", ".join(keys))
    return rows


def format_rows(rows: list[dict]) -> str:
    """A compact table for the terminal."""
    cols = ["point", "status", "lut4", "ff", "dsp", "fmax_median_mhz", "cached_steps", "error"]
    table = [["-" if row[c] is None else str(row[c]) for c in cols]
             for row in map(_csv_row, rows)]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(t, widths)) for t in table]
    return "\n".join(lines)
