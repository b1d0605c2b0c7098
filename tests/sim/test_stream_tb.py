"""The generic testbench and runner, on a toy core: passes when right, fails when wrong."""

import pytest

from gen.verify import verify

from .toy_core import TOY

SIMS = ["verilator", "icarus"]


@pytest.mark.parametrize("sim", SIMS)
def test_toy_core_passes_with_idle_and_backpressure(sim, tmp_path_factory):
    work = tmp_path_factory.getbasetemp() / "toy"
    r = verify(TOY, TOY.params(), sim=sim, n=500, seed=3, work_dir=work,
               idle_prob=0.3, stall_prob=0.3)
    assert r.transactions == 500
    assert r.passed, "\n".join(r.summary_lines())
    assert r.cycles > 500          # idle and backpressure cycles really happened


@pytest.mark.parametrize("sim", SIMS)
def test_toy_core_wrong_result_is_caught(sim, tmp_path_factory):
    work = tmp_path_factory.getbasetemp() / "toy"
    r = verify(TOY, TOY.params(bug=1), sim=sim, n=50, seed=3, work_dir=work)
    assert not r.passed
    assert r.mismatches == 50
    fm = r.first_mismatch
    assert fm["index"] == 0 and fm["expected"] != fm["actual"]


@pytest.mark.parametrize("sim", SIMS)
def test_toy_core_stall_is_caught(sim, tmp_path_factory):
    work = tmp_path_factory.getbasetemp() / "toy"
    r = verify(TOY, TOY.params(stall_after=20), sim=sim, n=50, seed=3, work_dir=work)
    assert not r.passed
    assert r.stalled and "20 of 50" in r.stalled
