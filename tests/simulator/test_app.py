"""The running simulator as a whole: the real server's latency and the command line.

Why: the benchmarks compare the exporter with the time a real 4.0.4 takes, so the simulator must
spend it; and ``python -m qbt_exporter.simulator`` is how benchmarks and soak tests start it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from qbt_exporter.simulator import Simulator, SimulatorConfig, app, main
from qbt_exporter.simulator.server import Drop, Request, Response
from tests.clocks import FakeClock, fake_module_time
from tests.simulator.wire import LOGIN, closing_session


@contextmanager
def _timed(
    monkeypatch: pytest.MonkeyPatch, torrents: int
) -> Iterator[tuple[FakeClock, Simulator, requests.Session]]:
    """A simulator with latency on, its sleeps on a fake clock, and a session logged in to it."""
    clock = FakeClock()
    fake_module_time(monkeypatch, clock, app)
    with (
        Simulator(SimulatorConfig(torrents=torrents, latency=True, churn=False)) as sim,
        closing_session() as http,
    ):
        http.post(sim.url + "/login", data=LOGIN)
        yield clock, sim, http


def test_latency_of_the_real_server_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator spends a real 4.0.4's time per request: 0.2 ms per listed torrent, 1.4 ms per
    properties call. Its sleeps run on a fake clock here, so the figures are exact and cost nothing."""
    with _timed(monkeypatch, torrents=1000) as (clock, sim, http):
        started = clock.now
        http.get(sim.url + "/query/torrents")
        assert clock.now - started == pytest.approx(0.2)
        h = sim.torrent_hashes()[0]
        started = clock.now
        http.get(f"{sim.url}/query/propertiesGeneral/{h}")
        assert clock.now - started == pytest.approx(0.0014)


def test_latency_counts_the_servers_own_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request's time runs from when it reached the server: 1 ms spent before the handler (the
    thread started for the connection, the parsing) leaves 0.4 ms of a properties call's 1.4 ms to
    sleep, where counting from the lock alone made it 2.4 ms."""
    with _timed(monkeypatch, torrents=10) as (clock, sim, http):
        assert sim._server is not None
        handler = sim._server.handler

        def parsed_in_1_ms(request: Request) -> Response | Drop:
            clock.advance(0.001)
            return handler(request)

        sim._server.handler = parsed_in_1_ms
        h = sim.torrent_hashes()[0]
        started = clock.now
        http.get(f"{sim.url}/query/propertiesGeneral/{h}")
        assert clock.now - started == pytest.approx(0.0014)


def test_a_request_that_came_while_the_server_was_busy_gets_its_whole_latency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real server answers one request at a time: a request that arrived while another was
    being answered is served in full after it, not sooner for having waited."""
    with _timed(monkeypatch, torrents=10) as (clock, sim, http):
        cookie = f"SID={http.cookies['SID']}"
        first, second = sim.torrent_hashes()[:2]
        arrived = clock.now  # both at once

        def properties(h: str) -> Request:
            path = f"/query/propertiesGeneral/{h}"
            headers = {"cookie": cookie, "host": f"127.0.0.1:{sim.port}"}
            return Request("GET", path, path, {}, headers, {}, "127.0.0.1", sim.port, arrived)

        assert isinstance(sim._handle(properties(first)), Response)
        assert clock.now - arrived == pytest.approx(0.0014)
        assert isinstance(sim._handle(properties(second)), Response)
        assert clock.now - arrived == pytest.approx(0.0028)


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
