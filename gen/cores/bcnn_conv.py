"""Registry entry for ``bcnn-conv``: a streaming binarized 3x3 conv layer, full or separable
kernels (BCNNw/SF, ALGORITHMS.md §5-6), against ``sim.golden.bcnn.layer``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.golden import bcnn as golden

from ..params import ParamError, Params, param
from ..registry import Core, VectorError, register
from .mx_blocking import require

#: Input beat kinds, as hdl.bcnn.conv defines them (not imported: the registry loads without
#: amaranth).
PIXEL, WEIGHT, THRESHOLD = 0, 1, 2


@dataclass(frozen=True)
class BCNNConvParams(Params):
    width: int = param(8, kind="int", allowed="1..4096", doc="image width in pixels")
    height: int = param(8, kind="int", allowed="1..4096", doc="image height in pixels")
    c_in: int = param(16, kind="int", allowed="1..4096", doc="input channels")
    c_out: int = param(16, kind="int", allowed="1..4096", doc="output channels")
    word: int = param(16, kind="int", allowed="1..512",
                      doc="input channel bits per beat (and per datapath step)")
    out_par: int = param(4, kind="int", allowed="1..c_out",
                         doc="output channels computed in parallel (and per output beat)")
    pad: int = param(0, kind="int", choices=(0, 1),
                     doc="value of out-of-image pixels: 0 (zero padding) or 1 (+1 padding)")
    pool: bool = param(False, kind="bool", doc="2x2 max-pool the binarized outputs")
    kernel: str = param("separable", kind="enum", choices=("full", "separable"),
                        doc="full 3x3 binary kernels or separable outer(u, v) (6 bits each)")
    thresholds: bool = param(True, kind="bool",
                             doc="threshold to +-1 (y); off: emit the integer sums (debug)")

    def check(self) -> None:
        for name, hi in (("width", 4096), ("height", 4096), ("c_in", 4096), ("c_out", 4096),
                         ("word", 512)):
            value = getattr(self, name)
            if not 1 <= value <= hi:
                raise ParamError(f"parameter {name}={value} is not allowed; allowed: 1..{hi}")
        if not 1 <= self.out_par <= self.c_out:
            raise ParamError(f"parameter out_par={self.out_par} is not allowed; allowed: "
                             f"1..c_out ({self.c_out})")
        if self.pool and (self.width < 2 or self.height < 2):
            raise ParamError(f"parameter pool=true needs width and height >= 2, not "
                             f"{self.width}x{self.height}")
        if self.pool and not self.thresholds:
            raise ParamError("parameter pool=true needs thresholds=true (pooling applies to the "
                             "binarized map)")

    @property
    def words(self) -> int:
        return -(-self.c_in // self.word)

    @property
    def groups(self) -> int:
        return -(-self.c_out // self.out_par)

    @property
    def out_shape(self) -> tuple[int, int]:
        if self.pool:
            return self.height // 2, self.width // 2
        return self.height, self.width


def _build(p: BCNNConvParams):
    from hdl.bcnn import BCNNConv
    return BCNNConv(width=p.width, height=p.height, c_in=p.c_in, c_out=p.c_out, word=p.word,
                    out_par=p.out_par, pad=p.pad, pool=p.pool, kernel=p.kernel,
                    thresholds=p.thresholds)


def _top_name(p: BCNNConvParams) -> str:
    tail = f"_p{p.pad}" + ("_pool" if p.pool else "") + ("" if p.thresholds else "_sums")
    return (f"bcnn_conv_{p.kernel}_{p.width}x{p.height}_{p.c_in}to{p.c_out}_w{p.word}"
            f"_o{p.out_par}{tail}")


def _random_pm1(rng, shape) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, 1, -1).astype(np.int8)


def _stimulus(p: BCNNConvParams, rng: np.random.Generator, n: int) -> dict:
    """``n`` random images (at least 3) with one random layer: random kernels and thresholds
    spread over the reachable sums, plus an all +1 and an all -1 image (every window sum at
    its extreme, the edges the only difference)."""
    images = max(int(n), 3)
    x = _random_pm1(rng, (images, p.c_in, p.height, p.width))
    x[1] = 1
    x[2] = -1
    out = {"x": x}
    if p.kernel == "full":
        out["w"] = _random_pm1(rng, (p.c_out, p.c_in, 3, 3))
    else:
        out["u"] = _random_pm1(rng, (p.c_out, p.c_in, 3))
        out["v"] = _random_pm1(rng, (p.c_out, p.c_in, 3))
    # Thresholds around 0 with a spread of about one standard deviation of a sum, and the two
    # extremes (always +1 / always -1) on the first channels.
    lim = 9 * p.c_in
    t = rng.integers(-3 * int(np.sqrt(lim)) - 1, 3 * int(np.sqrt(lim)) + 2, p.c_out)
    t[0] = -lim
    if p.c_out > 1:
        t[1] = lim + 1
    out["t"] = t.astype(np.int32)
    return out


def _check_vectors(p: BCNNConvParams, arrays: dict) -> dict:
    x = require(arrays, "x", np.int8, f"+-1 [c_in, height, width] = [{p.c_in}, {p.height}, "
                                      f"{p.width}] (or [n, ...] for n images)")
    if x.shape[-3:] != (p.c_in, p.height, p.width) or x.ndim not in (3, 4):
        raise VectorError(f"array 'x' must have shape [c_in, height, width] = "
                          f"{[p.c_in, p.height, p.width]} or [n, c_in, height, width], not "
                          f"{list(x.shape)}")
    out = {"x": x}
    names = ("w",) if p.kernel == "full" else ("u", "v")
    shape = (p.c_out, p.c_in, 3, 3) if p.kernel == "full" else (p.c_out, p.c_in, 3)
    for name in names:
        a = require(arrays, name, np.int8, f"+-1 {list(shape)} (kernel={p.kernel})")
        if a.shape != shape:
            raise VectorError(f"array {name!r} must have shape {list(shape)} for "
                              f"kernel={p.kernel}, not {list(a.shape)}")
        out[name] = a
    for name, a in out.items():
        if not np.isin(a, (-1, 1)).all():
            bad = a[~np.isin(a, (-1, 1))].flat[0]
            raise VectorError(f"array {name!r} must hold only +1 and -1, found {int(bad)}")
    if p.thresholds or "t" in arrays:
        t = require(arrays, "t", np.int32, f"int32 [c_out] = [{p.c_out}] thresholds")
        if t.shape != (p.c_out,):
            raise VectorError(f"array 't' must have shape [c_out] = [{p.c_out}], not "
                              f"{list(t.shape)}")
        lo, hi = -(1 << (golden.sum_bits(p.c_in) - 1)), (1 << (golden.sum_bits(p.c_in) - 1)) - 1
        if t.min() < lo or t.max() > hi:
            raise VectorError(f"array 't' holds {int(t.min())}..{int(t.max())}; thresholds of a "
                              f"{p.c_in}-channel layer must lie in {lo}..{hi} (beyond "
                              f"+-(9*c_in + 1) a threshold changes nothing)")
        out["t"] = t
    else:
        out["t"] = np.zeros(p.c_out, dtype=np.int32)
    return out


def _images(inputs: dict) -> np.ndarray:
    x = inputs["x"]
    return x[None] if x.ndim == 3 else x


def _golden(p: BCNNConvParams, inputs: dict) -> dict:
    kw = {"w": inputs["w"]} if p.kernel == "full" else {"u": inputs["u"], "v": inputs["v"]}
    key = "y" if p.thresholds else "sums"
    t = inputs["t"] if p.thresholds else None
    outs = np.stack([golden.layer(x, t=t, kernel=p.kernel, pad=p.pad, pool=p.pool,
                                  thresholds=p.thresholds, **kw)[key]
                     for x in _images(inputs)])
    return {key: outs if inputs["x"].ndim == 4 else outs[0]}


def _word_bits(a: np.ndarray, p: BCNNConvParams) -> np.ndarray:
    """``a`` +-1 with channels on axis 0 -> [words, ..., word] bits (1 for +1; padding 0)."""
    c = a.shape[0]
    bits = np.zeros((p.words * p.word,) + a.shape[1:], dtype=np.uint8)
    bits[:c] = a > 0
    bits = bits.reshape((p.words, p.word) + a.shape[1:])
    return np.moveaxis(bits, 1, -1)


def _to_beats(p: BCNNConvParams, inputs: dict) -> dict:
    """Weights (output channel, input word, tap), thresholds, then every image's pixels in
    raster order, ``words`` beats per pixel."""
    if p.kernel == "full":
        taps = inputs["w"].reshape(p.c_out, p.c_in, 9)
    else:
        taps = np.concatenate([inputs["u"], inputs["v"]], axis=2)
    # [c_in, c_out, taps] -> [words, c_out, taps, word] -> (o, j, tap) order
    wbits = np.moveaxis(_word_bits(np.moveaxis(taps, 1, 0), p), 0, 1)
    wbits = wbits.reshape(-1, p.word)
    images = _images(inputs)
    # [n, c_in, H, W] -> per image [words, H, W, word] -> (r, c, j) order
    pix = np.stack([np.moveaxis(_word_bits(x, p), 0, 2) for x in images]).reshape(-1, p.word)
    kinds = np.concatenate([np.full(len(wbits), WEIGHT), np.full(p.c_out, THRESHOLD),
                            np.full(len(pix), PIXEL)]).astype(np.int64)
    bits = np.concatenate([wbits, np.zeros((p.c_out, p.word), np.uint8), pix])
    t = np.concatenate([np.zeros(len(wbits), np.int64), inputs["t"].astype(np.int64),
                        np.zeros(len(pix), np.int64)])
    return {"kind": kinds, "bits": bits.astype(np.int64), "t": t}


def _group_channels(a: np.ndarray, p: BCNNConvParams) -> np.ndarray:
    """[n, c_out, H', W'] -> [n * H' * W' * groups, out_par] beats (missing channels 0)."""
    n, c, h, w = a.shape
    full = np.zeros((n, p.groups * p.out_par, h, w), dtype=np.int64)
    full[:, :c] = a
    full = full.reshape(n, p.groups, p.out_par, h, w)
    return np.transpose(full, (0, 3, 4, 1, 2)).reshape(-1, p.out_par)


def _expected_beats(p: BCNNConvParams, outputs: dict) -> dict:
    if p.thresholds:
        y = outputs["y"]
        y = y[None] if y.ndim == 3 else y
        return {"y": (_group_channels(y, p) > 0).astype(np.int64)}
    s = outputs["sums"]
    s = s[None] if s.ndim == 3 else s
    return {"sums": _group_channels(s, p)}


def _from_beats(p: BCNNConvParams, fields: dict, inputs: dict) -> dict:
    n = _images(inputs).shape[0]
    h, w = p.out_shape
    key = "y" if p.thresholds else "sums"
    a = np.asarray(fields[key]).reshape(n, h, w, p.groups, p.out_par)
    a = np.transpose(a, (0, 3, 4, 1, 2)).reshape(n, p.groups * p.out_par, h, w)[:, :p.c_out]
    if p.thresholds:
        a = np.where(a > 0, 1, -1).astype(np.int8)
    else:
        a = a.astype(np.int32)
    return {key: a if inputs["x"].ndim == 4 else a[0]}


CORE = register(Core(
    name="bcnn-conv",
    description="streaming binarized 3x3 conv layer (XNOR-popcount or separable outer(u, v) "
                "kernels), threshold and 2x2 max-pool; weights loaded through the stream",
    params=BCNNConvParams,
    build=_build,
    top_name=_top_name,
    stimulus=_stimulus,
    check_vectors=_check_vectors,
    golden=_golden,
    to_beats=_to_beats,
    expected_beats=_expected_beats,
    from_beats=_from_beats,
    transactions=lambda p, inputs: _images(inputs).shape[0] * p.out_shape[0] * p.out_shape[1],
    out_beats_per_transaction=lambda p: p.groups,
    vectors_doc="x: int8 +-1 [c_in, height, width] (or [n, c_in, height, width] for n images "
                "through one layer); w: int8 +-1 [c_out, c_in, 3, 3] (kernel=full) or u, v: "
                "int8 +-1 [c_out, c_in, 3] (kernel=separable, kernel = outer(u, v)); t: int32 "
                "[c_out] (output +1 where sum >= t; optional with thresholds=false)",
    dump_doc="y: int8 +-1 [c_out, H', W'] (after pooling when on), or sums: int32 "
             "[c_out, height, width] with thresholds=false ([n, ...] for n images)",
    formats=lambda p: [],
))
