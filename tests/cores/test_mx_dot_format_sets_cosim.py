"""mx-dot with a format set (a_format = b_format = mxfp8, mxfp6 or mxall): each block pair
chooses its A and B format at run time. The emitted Verilog against
``sim.golden.mx.dot_selected`` on both simulators, for every set the generator allows.

The stimulus (``sim.vectors.mx_dot_sets``) holds every member pair's corner groups and random
groups whose blocks mix format pairs; for mxall also blocks with an index past its six formats
(NaN results). Random idle input and backpressure throughout.
"""

import pytest

from gen.emit import emit
from gen.params import parse_assignments
from gen.registry import get_core
from hdl.formats import MX_FORMAT_SETS

from .test_mx_dot_cosim import check

SETS = list(MX_FORMAT_SETS)
ECP5 = ("adders=ecp5-ccu2c", "fifo=ecp5-ebr")
CASES = [
    # Every set at block 32 on Verilator and at block 8 on Icarus, exact accumulation.
    *[(s, (), "verilator", 2_000) for s in SETS],
    *[(s, ("block_size=8",), "icarus", 300) for s in SETS],
    # FP32 accumulation, the ECP5 knobs of `make bench`, lanes.
    ("mxfp8", ("block_size=8", "accum=fp32"), "icarus", 300),
    ("mxfp8", ("block_size=8", *ECP5, "muxes=ecp5-pfumx"), "verilator", 1_000),
    ("mxfp6", ("block_size=4", "lanes=2", "accum=fp32"), "icarus", 300),
]
#: `make test-all` adds the six-format set with each knob at block 32 (a minute or more each).
SLOW_CASES = [
    ("mxall", ("accum=fp32",), "verilator", 1_000),
    ("mxall", (*ECP5, "muxes=ecp5-pfumx"), "verilator", 1_000),
    ("mxall", ("lanes=8",), "verilator", 1_000),
    ("mxfp6", (*ECP5,), "icarus", 300),
]


def set_params(name, *extra):
    return [f"a_format={name}", f"b_format={name}", *extra]


def _ids(cases):
    return [f"{s}-{'-'.join(e) or 'b32'}-{sim}" for s, e, sim, _ in cases]


def check_set(name, extra, sim, n, work_dir):
    r = check(set_params(name, *extra), sim, work_dir, n=n)
    members = len(MX_FORMAT_SETS[name].members)
    # Corner groups of every member pair come first: far more groups ran than were random.
    assert r.transactions > n + 50 * members * members


@pytest.mark.parametrize("name, extra, sim, n", CASES, ids=_ids(CASES))
def test_format_set(name, extra, sim, n, work_dir):
    check_set(name, extra, sim, n, work_dir)


@pytest.mark.slow
@pytest.mark.parametrize("name, extra, sim, n", SLOW_CASES, ids=_ids(SLOW_CASES))
def test_format_set_more_knobs(name, extra, sim, n, work_dir):
    check_set(name, extra, sim, n, work_dir)


@pytest.mark.parametrize("multipliers", ["ecp5-dsp", "lut"])
def test_multipliers_do_not_change_a_set(multipliers):
    """A set's products are always in logic: only INT8 x INT8 of fixed formats uses DSPs, so
    every multipliers choice but ecp5-dsp-fp (refused) emits the same datapath."""
    core = get_core("mx-dot")

    def verilog(*extra):
        return emit(core, parse_assignments(core.params, set_params("mxall", *extra))).verilog

    assert verilog(f"multipliers={multipliers}").replace(
        f"_{'ecp5dsp' if multipliers == 'ecp5-dsp' else 'lutmul'}", "") == verilog()
