"""What the MX core entries share: block/lane parameter rules and block-row reshaping of vectors."""

from __future__ import annotations

import numpy as np

from ..params import POWERS_OF_TWO, ParamError
from ..registry import VectorError

BLOCK_SIZES = POWERS_OF_TWO(2, 64)
LANES_ALLOWED = "power of two dividing block_size (default: block_size, one block per beat)"


def check_lanes(block_size: int, lanes: int | None, lo: int = 1) -> None:
    if lanes is None:
        return
    ok = POWERS_OF_TWO(lo, block_size)
    if lanes not in ok:
        raise ParamError(f"parameter lanes={lanes} is not allowed with block_size={block_size}; "
                         f"allowed: {', '.join(map(str, ok))}")


class BlockLanes:
    """Methods of the parameter dataclasses that have ``block_size`` and ``lanes`` fields."""

    block_size: int
    lanes: int | None
    #: Fewest lanes the core takes.
    MIN_LANES = 1

    def check(self):
        check_lanes(self.block_size, self.lanes, self.MIN_LANES)

    @property
    def lanes_resolved(self) -> int:
        """``lanes`` with its default (``block_size``: one block per beat) filled in."""
        return self.block_size if self.lanes is None else self.lanes

    def resolved(self) -> dict:
        return {**self.as_dict(), "lanes": self.lanes_resolved}


def require(arrays: dict, name: str, dtype, what: str) -> np.ndarray:
    """Fetch one array of a user's vectors file, checking presence and dtype."""
    if name not in arrays:
        raise VectorError(f"vectors file has no array {name!r} ({what}); "
                          f"it holds: {', '.join(sorted(arrays)) or 'nothing'}")
    a = np.asarray(arrays[name])
    if a.dtype != np.dtype(dtype):
        raise VectorError(f"array {name!r} must be {np.dtype(dtype).name} ({what}), "
                          f"not {a.dtype.name}")
    if a.ndim == 0:
        raise VectorError(f"array {name!r} must have at least one dimension ({what})")
    if a.size == 0:
        raise VectorError(f"array {name!r} is empty: nothing to verify")
    return a


def pad_last_axis(a: np.ndarray, block_size: int) -> np.ndarray:
    """Zero-pad the last axis to whole blocks (MX_SPEC §11: partial last block)."""
    extra = (-a.shape[-1]) % block_size
    if extra == 0:
        return a
    pad = [(0, 0)] * (a.ndim - 1) + [(0, extra)]
    return np.pad(a, pad)
