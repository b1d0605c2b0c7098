"""``narrowgen quantize`` against the independent Fraction reference of MX_SPEC §4.1/§11.

Normal, heavy-tailed, tiny, huge, NaN/Inf, near-power-of-two and tie-heavy data, of several
shapes and axes, every format and rounding: scales and codes must match bit for bit.
"""

import zlib

import numpy as np
import pytest

from gen.cli import main
from hdl.formats import MX_FORMATS, mx_format

from ..golden.reference import ref_quantize_block

F32_MAX = float(np.finfo(np.float32).max)


def make_data(kind: str, shape, rng, fmt: str) -> np.ndarray:
    n = int(np.prod(shape))
    if kind == "normal":
        v = rng.standard_normal(n)
    elif kind == "heavy":
        v = rng.standard_t(1.5, n) * 2.0 ** rng.integers(-20, 20)
    elif kind == "tiny":
        v = np.ldexp(rng.uniform(-1, 1, n), rng.integers(-149, -120, n))
    elif kind == "huge":
        v = np.clip(np.ldexp(rng.uniform(-1, 1, n), rng.integers(120, 129, n)), -F32_MAX, F32_MAX)
    elif kind == "nonfinite":
        v = rng.standard_normal(n)
        v[rng.integers(0, n, max(1, n // 40))] = rng.choice([np.nan, np.inf, -np.inf])
    elif kind == "pow2":
        e = rng.integers(-126, 127, n)
        v = np.nextafter(np.ldexp(1.0, e).astype(np.float32), np.float32(0)).astype(np.float64)
        v *= np.where(rng.random(n) < 0.5, -1, 1)
    else:                                                  # ties on the element grid
        elem = mx_format(fmt).element
        lsb = 2.0 ** (elem.emin - (elem.mbits if elem.is_float else 0))
        v = (rng.integers(-40, 40, n) + 0.5) * lsb * 2.0 ** rng.integers(-5, 5)
    return v.astype(np.float32).reshape(shape)


KINDS = ["normal", "heavy", "tiny", "huge", "nonfinite", "pow2", "ties"]
SHAPES = [((77,), -1), ((3, 5, 40), 1), ((33, 4), 0), ((2, 3, 65), -1)]


@pytest.mark.parametrize("rounding", ["even", "nearest", "floor"])
@pytest.mark.parametrize("fmt", list(MX_FORMATS))
def test_cli_quantize_matches_reference(tmp_path, capsys, fmt, rounding):
    rng = np.random.default_rng(zlib.crc32(f"{fmt} {rounding}".encode()))
    checked = 0
    for kind in KINDS:
        for shape, axis in SHAPES:
            block = int(rng.choice([8, 16, 32]))
            x = make_data(kind, shape, rng, fmt)
            src, dst = tmp_path / "x.npy", tmp_path / "q.npz"
            np.save(src, x)
            assert main(["quantize", str(src), "-f", fmt, "--block-size", str(block),
                         "--axis", str(axis), "--rounding", rounding, "-o", str(dst)]) == 0
            capsys.readouterr()
            z = np.load(dst)
            xs = np.moveaxis(x, axis, -1)
            pad = (-xs.shape[-1]) % block
            xs = np.pad(xs, [(0, 0)] * (xs.ndim - 1) + [(0, pad)]).reshape(-1, block)
            scales = np.moveaxis(z["scales"], axis, -1).reshape(-1)
            codes = np.moveaxis(z["codes"], axis, -1).reshape(-1, block)
            assert scales.shape[0] == xs.shape[0]
            for k in range(xs.shape[0]):
                s, c = ref_quantize_block(xs[k], fmt, rounding)
                assert scales[k] == s and codes[k].tolist() == c, (kind, shape, axis, k)
                checked += 1
    assert checked > 100
