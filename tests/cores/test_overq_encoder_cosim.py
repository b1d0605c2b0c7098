"""overq-encoder: the emitted Verilog against ``sim.golden.overq.encode``, on both simulators.

Every run has random idle input cycles and random backpressure (verify's defaults, 0.2, plus one
heavy run) and must check every tile it sent. Coverage:

* exhaustive over every tile with ``bits=2`` (6-bit fine inputs 0..63): ``rows=2`` (4,096 tiles)
  on both simulators, ``rows=3`` (262,144 tiles, ~10 s of simulation on Verilator, ~15 s on
  Icarus): cascade 1 without and cascade 2 with precision on Verilator, the latter on Icarus
  (the other combinations on both simulators are marked slow, for ``make test-all``);
* ``rows=4`` over an alphabet holding every class boundary of ``bits=2`` (20,736 tiles);
* realistic random tiles at ``rows=16, bits=4``, cascade 1 and 4, precision on and off (two of
  the four on Verilator in ``make test``, all four on Icarus);
* edge shapes: ``rows=1``, ``cascade=8 >= rows-1``, ``bits=8`` (24-bit inputs), ``cascade=0``;
* one tile per cycle at full rate; a wrong golden model must fail; bad parameters and vectors
  give one-line errors.
"""

import dataclasses
import itertools
import json

import numpy as np
import pytest

from gen.cli import main
from gen.params import ParamError, parse_assignments
from gen.registry import VectorError, get_core
from gen.verify import verify
from sim.golden import overq

SIMS = ["verilator", "icarus"]
CORE = "overq-encoder"
#: bits=2 class boundaries: zeros 0, 1 (c = 0); 2 (c = 1, smallest non-zero); 5, 6 (c = 1 | 2);
#: 9; 13 (c = 3 = M, largest non-outlier); 14 (c = 4, smallest outlier); 17; 61 (c = 15, largest
#: unsaturated); 62, 63 (c = 16, saturates at 2b bits).
ALPHABET = [0, 1, 2, 5, 6, 9, 13, 14, 17, 61, 62, 63]


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("narrowgen: error: "), err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def run(params, sim, work_dir, *, n=1000, vectors=None, seed=5, **kw):
    """Verify and require a pass that checked every tile sent."""
    core = get_core(CORE)
    p = parse_assignments(core.params, params)
    r = verify(core, p, sim=sim, n=n, seed=seed, vectors=vectors, work_dir=work_dir, **kw)
    x = vectors["x"] if vectors is not None else \
        core.stimulus(p, np.random.default_rng(seed), n)["x"]
    assert r.transactions == x.shape[0] > 0, "not every tile was checked"
    assert r.passed, "\n".join(r.summary_lines())
    assert r.outputs["values"].shape == r.outputs["tags"].shape == x.shape
    return r, p


def _tiles(alphabet, rows):
    return np.array(list(itertools.product(alphabet, repeat=rows)), dtype=np.int64)


def _exhaustive_cases():
    for sim in SIMS:
        for rows, cascade, precision in [(2, 1, False), (2, 1, True), (3, 1, False),
                                          (3, 1, True), (3, 2, False), (3, 2, True)]:
            # rows=3 (262,144 tiles, ~15 s each): `make test` runs cascade 1 without and
            # cascade 2 with precision on Verilator and the latter on Icarus; `make test-all`
            # runs the other combinations.
            slow = rows == 3 and ((cascade == 2) != precision
                                  or (sim == "icarus" and cascade == 1))
            yield pytest.param(rows, cascade, precision, sim,
                               marks=[pytest.mark.slow] if slow else [],
                               id=f"rows{rows}-d{cascade}-{'prec' if precision else 'noprec'}"
                                  f"-{sim}")


@pytest.mark.parametrize("rows, cascade, precision, sim", list(_exhaustive_cases()))
def test_exhaustive_bits2(rows, cascade, precision, sim, work_dir):
    """Every tile of 6-bit fine inputs (64**rows tiles)."""
    x = _tiles(range(64), rows)
    r, _ = run([f"rows={rows}", "bits=2", f"cascade={cascade}",
                f"precision={str(precision).lower()}"], sim, work_dir, vectors={"x": x})
    tags = set(np.unique(r.outputs["tags"]).tolist())
    want = {overq.NORMAL, overq.RANGE} | ({overq.SHIFTED} if cascade > 1 else set()) \
        | ({overq.PREC} if precision else set())
    assert tags == want


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("cascade, precision", [(3, True), (2, False)],
                         ids=["d3-prec", "d2-noprec"])
