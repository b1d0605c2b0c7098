"""bcnn-conv: the emitted Verilog against ``sim.golden.bcnn.layer``, on both simulators.

Every run streams the weights and thresholds, then the images, with random idle input cycles and
random backpressure, and must check every output pixel of every image. ``make test`` covers small
layers with odd sizes in every kernel / padding / pooling / threshold combination on both
simulators and the CIFAR-10-shaped layer (32x32, 128 -> 128) with both kernel kinds on Verilator;
``make test-all`` adds the CIFAR layer on Icarus (full kernels ~2 min, separable ~5 min).
"""

import dataclasses
import itertools
import json

import numpy as np
import pytest

from gen.params import parse_assignments
from gen.registry import get_core
from gen.verify import verify
from hdl.bcnn.conv import conv_sum_bits
from sim.golden import bcnn

SIMS = ["verilator", "icarus"]
#: Odd image sizes, c_in not a multiple of word, c_out not a multiple of out_par.
SMALL = ["width=7", "height=5", "c_in=10", "c_out=6", "word=4", "out_par=4"]
COMBOS = list(itertools.product(("full", "separable"), (0, 1), (False, True)))
CIFAR = ["width=32", "height=32", "c_in=128", "c_out=128", "word=32"]


def _details(report):
    """The ``details`` of the manifest verify wrote beside the Verilog it ran."""
    return json.loads((report.verilog.parent / "manifest.json").read_text())["details"]


def run(params, sim, work_dir, *, n=3, vectors=None, **kw):
    core = get_core("bcnn-conv")
    p = parse_assignments(core.params, params)
    r = verify(core, p, sim=sim, n=n, seed=kw.pop("seed", 3), vectors=vectors,
               work_dir=work_dir, **kw)
    images = max(n, 3) if vectors is None else (1 if vectors["x"].ndim == 3 else
                                                 vectors["x"].shape[0])
    h, w = p.out_shape
    assert r.transactions == images * h * w, "not every output pixel was checked"
    assert r.passed, "\n".join(r.summary_lines())
    return r, p


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("kernel, pad, pool", COMBOS,
                         ids=[f"{k}-pad{p}-{'pool' if q else 'nopool'}" for k, p, q in COMBOS])
def test_small_layers(kernel, pad, pool, sim, work_dir):
    params = [*SMALL, f"kernel={kernel}", f"pad={pad}", f"pool={str(pool).lower()}"]
    r, p = run(params, sim, work_dir)
    y = r.outputs["y"]
    # Not a vacuous check: the layer's outputs take both values.
    assert (y == 1).any() and (y == -1).any()


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("kernel", ["full", "separable"])
def test_integer_sums(kernel, sim, work_dir):
    r, p = run([*SMALL, f"kernel={kernel}", "pad=1", "thresholds=false"], sim, work_dir)
    sums = r.outputs["sums"]
    assert sums.min() < 0 < sums.max()
    assert np.abs(sums).max() <= 9 * p.c_in


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("shape", [
    ["width=1", "height=1", "c_in=5", "c_out=3", "word=4", "out_par=2"],
    ["width=4", "height=3", "c_in=3", "c_out=2", "word=1", "out_par=1"],
    ["width=3", "height=2", "c_in=64", "c_out=5", "word=64", "out_par=5", "pad=1"],
    ["width=2", "height=3", "c_in=4", "c_out=6", "word=4", "out_par=6", "pool=true"],
], ids=["1x1", "word1", "word64", "pool-odd-height"])
def test_edge_shapes(shape, sim, work_dir):
    run([*shape, "kernel=separable"], sim, work_dir)


def test_heavy_backpressure_and_idle_input(work_dir):
    run([*SMALL, "kernel=full", "pool=true"], "verilator", work_dir, idle_prob=0.6,
        stall_prob=0.8)


def test_cifar_layer_verilator(work_dir):
    """The CIFAR-10-shaped layer, one image, both kernel kinds."""
    core = get_core("bcnn-conv")
    for kernel, seed in (("separable", 21), ("full", 22)):
        params = [*CIFAR, "out_par=8", f"kernel={kernel}", "pad=1"]
        p = parse_assignments(core.params, params)
        r, _ = run(params, "verilator", work_dir,
                   vectors=_one_image(p, np.random.default_rng(seed)))
        # Stall-free schedule: the measured cycles can only exceed it (idle input, backpressure).
        assert r.cycles >= _details(r)["cycles_per_image"]


@pytest.mark.parametrize("params", [
    [*SMALL, "kernel=full"],
    ["width=4", "height=3", "c_in=16", "c_out=8", "word=16", "out_par=2", "kernel=separable",
     "pool=true"],
], ids=["full", "separable-pool"])
def test_cycles_per_image_is_exact(params, work_dir):
    """With no idle input and no backpressure, each extra image costs exactly the manifest's
    ``cycles_per_image`` (the schedule the bench and the README quote)."""
    core = get_core("bcnn-conv")
    p = parse_assignments(core.params, params)
    stim = core.stimulus(p, np.random.default_rng(1), 3)
    cycles = []
    for n in (1, 2):
        r = verify(core, p, sim="verilator", vectors={**stim, "x": stim["x"][:n]},
                   work_dir=work_dir, idle_prob=0.0, stall_prob=0.0)
        assert r.passed
        cycles.append(r.cycles)
    assert cycles[1] - cycles[0] == _details(r)["cycles_per_image"]


def _one_image(p, rng):
    stim = get_core("bcnn-conv").stimulus(p, rng, 1)
    return {**stim, "x": stim["x"][0]}


@pytest.mark.slow
def test_cifar_layer_icarus(work_dir):
    """One image through the CIFAR layer on Icarus, full kernels (~2 min, the longest test in the
    suite, so it runs in ``make test-all``; small layers cover Icarus in ``make test``)."""
    core = get_core("bcnn-conv")
    params = [*CIFAR, "out_par=16", "kernel=full"]
    p = parse_assignments(core.params, params)
    run(params, "icarus", work_dir, vectors=_one_image(p, np.random.default_rng(12)),
        idle_prob=0.05, stall_prob=0.05)


@pytest.mark.slow
def test_cifar_layer_icarus_separable(work_dir):
    """The separable datapath on Icarus: ~5 min per image (Icarus evaluates its 16 x 32 shared
    vertical-sum selections at ~130 cycles/s), so it runs in ``make test-all``."""
    core = get_core("bcnn-conv")
    params = [*CIFAR, "out_par=16", "kernel=separable"]
    p = parse_assignments(core.params, params)
    run(params, "icarus", work_dir, vectors=_one_image(p, np.random.default_rng(11)),
        idle_prob=0.05, stall_prob=0.05)


def test_a_wrong_golden_is_caught(work_dir):
    """The check can fail: +1-padded hardware scored against zero-padded expectations."""
    core = get_core("bcnn-conv")
    hw = parse_assignments(core.params, [*SMALL, "kernel=separable", "pad=1"])
    zero = parse_assignments(core.params, [*SMALL, "kernel=separable", "pad=0"])
    mixed = dataclasses.replace(core, build=lambda p: core.build(hw),
                                top_name=lambda p: core.top_name(hw))
    r = verify(mixed, zero, sim="verilator", n=3, seed=4, work_dir=work_dir)
    assert r.transactions == 3 * zero.height * zero.width
    assert not r.passed and r.mismatches > 0


def test_sum_width_matches_the_golden():
    for c_in in (1, 2, 7, 14, 15, 64, 113, 128, 512, 4096):
        assert conv_sum_bits(c_in) == bcnn.sum_bits(c_in)
