"""The running simulator as a whole: the real server's latency and the command line.

Why: the benchmarks compare the exporter with the time a real 4.0.4 takes, so the simulator must
spend it; and ``python -m qbt_exporter.simulator`` is how benchmarks and soak tests start it.
"""

from __future__ import annotations

import time

import pytest

from qbt_exporter.simulator import Simulator, SimulatorConfig, app, main
from tests.clocks import FakeClock, fake_module_time
from tests.simulator.wire import LOGIN, closing_session


def test_latency_of_the_real_server_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator spends a real 4.0.4's time per request: 0.2 ms per listed torrent, 1.4 ms per
    properties call. Its sleeps run on a fake clock here, so the figures are exact and cost nothing."""
    clock = FakeClock()
    fake_module_time(monkeypatch, clock, app)
    with (
        Simulator(SimulatorConfig(torrents=1000, latency=True, churn=False)) as sim,
        closing_session() as http,
    ):
        http.post(sim.url + "/login", data=LOGIN)
        started = clock.now
        http.get(sim.url + "/query/torrents")
        assert clock.now - started == pytest.approx(0.2)
        h = sim.torrent_hashes()[0]
        started = clock.now
        http.get(f"{sim.url}/query/propertiesGeneral/{h}")
        assert clock.now - started == pytest.approx(0.0014)


def test_main_serves_until_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", interrupt)
    assert main(["--torrents", "3", "--port", "0", "--no-latency"]) == 0


def test_main_runs_the_v2_server_on_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", interrupt)
    assert main(["--torrents", "3", "--port", "0", "--no-latency", "--api", "v2"]) == 0
    assert capsys.readouterr().out.startswith("simulated qBittorrent 4.6.7 (/api/v2) with 3 torrents on ")
