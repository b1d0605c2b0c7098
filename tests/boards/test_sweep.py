"""A two-point sweep on a local Dask cluster: outputs, a recorded failure, cache hits on rerun."""

import csv
import json

import pytest

from gen.cli import main
from gen.sweep import SweepError, run_sweep


def test_two_point_sweep_then_rerun_hits_the_cache(tmp_path, work_dir):
    cache = work_dir / "sweep-cache"
    kw = dict(fixed=["format=mxfp4_e2m1"], seeds=1, out_dir=tmp_path / "out",
              work_dir=tmp_path / "synth", cache_dir=cache, workers=2, progress=False)
    rows = run_sweep("mx-dequantize", {"block_size": ["2", "4"]}, "ecp5-25k", **kw)
    assert [r["point"] for r in rows] == ["block_size=2", "block_size=4"]
    assert all(r["status"] == "ok" for r in rows), rows
    assert rows[0]["report"]["cells"]["lut4"] < rows[1]["report"]["cells"]["lut4"]
    for name in ("sweep.csv", "sweep.json", "sweep.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    with open(tmp_path / "out" / "sweep.csv") as f:
        table = list(csv.DictReader(f))
    assert [t["point"] for t in table] == ["block_size=2", "block_size=4"]
    assert float(table[0]["fmax_median_mhz"]) > 0

    again = run_sweep("mx-dequantize", {"block_size": ["2", "4"]}, "ecp5-25k", **kw)
    for row in again:
        tool_steps = [s for s in row["report"]["steps"] if s["name"] != "verilog"]
        assert tool_steps and all(s["cached"] for s in tool_steps), row["report"]["steps"]
        assert row["report"]["cells"] == rows[again.index(row)]["report"]["cells"]


def test_a_failed_point_is_recorded_and_the_sweep_goes_on(tmp_path, work_dir):
    rows = run_sweep("mx-dequantize", {"lanes": ["2", "3"]}, "ecp5-25k",
                     fixed=["format=mxfp4_e2m1", "block_size=2"], seeds=1,
                     out_dir=tmp_path / "out", work_dir=tmp_path / "synth",
                     cache_dir=work_dir / "sweep-cache", workers=1, progress=False)
    by = {r["point"]: r for r in rows}
    assert by["lanes=2"]["status"] == "ok"
    assert by["lanes=3"]["status"] == "failed"
    assert "lanes=3 is not allowed" in by["lanes=3"]["error"]
    saved = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert {p["status"] for p in saved["points"]} == {"ok", "failed"}


def test_explicit_points_run_instead_of_the_whole_grid(tmp_path, work_dir):
    """``points`` picks grid points (a diagonal of format pairs, say); one off the grid is refused
    before any tool runs."""
    kw = dict(fixed=["format=mxfp4_e2m1"], seeds=1, out_dir=tmp_path / "out",
              work_dir=tmp_path / "synth", cache_dir=work_dir / "sweep-cache", workers=1,
              progress=False)
    grid = {"block_size": ["2", "4"], "lanes": ["2", "4"]}
    rows = run_sweep("mx-dequantize", grid, "ecp5-25k",
                     points=[{"block_size": "4", "lanes": "2"}], **kw)
    assert [r["point"] for r in rows] == ["block_size=4 lanes=2"]
    assert rows[0]["status"] == "ok", rows
    with pytest.raises(SweepError, match="not on the grid"):
        run_sweep("mx-dequantize", grid, "ecp5-25k", points=[{"block_size": "8", "lanes": "2"}],
                  **{**kw, "out_dir": tmp_path / "refused"})
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("argv, fragments", [
    (["synth", "mx-quantize", "--target", "virtex-2"], ["unknown target 'virtex-2'",
                                                         "ecp5-25k"]),
    (["sweep", "mx-quantize", "--grid", "speed=1,2", "--target", "ecp5-25k"],
     ["--grid speed: unknown parameter"]),
    (["board", "arty", "mx-quantize"], ["arty", "icebreaker", "ulx3s"]),
])
def test_flow_commands_reject_bad_input_in_one_line(capsys, argv, fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("narrowgen: error: ")
    for f in fragments:
        assert f in err[0], err[0]


def test_sweep_on_an_existing_dask_cluster(tmp_path, work_dir):
    """--scheduler: the same sweep submitted to a cluster someone else started."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        rows = run_sweep("mx-dequantize", {"block_size": ["2"]}, "ecp5-25k",
                         fixed=["format=mxfp4_e2m1"], seeds=1, out_dir=tmp_path / "out",
                         work_dir=tmp_path / "synth", cache_dir=work_dir / "sweep-cache",
                         scheduler=cluster.scheduler_address, progress=False)
    assert [r["status"] for r in rows] == ["ok"]
    assert rows[0]["report"]["fmax_mhz"]["median"] > 0