def test_rows4_class_alphabet(cascade, precision, sim, work_dir):
    """Every tile of rows=4 over :data:`ALPHABET` (all class boundaries, 12**4 tiles)."""
    run(["rows=4", "bits=2", f"cascade={cascade}", f"precision={str(precision).lower()}"],
        sim, work_dir, vectors={"x": _tiles(ALPHABET, 4)})


def _random_rows16_cases():
    """Every cascade / precision combination on Icarus; on Verilator the two extremes in
    `make test` (each Verilator model is a separate build) and the others in `make test-all`."""
    for sim in SIMS:
        for cascade, precision in itertools.product((1, 4), (False, True)):
            slow = sim == "verilator" and (cascade == 4) != precision
            yield pytest.param(cascade, precision, sim, marks=[pytest.mark.slow] if slow else [],
                               id=f"d{cascade}-{'prec' if precision else 'noprec'}-{sim}")


@pytest.mark.parametrize("cascade, precision, sim", list(_random_rows16_cases()))
def test_random_rows16(cascade, precision, sim, work_dir):
    r, p = run(["rows=16", "bits=4", f"cascade={cascade}",
                f"precision={str(precision).lower()}"], sim, work_dir, n=2000)
    # Not vacuous: every tag the configuration can emit occurs, and the inputs hold handled
    # and unhandled outliers.
    want = {overq.NORMAL, overq.RANGE, overq.SHIFTED} if cascade > 1 \
        else {overq.NORMAL, overq.RANGE}
    assert set(np.unique(r.outputs["tags"]).tolist()) == want | (
        {overq.PREC} if precision else set())
    x = get_core(CORE).stimulus(p, np.random.default_rng(5), 2000)["x"]
    outliers, handled = overq.outlier_counts(x, 4, cascade)
    assert 0 < handled < outliers


def test_heavy_backpressure_and_idle_input(work_dir):
    run(["rows=16", "bits=4", "cascade=4", "precision=true"], "verilator", work_dir, n=1000,
        idle_prob=0.5, stall_prob=0.7)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("params", [
    ["rows=1", "bits=4", "cascade=2", "precision=true"],
    ["rows=8", "bits=3", "cascade=8", "precision=true"],
    ["rows=12", "bits=8", "cascade=0", "precision=true"],
    ["rows=5", "bits=8", "cascade=3", "precision=false"],
], ids=["rows1", "cascade-beyond-tile", "bits8-cascade0", "bits8"])
def test_edge_shapes(params, sim, work_dir):
    r, p = run(params, sim, work_dir, n=500)
    if p.rows == 1:
        assert (r.outputs["tags"] == overq.NORMAL).all()


def test_one_tile_per_cycle(work_dir):
    """With no idle input and no backpressure, each extra tile costs exactly one cycle, and the
    manifest beside the Verilog publishes latency, throughput and the chain segmentation."""
    core = get_core(CORE)
    p = parse_assignments(core.params, ["rows=16", "bits=4", "cascade=4", "precision=true"])
    x = core.stimulus(p, np.random.default_rng(3), 400)["x"]
    cycles = []
    for n in (200, 400):
        r, _ = run(["rows=16", "bits=4", "cascade=4", "precision=true"], "icarus", work_dir,
                   vectors={"x": x[:n]}, idle_prob=0.0, stall_prob=0.0)
        cycles.append(r.cycles)
    assert cycles[1] - cycles[0] == 200
    manifest = json.loads((r.verilog.parent / "manifest.json").read_text())
    assert manifest["latency"] >= 3 and "1 tile per cycle" in manifest["throughput"]
    assert manifest["details"]["chain_stages"] * manifest["details"]["slots_per_stage"] >= 16


