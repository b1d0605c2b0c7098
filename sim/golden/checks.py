"""Argument checks shared by the golden models: scalar ints and bools, with messages that name
the argument, quote the value and give what is allowed."""

from __future__ import annotations

import numpy as np

__all__ = ["check_bool", "check_int"]


def check_int(name: str, value: object, lo: int, hi: int) -> int:
    """``value`` as an int if it is an integer (not a bool) in ``lo..hi``, else ``ValueError``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or not lo <= value <= hi:
        raise ValueError(f"{name} must be an int in {lo}..{hi}, not {value!r}")
    return int(value)


def check_bool(name: str, value: object) -> bool:
    """``value`` as a bool if it is one, else ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return bool(value)
