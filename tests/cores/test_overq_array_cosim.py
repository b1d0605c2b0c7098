"""overq-array and int-array: the emitted Verilog against ``sim.golden.overq.array`` and ``x @ w``,
on both simulators.

Every run loads the weights through the stream, then streams the activation vectors with random
idle input cycles and random backpressure, and must check every vector. The stimulus mixes
post-ReLU-like tiles with the corner tiles (all zero, zero-free, outlier-heavy, an outlier in the
last slot, precision pairs); the tests assert that the encoded tiles really exercised every tag,
so a pass is not vacuous. Several weight tiles in one run check that a weight load never reaches
vectors taken before it.
"""

import dataclasses

import numpy as np
import pytest

from gen.params import ParamError, parse_assignments
from gen.registry import VectorError, get_core
from gen.verify import verify
from sim.golden import overq

SIMS = ["verilator", "icarus"]


def _run(core_name, params, sim, work_dir, *, n=40, vectors=None, seed=3, **kw):
    core = get_core(core_name)
    p = parse_assignments(core.params, params)
    r = verify(core, p, sim=sim, n=n, seed=seed, vectors=vectors, work_dir=work_dir, **kw)
    sent = (core.stimulus(p, np.random.default_rng(seed), n) if vectors is None else vectors)["x"]
    assert r.transactions == int(np.prod(sent.shape[:-1])) > 0, "not every vector was checked"
    assert r.passed, "\n".join(r.summary_lines())
    return r, p


def _tags(p, x):
    return overq.encode(x, p.bits, p.cascade, p.precision)[1]


def _tiles(p, k, n, seed):
    """k weight tiles, each with n stimulus vectors: x [k, n, rows], w [k, rows, cols]."""
    core = get_core("overq-array" if p.overq else "int-array")
    stims = [core.stimulus(p, np.random.default_rng(seed + t), n) for t in range(k)]
    m = min(len(s["x"]) for s in stims)
    return {"x": np.stack([s["x"][:m] for s in stims]), "w": np.stack([s["w"] for s in stims])}


# --------------------------------------------------------------------------------------------
# int-array (the baseline)

RELOAD_INT = ["rows=3", "cols=5", "bits=2", "weight_bits=2"]
RELOAD_OVERQ = ["rows=6", "cols=4", "cascade=3", "precision=true"]


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("shape", [
    ["rows=1", "cols=1", "bits=8", "weight_bits=16"],
    RELOAD_INT,
    ["rows=4", "cols=4"],
], ids=["1x1-b8-w16", "3x5-b2-w2", "4x4"])
def test_int_array(shape, sim, work_dir):
    r, p = _run("int-array", shape, sim, work_dir)
    # Column 0 holds the largest weight, column 1 the smallest: sums of both signs.
    assert r.outputs["y"].max() > 0
    assert p.cols == 1 or r.outputs["y"].min() < 0


@pytest.mark.parametrize("sim", SIMS)
def test_int_array_weight_reload(sim, work_dir):
    """Three weight tiles back to back (the 3x5 model above, no new build); a weight load that
    did not wait for the vectors before it would overwrite weights they still use."""
    p = parse_assignments(get_core("int-array").params, RELOAD_INT)
    _run("int-array", RELOAD_INT, sim, work_dir, vectors=_tiles(p, 3, 7, 5),
         idle_prob=0.0, stall_prob=0.0)


def test_int_array_16x16_backpressure(work_dir):
    _run("int-array", ["rows=16", "cols=16"], "verilator", work_dir, n=300, idle_prob=0.5,
         stall_prob=0.7)


# --------------------------------------------------------------------------------------------
# overq-array

OVERQ = [
    (["rows=4", "cols=3", "cascade=1"], "4x3-d1"),
    (RELOAD_OVERQ, "6x4-d3-prec"),
    (["rows=5", "cols=2", "bits=2", "weight_bits=3", "cascade=0", "precision=true"],
     "5x2-b2-d0-prec"),
    (["rows=1", "cols=3"], "1x3"),
]


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("params", [o[0] for o in OVERQ], ids=[o[1] for o in OVERQ])
def test_overq_array(params, sim, work_dir):
    r, p = _run("overq-array", params, sim, work_dir)
    x = get_core("overq-array").stimulus(p, np.random.default_rng(3), 40)["x"]
    tags = _tags(p, x)
    if p.rows > 1 and p.cascade:
        assert (tags == overq.RANGE).any(), "no outlier was handled: the stimulus is too tame"
    if p.rows > 2 and p.cascade > 1:
        assert (tags == overq.SHIFTED).any()
    if p.precision and p.rows > 1:
        assert (tags == overq.PREC).any()


@pytest.mark.parametrize("sim", SIMS)
def test_overq_weight_reload(sim, work_dir):
    p = parse_assignments(get_core("overq-array").params, RELOAD_OVERQ)
    _run("overq-array", RELOAD_OVERQ, sim, work_dir, vectors=_tiles(p, 3, 6, 9), idle_prob=0.0,
         stall_prob=0.0)