def test_a_wrong_golden_is_caught(work_dir):
    """The check can fail: precision-overwrite hardware scored against the golden model without
    it; exactly the tiles where the two goldens differ are reported."""
    core = get_core(CORE)
    base = ["rows=16", "bits=4", "cascade=4"]
    hw = parse_assignments(core.params, [*base, "precision=true"])
    plain = parse_assignments(core.params, [*base, "precision=false"])
    x = core.stimulus(plain, np.random.default_rng(7), 300)["x"]
    v1, t1 = overq.encode(x, 4, 4, True)
    v0, t0 = overq.encode(x, 4, 4, False)
    differ = np.nonzero(((v1 != v0) | (t1 != t0)).any(axis=1))[0]
    assert 0 < differ.size < x.shape[0]
    mixed = dataclasses.replace(core, build=lambda p: core.build(hw),
                                top_name=lambda p: core.top_name(hw))
    r = verify(mixed, plain, sim="verilator", vectors={"x": x}, seed=7, work_dir=work_dir)
    assert r.transactions == x.shape[0]
    assert not r.passed
    assert r.mismatches == differ.size
    assert r.first_mismatch["index"] == differ[0]


# ---- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("assignment, fragments", [
    ("rows=0", ["rows=0", "1..256"]),
    ("rows=257", ["rows=257", "1..256"]),
    ("bits=1", ["bits=1", "2..8"]),
    ("bits=9", ["bits=9", "2..8"]),
    ("cascade=9", ["cascade=9", "0..8"]),
    ("cascade=-1", ["cascade=-1", "0..8"]),
    ("precision=maybe", ["precision", "true or false", "'maybe'"]),
    ("rows=two", ["rows", "integer", "'two'"]),
    ("depth=3", ["unknown parameter 'depth'", "rows, bits, cascade, precision"]),
])
def test_bad_parameters(assignment, fragments, capsys):
    core = get_core(CORE)
    with pytest.raises(ParamError) as exc:
        parse_assignments(core.params, [assignment])
    assert "\n" not in str(exc.value)
    for f in fragments:
        assert f in str(exc.value)
    code = main(["gen", CORE, "-p", assignment, "-o", "/nonexistent/never-written"])
    assert_one_line_error(code, capsys.readouterr().err, *fragments)


@pytest.mark.parametrize("arrays, fragments", [
    ({"y": np.zeros((2, 4), np.int64)}, ["no array 'x'", "it holds: y"]),
    ({"x": np.zeros((2, 4))}, ["array 'x' must be an integer array", "not float64"]),
    ({"x": np.zeros((2, 4), bool)}, ["array 'x' must be an integer array", "not bool"]),
    ({"x": np.zeros(4, np.int64)}, ["array 'x' must have shape [n, rows] = [n, 4]", "[4]"]),
    ({"x": np.zeros((2, 5), np.int64)}, ["array 'x' must have shape", "not [2, 5]"]),
    ({"x": np.zeros((0, 4), np.int64)}, ["array 'x' is empty"]),
    ({"x": np.array([[0, 1, -3, 2]])}, ["array 'x' holds -3 at index [0, 2]", "0..4095"]),
    ({"x": np.array([[0, 4096, 1, 2]], np.uint16)}, ["array 'x' holds 4096", "0..4095",
                                                     "12-bit"]),
])
def test_bad_vectors(arrays, fragments, tmp_path, capsys):
    core = get_core(CORE)
    p = parse_assignments(core.params, ["rows=4", "bits=4"])
    with pytest.raises(VectorError) as exc:
        core.check_vectors(p, arrays)
    assert "\n" not in str(exc.value)
    for f in fragments:
        assert f in str(exc.value)
    vec = tmp_path / "in.npz"
    np.savez(vec, **arrays)
    code = main(["verify", CORE, "-p", "rows=4", "-p", "bits=4", "--vectors", str(vec)])
    assert_one_line_error(code, capsys.readouterr().err, *fragments)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint32, np.int64])
def test_any_integer_dtype_is_accepted(dtype):
    core = get_core(CORE)
    p = parse_assignments(core.params, ["rows=3", "bits=2"])
    x = np.array([[0, 63, 14], [2, 0, 13]], dtype=dtype)
    got = core.check_vectors(p, {"x": x})["x"]
    assert got.dtype == np.int64 and (got == x).all()
