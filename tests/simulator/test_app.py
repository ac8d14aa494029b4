"""The running simulator as a whole: the real server's latency and the command line.

Why: the benchmarks compare the exporter with the time a real 4.0.4 takes, so the simulator must
spend it; and ``python -m qbt_exporter.simulator`` is how benchmarks and soak tests start it.
"""

from __future__ import annotations

import time

import pytest
import requests

from qbt_exporter.simulator import Simulator, SimulatorConfig, main
from tests.simulator.wire import LOGIN


def test_latency_of_the_real_server_order() -> None:
    with (
        Simulator(SimulatorConfig(torrents=1000, latency=True, churn=False)) as sim,
        requests.Session() as http,
    ):
        http.post(sim.url + "/login", data=LOGIN)
        started = time.perf_counter()
        http.get(sim.url + "/query/torrents")
        assert time.perf_counter() - started >= 0.2
        h = sim.torrent_hashes()[0]
        started = time.perf_counter()
        http.get(f"{sim.url}/query/propertiesGeneral/{h}")
        assert time.perf_counter() - started >= 0.0014


def test_main_serves_until_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", interrupt)
    assert main(["--torrents", "3", "--port", "0", "--no-latency"]) == 0
