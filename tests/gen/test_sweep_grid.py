"""Sweep grid parsing and expansion (the Dask run itself is in tests/boards/test_sweep.py)."""

import pytest

from gen.sweep import SweepError, expand_grid, parse_grid


def test_grid_expands_to_the_cartesian_product():
    grid = parse_grid(["format=mxint8,mxfp4_e2m1", "block_size=16, 32"])
    assert grid == {"format": ["mxint8", "mxfp4_e2m1"], "block_size": ["16", "32"]}
    points = expand_grid(grid, ["rounding=even"])
    assert len(points) == 4
    assert points[0] == ["rounding=even", "format=mxint8", "block_size=16"]
    assert points[-1] == ["rounding=even", "format=mxfp4_e2m1", "block_size=32"]


@pytest.mark.parametrize("items, message", [
    (["block_size"], r"--grid must look like KEY=V1,V2,\.\.\., not 'block_size'"),
    (["block_size="], r"--grid block_size= lists no values"),
    (["a=1", "a=2"], r"--grid a given twice"),
    ([], r"at least one --grid"),
])
def test_bad_grids(items, message):
    with pytest.raises(SweepError, match=message):
        parse_grid(items)
