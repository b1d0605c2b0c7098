"""The core registry: every generator narrowgen ships, described once (DESIGN.md: core contract).

A :class:`Core` bundles what the CLI, the generic testbench, the manifest writer and the synthesis
flow need to handle a generator with no core-specific code of their own:

* ``params``: a frozen :class:`gen.params.Params` dataclass (types, defaults, allowed values);
* ``build(p)``: the ``wiring.Component`` with stream ports ``i`` and ``o``;
* ``top_name(p)``: the Verilog module name, carrying the parameters that shape the datapath;
* ``stimulus(p, rng, n)``: ``n`` random transactions plus the family's corner cases, as the same
  dict of arrays a user passes with ``verify --vectors``;
* ``check_vectors(p, arrays)``: validate a user's vectors (raise :class:`VectorError`);
* ``golden(p, inputs)``: the expected outputs (``sim.golden``), same dict shape as ``--dump``;
* ``to_beats(p, inputs)`` / ``expected_beats(p, outputs)``: numpy arrays of payload fields for
  ``i`` and ``o``; ``from_beats(p, fields, inputs)``: hardware output fields back to outputs;
* ``transactions(p, inputs)``: how many transactions (e.g. blocks) the inputs hold, and
  ``out_beats_per_transaction(p)`` to map a failing beat back to its transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .params import ParamError, Params

__all__ = ["Core", "VectorError", "register", "get_core", "all_cores"]


class VectorError(ValueError):
    """User-supplied test vectors are missing, malformed or out of range (one line)."""


Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Core:
    name: str
    description: str
    params: type[Params]
    build: Callable[[Params], Any]
    top_name: Callable[[Params], str]
    stimulus: Callable[[Params, np.random.Generator, int], Arrays]
    check_vectors: Callable[[Params, Arrays], Arrays]
    golden: Callable[[Params, Arrays], Arrays]
    to_beats: Callable[[Params, Arrays], Arrays]
    expected_beats: Callable[[Params, Arrays], Arrays]
    from_beats: Callable[[Params, Arrays, Arrays], Arrays]
    transactions: Callable[[Params, Arrays], int]
    out_beats_per_transaction: Callable[[Params], int]
    vectors_doc: str
    dump_doc: str
    formats: Callable[[Params], list[str]]

    def make_params(self, **values) -> Params:
        return self.params(**values)


_REGISTRY: dict[str, Core] = {}


def register(core: Core) -> Core:
    if core.name in _REGISTRY:
        raise ValueError(f"core {core.name!r} registered twice")
    _REGISTRY[core.name] = core
    return core


def _load() -> None:
    # Importing the entries registers them; kept in one place so `narrowgen list` sees them all.
    from .cores import (  # noqa: F401
        bcnn_conv,
        mx_array,
        mx_dequantize,
        mx_dot,
        mx_quantize,
        overq_array,
        overq_encoder,
    )


def all_cores() -> dict[str, Core]:
    _load()                       # idempotent: modules register once, on first import
    return dict(sorted(_REGISTRY.items()))


def get_core(name: str) -> Core:
    cores = all_cores()
    if name not in cores:
        raise ParamError(f"unknown core {name!r}; available: {', '.join(cores)}")
    return cores[name]
