"""A small binarized CNN run layer by layer through ``bcnn-conv`` in simulation (issue 5, item 5).

Three binary conv layers with random weights and batch norms (some with negative scales, folded
into weight flips and integer thresholds by ``sim.golden.bcnn.fold_batchnorm``), separable kernels
from ``sf_kernels`` for two of them. Each layer's input is the previous layer's *hardware* output
(``verify``'s decoded dump), and the network's final output must equal the golden model's chained
forward pass exactly, for every image.
"""

import numpy as np
import pytest

from gen.params import parse_assignments
from gen.registry import get_core
from gen.verify import verify
from sim.golden import bcnn

#: (c_in, c_out, kernel, pad, pool, word, out_par) per layer; the image starts at 10x9.
LAYERS = [
    (6, 12, "separable", 1, True, 4, 4),     # 10x9 -> 5x4
    (12, 16, "full", 0, False, 8, 8),        # 5x4
    (16, 8, "separable", 0, False, 16, 4),   # 5x4
]
IMAGES = 4


def _layer_weights(rng, c_in, c_out, kernel):
    """Random float kernels -> binary weights (separable via SVD) and a folded batch norm."""
    real = rng.standard_normal((c_out, c_in, 3, 3))
    gamma = rng.standard_normal(c_out)
    gamma[0] = -abs(gamma[0])                       # at least one negative BN scale
    beta, mean = rng.standard_normal(c_out), rng.normal(0, 3, c_out)
    var = rng.uniform(0.5, 4, c_out) * c_in
    fold = bcnn.fold_batchnorm(gamma, beta, mean, var, c_in=c_in)
    if kernel == "full":
        w = bcnn.negate_channels(bcnn.binarize(real), fold.flip)
        return {"w": w.astype(np.int8)}, fold.t
    u, v = bcnn.sf_kernels(real)
    return {"u": u, "v": bcnn.negate_channels(v, fold.flip)}, fold.t


# Verilator spends ~35 s building the three layer models; every layer shape is also built and
# checked on Verilator by test_bcnn_conv_cosim, so that run is in ``make test-all`` only.
@pytest.mark.parametrize("sim", [pytest.param("verilator", marks=pytest.mark.slow), "icarus"])
def test_three_layer_network(sim, work_dir):
    rng = np.random.default_rng(2026)
    core = get_core("bcnn-conv")
    x = np.where(rng.random((IMAGES, LAYERS[0][0], 10, 9)) < 0.5, 1, -1).astype(np.int8)
    hw, ref = x, x
    for c_in, c_out, kernel, pad, pool, word, out_par in LAYERS:
        weights, t = _layer_weights(rng, c_in, c_out, kernel)
        h, w = hw.shape[2:]
        p = parse_assignments(core.params, [
            f"width={w}", f"height={h}", f"c_in={c_in}", f"c_out={c_out}", f"word={word}",
            f"out_par={out_par}", f"kernel={kernel}", f"pad={pad}", f"pool={str(pool).lower()}"])
        r = verify(core, p, sim=sim, vectors={"x": hw, "t": t, **weights}, seed=7,
                   work_dir=work_dir)
        assert r.passed, "\n".join(r.summary_lines())
        hw = r.outputs["y"]
        ref = np.stack([bcnn.layer(img, t=t, kernel=kernel, pad=pad, pool=pool, **weights)["y"]
                        for img in ref])
        assert np.array_equal(hw, ref)
    assert hw.shape == (IMAGES, LAYERS[-1][1], 5, 4)
    # The network does something: its outputs are not constant.
    assert (hw == 1).any() and (hw == -1).any()