@pytest.mark.parametrize("params", [
    ["rows=16", "cols=16", "cascade=4", "precision=true"],
    ["rows=8", "cols=8", "bits=8", "weight_bits=16", "cascade=8", "precision=true"],
], ids=["16x16-d4-prec", "8x8-b8-w16-d8"])
def test_overq_array_realistic(params, work_dir):
    """The bench sizes, and the widest sums (8-bit codes, 16-bit weights: 44-bit outputs),
    under heavy backpressure."""
    r, p = _run("overq-array", params, "verilator", work_dir, n=400, idle_prob=0.5,
                stall_prob=0.7)
    assert np.abs(r.outputs["y"]).max() >= 1 << (3 * p.bits + p.weight_bits - 4)


def test_overq_special_tiles(work_dir):
    """All-zero, zero-free and outlier-heavy tiles on their own (no random ones), both sims."""
    core = get_core("overq-array")
    params = RELOAD_OVERQ                  # an existing build
    p = parse_assignments(core.params, params)
    b, R = p.bits, p.rows
    top = (1 << 3 * b) - 1
    rng = np.random.default_rng(17)
    x = np.stack([
        np.zeros(R), rng.integers(1 << b - 1, top + 1, R), np.full(R, top),
        np.resize([top, 0], R), np.resize([top, top, 0, 0], R),
        np.resize([top, 5, 0, 0], R), rng.integers(0, 1 << 2 * b, R),
    ]).astype(np.int64)
    w = core.stimulus(p, rng, 1)["w"]
    for sim in SIMS:
        _run("overq-array", params, sim, work_dir, vectors={"x": x, "w": w})


def test_a_wrong_golden_is_caught(work_dir):
    """The check can fail: a precision-overwrite array scored against the plain encoding."""
    core = get_core("overq-array")
    hw = parse_assignments(core.params, RELOAD_OVERQ)
    plain = parse_assignments(core.params, [*RELOAD_OVERQ[:-1], "precision=false"])
    mixed = dataclasses.replace(core, build=lambda p: core.build(hw),
                                top_name=lambda p: core.top_name(hw))
    r = verify(mixed, plain, sim="verilator", n=20, seed=4, work_dir=work_dir)
    assert r.transactions > 0
    assert not r.passed and r.mismatches > 0


# --------------------------------------------------------------------------------------------
# errors

@pytest.mark.parametrize("core_name, params, message", [
    ("int-array", ["rows=0"], "parameter rows=0 is not allowed; allowed: 1..64"),
    ("int-array", ["cols=65"], "parameter cols=65 is not allowed; allowed: 1..64"),
    ("int-array", ["bits=1"], "parameter bits=1 is not allowed; allowed: 2..8"),
    ("overq-array", ["weight_bits=17"], "parameter weight_bits=17 is not allowed; allowed: 2..16"),
    ("overq-array", ["cascade=9"], "parameter cascade=9 is not allowed; allowed: 0..8"),
])
def test_bad_parameters(core_name, params, message):
    with pytest.raises(ParamError) as e:
        parse_assignments(get_core(core_name).params, params)
    assert str(e.value).startswith(message)


def test_int_array_has_no_overq_parameters():
    with pytest.raises(ParamError, match="cascade"):
        parse_assignments(get_core("int-array").params, ["cascade=2"])


@pytest.mark.parametrize("core_name, arrays, message", [
    ("overq-array", {"x": np.zeros((2, 4), np.int32), "w": np.zeros((4, 3), np.int64)},
     "array 'x' must be int64"),
    ("overq-array", {"x": np.zeros((2, 5), np.int64), "w": np.zeros((4, 3), np.int64)},
     "array 'x' must have shape [n, rows] with rows = 4"),
    ("overq-array", {"x": np.full((2, 4), 4096, np.int64), "w": np.zeros((4, 3), np.int64)},
     "array 'x' must hold non-negative fine 3b-bit activations in 0..4095"),
    ("int-array", {"x": np.full((2, 4), 16, np.int64), "w": np.zeros((4, 3), np.int64)},
     "array 'x' must hold non-negative b-bit activation codes in 0..15"),
    ("int-array", {"x": np.full((2, 4), -1, np.int64), "w": np.zeros((4, 3), np.int64)},
     "array 'x' must hold non-negative b-bit activation codes in 0..15"),
    ("int-array", {"x": np.zeros((2, 4), np.int64), "w": np.full((4, 3), 128, np.int64)},
     "array 'w' must hold signed weights in -128..127"),
    ("int-array", {"x": np.zeros((2, 4), np.int64), "w": np.zeros((3, 4), np.int64)},
     "array 'w' must have shape [rows, cols] = [4, 3]"),
    ("int-array", {"x": np.zeros((2, 2, 4), np.int64), "w": np.zeros((3, 4, 3), np.int64)},
     "array 'x' must have shape [k, n, rows]"),
    ("int-array", {"w": np.zeros((4, 3), np.int64)}, "vectors file has no array 'x'"),
])
def test_bad_vectors(core_name, arrays, message):
    core = get_core(core_name)
    p = parse_assignments(core.params, ["rows=4", "cols=3"])
    with pytest.raises(VectorError) as e:
        core.check_vectors(p, arrays)
    assert message in str(e.value)
