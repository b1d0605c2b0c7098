"""Stimulus for ``mx-dot`` with a format set: every block pair picks its A and B format per block.

Vector schema (every array ``uint8``): the :mod:`sim.vectors.mx_dot` arrays plus::

    a_sel, b_sel         [groups, blocks]               index of the block's format in the set

Each element code sits in the low bits of its slot (the codes of the set's narrower members
leave the high bits 0). Golden: :func:`sim.golden.mx.dot_selected`.

The groups are the single-format stimulus of every member pair (its corner groups unchanged, so
each pair's overflow, underflow, tie and NaN cases are there, and its random groups), then the
random groups' blocks are shuffled across groups so that most groups mix format pairs, and with
a set of fewer members than its index has codes a few blocks get an index past the members
(the hardware makes those groups NaN).
"""

from __future__ import annotations

import numpy as np

from hdl.formats import MX_FORMAT_SETS, MXFormatSet

from .mx_dot import KEYS, corner_dot_groups, random_dot_groups

__all__ = ["SEL_KEYS", "selected_dot_groups"]

SEL_KEYS = ("a_sel", "b_sel")
#: Groups that get one block with a format index past the set's members (when it has such codes).
BAD_SEL_GROUPS = 8


def _with_sel(groups: dict, i: int, j: int) -> dict:
    shape = groups["a_scales"].shape
    return {**groups, "a_sel": np.full(shape, i, np.uint8), "b_sel": np.full(shape, j, np.uint8)}


def _concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in (*KEYS, *SEL_KEYS)}


def selected_dot_groups(rng: np.random.Generator, fmt_set: str | MXFormatSet, groups: int,
                        blocks: int, block_size: int) -> dict[str, np.ndarray]:
    """Corner groups of every member pair, then about ``groups`` random groups of ``blocks``
    block pairs with formats mixed within groups (see the module docstring)."""
    fmt_set = MX_FORMAT_SETS[fmt_set] if isinstance(fmt_set, str) else fmt_set
    if not isinstance(fmt_set, MXFormatSet):
        raise ValueError(f"fmt_set must be one of {', '.join(MX_FORMAT_SETS)}, not {fmt_set!r}")
    members = fmt_set.members
    pairs = [(i, j) for i in range(len(members)) for j in range(len(members))]
    per_pair = -(-groups // len(pairs))
    corners, randoms = [], []
    for i, j in pairs:
        fa, fb = members[i], members[j]
        corners.append(_with_sel(corner_dot_groups(fa, fb, block_size, blocks), i, j))
        randoms.append(_with_sel(random_dot_groups(rng, fa, fb, per_pair, blocks, block_size),
                                 i, j))
    mixed = _concat(randoms)
    n = mixed["a_scales"].shape[0]
    # Shuffle the random blocks across groups: a block pair keeps its codes, scales and formats.
    order = rng.permutation(n * blocks)
    for key in (*KEYS, *SEL_KEYS):
        flat = mixed[key].reshape((n * blocks,) + mixed[key].shape[2:])
        mixed[key] = flat[order].reshape(mixed[key].shape)
    spare = (1 << fmt_set.element.sel_bits) - len(members)
    if spare and n:
        for g in rng.choice(n, size=min(BAD_SEL_GROUPS, n), replace=False):
            side = rng.choice(SEL_KEYS)
            mixed[side][g, rng.integers(blocks)] = len(members) + rng.integers(spare)
    return _concat([*corners, mixed])
