"""Shared fixtures: one simulator build cache for the whole test session (and across runs)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def work_dir() -> Path:
    """Build cache shared by every co-simulation test; builds are keyed by Verilog content."""
    d = ROOT / "build" / "pytest"
    d.mkdir(parents=True, exist_ok=True)
    return d
