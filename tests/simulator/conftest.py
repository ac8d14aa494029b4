"""Fixtures of the simulator's tests: a frozen simulator without latency, and a session on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qbt_exporter.simulator import Simulator, SimulatorConfig
from tests.simulator.wire import session_cookie


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A frozen (time_scale 0) simulator without latency: exact, fast comparisons."""
    with Simulator(SimulatorConfig(torrents=60, latency=False, churn=False, time_scale=0.0)) as s:
        yield s


@pytest.fixture
def cookie(sim: Simulator) -> str:
    return session_cookie(sim)
