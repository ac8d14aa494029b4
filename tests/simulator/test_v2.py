"""The simulator's /api/v2 mode: a 4.6.7 over the same torrent world, held to the 4.5.2 recordings
and to the exporter's golden v2 output (issue 14: the demo shows free disk space and alt speeds)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from qbt_exporter.collectors import Collectors
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import render_text
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.flavours.common import (
    parse_properties,
    parse_torrents,
    parse_trackers,
    parse_transfer,
)
from qbt_exporter.scraper import Scraper
from qbt_exporter.simulator import Simulator, SimulatorConfig, world
from qbt_exporter.simulator.world import ALT_SPEED_FROM, World
from qbt_exporter.stats import Stats
from qbt_exporter.trackers import summarise
from tests.clocks import FakeClock, fake_module_time
from tests.recording import load
from tests.simulator.wire import closing_session

GOLDEN_V2 = Path(__file__).resolve().parents[1] / "golden" / "v2-4.5.2.prom"
LOGIN = {"username": "admin", "password": "adminadmin"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(
        SimulatorConfig(api="v2", torrents=40, latency=False, churn=False, time_scale=0)
    ) as running:
        yield running


def _session(sim: Simulator) -> requests.Session:
    """A logged-in session that retries on a pooled connection the server closed (it closes after
    every reply without saying so, like 4.0.4: see ``closing_session``)."""
    http = closing_session()
    assert http.post(sim.url + "/api/v2/auth/login", data=LOGIN, timeout=10).text == "Ok."
    return http


# --- the wire, against what a real 4.5.2 answered -------------------------------------------------
@pytest.mark.parametrize(
    ("recording", "method", "path", "data"),
    [
        ("01-legacy-version-api-probe", "GET", "/version/api", None),
        ("03-webapiVersion-nocookie", "GET", "/api/v2/app/webapiVersion", None),
        ("04-torrents-info-nocookie", "GET", "/api/v2/torrents/info", None),
        ("05-login-wrong-password", "POST", "/api/v2/auth/login", {"username": "admin", "password": "x"}),
        ("07-login-ok", "POST", "/api/v2/auth/login", LOGIN),
    ],
)
def test_status_and_body_as_the_real_server_without_a_session(
    sim: Simulator, recording: str, method: str, path: str, data: dict[str, str] | None
) -> None:
    real = load("4.5.2", recording)
    reply = requests.request(method, sim.url + path, data=data, timeout=10)
    assert reply.status_code == real.status
    if real.status == 200:
        assert reply.text == real.text
    if real.set_cookies:
        assert reply.headers["set-cookie"].startswith("SID=")


def _read_keys(parse: Any, obj: dict[str, Any]) -> set[str]:
    """The keys of ``obj`` the exporter's parser reads: those whose removal changes its result."""
    whole = parse(obj)
    return {key for key in obj if parse({k: v for k, v in obj.items() if k != key}) != whole}


def test_maindata_has_every_key_the_exporter_reads_from_the_real_one(sim: Simulator) -> None:
    real = load("4.5.2", "14-sync-maindata-rid0").json()
    ours = _session(sim).get(sim.url + "/api/v2/sync/maindata", params={"rid": 0}, timeout=10).json()
    # the recorded 4.5.2 had not measured its disk yet (-1, read as unknown): that key is added by hand
    wanted_state = _read_keys(parse_transfer, real["server_state"]) | {"free_space_on_disk"}
    assert "use_alt_speed_limits" in wanted_state
    assert wanted_state <= ours["server_state"].keys()
    real_item = next(iter(real["torrents"].values()))
    wanted_item = _read_keys(lambda item: parse_torrents([("a" * 40, item)]), real_item)
    missing = wanted_item - next(iter(ours["torrents"].values())).keys()
    # The one 4.1+ list key the world's 4.0.4 items lack: the exporter reads it from the properties
    # call it makes on every 4.x anyway (for wasted bytes and connections).
    assert missing <= {"seeding_time"}, missing


def test_properties_as_the_real_server(sim: Simulator) -> None:
    http = _session(sim)
    real = load("4.5.2", "19-properties-pausedDL").json()
    some_hash = next(iter(sim.torrent_hashes()))
    ours = http.get(sim.url + "/api/v2/torrents/properties", params={"hash": some_hash}, timeout=10).json()
    assert _read_keys(parse_properties, real) <= ours.keys()
    unknown = http.get(sim.url + "/api/v2/torrents/properties", params={"hash": "0" * 40}, timeout=10)
    assert unknown.status_code == load("4.5.2", "29-properties-unknown-hash").status == 404


def test_trackers_as_the_real_server_with_failures_the_exporter_classifies() -> None:
    """The keys and pseudo-entries of the 4.5.2 recordings; failing trackers give the reasons real
    trackers send, so the demo's tracker panels have unregistered torrents to show."""
    real = load("4.5.2", "26-trackers-stalledUP").json()
    config = SimulatorConfig(api="v2", torrents=400, latency=False, churn=False, time_scale=0)
    with Simulator(config) as sim:
        http = _session(sim)
        statuses: set[str] = set()
        for some_hash in sim.torrent_hashes():
            reply = http.get(sim.url + "/api/v2/torrents/trackers", params={"hash": some_hash}, timeout=10)
            ours = reply.json()
            assert [e["url"] for e in ours[:3]] == [e["url"] for e in real[:3]]
            assert all(e.keys() == real[3].keys() for e in ours)
            entries, bad = parse_trackers(ours)
            assert bad == 0
            statuses.add(summarise(entries).status)
        unknown = http.get(sim.url + "/api/v2/torrents/trackers", params={"hash": "0" * 40}, timeout=10)
    assert unknown.status_code == 404
    assert {"working", "unregistered", "unreachable", "auth"} <= statuses, statuses


# --- the exporter against it -----------------------------------------------------------------------
def test_the_exporter_reads_it_as_a_v2_server_with_disk_and_alt_speed(sim: Simulator) -> None:
    stats = Stats()
    client = Client(sim.url, "admin", "adminadmin", stats=stats)
    try:
        result = Scraper(client, stats).scrape(Deadline(30))
    finally:
        client.close()
    snapshot = result.snapshot
    assert snapshot is not None
    assert (snapshot.server.version, snapshot.server.api) == ("v4.6.7", "v2")
    assert snapshot.transfer.free_disk_space is not None and snapshot.transfer.free_disk_space > 0
    assert snapshot.transfer.alt_speed_limits is not None
    assert len(snapshot.torrents) == 40


def _families(text: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))


def test_the_exposition_has_the_families_of_the_golden_v2_output(sim: Simulator) -> None:
    stats = Stats()
    client = Client(sim.url, "admin", "adminadmin", stats=stats)
    try:
        collectors = Collectors(Scraper(client, stats), stats)
        text = render_text(collectors.collect_within(Deadline(30))).decode()
    finally:
        client.close()
    assert "qbittorrent_up 1" in text
    # the recorded 4.5.2 had not measured its disk yet, so its golden output lacks that one family
    assert _families(text) == _families(GOLDEN_V2.read_text()) | {"qbittorrent_free_disk_space_bytes"}
    assert "qbittorrent_free_disk_space_bytes " in text and "qbittorrent_alt_speed_limits_enabled " in text


# --- the world behind it: the alternative limits' schedule and the disk --------------------------------
def test_alt_speed_holds_the_last_ten_minutes_of_each_hour_and_caps_the_speeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    fake_module_time(monkeypatch, clock, world)
    w = World(SimulatorConfig(api="v2", torrents=100, latency=False, churn=False, seed=4))
    seen = {False: 0, True: 0}
    for _ in range(3600):
        clock.advance(1.0)
        w.advance()
        state = w.disk_and_limits()
        alt = bool(state["use_alt_speed_limits"])
        seen[alt] += 1
        assert alt == (w.tick_time() % 3600 >= ALT_SPEED_FROM)
        if alt and w.tick_time() % 3600 > ALT_SPEED_FROM:  # a full step under the limits
            assert sum(w.torrents[h].dlspeed for h in w.active) <= state["dl_rate_limit"]
            assert sum(w.torrents[h].upspeed for h in w.active) <= state["up_rate_limit"]
        else:
            assert state["dl_rate_limit"] == 0 or alt
    assert seen[True] == 3600 - ALT_SPEED_FROM and seen[False] == ALT_SPEED_FROM


def test_downloads_fill_the_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    fake_module_time(monkeypatch, clock, world)
    w = World(SimulatorConfig(api="v2", torrents=100, latency=False, churn=False, seed=4))
    before = w.disk_and_limits()["free_space_on_disk"]
    downloaded_before = w.session_dl
    clock.advance(600.0)
    w.advance()
    assert before - w.disk_and_limits()["free_space_on_disk"] == w.session_dl - downloaded_before > 0


def test_the_legacy_server_has_no_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    fake_module_time(monkeypatch, clock, world)
    w = World(SimulatorConfig(torrents=10, latency=False, churn=False))
    clock.advance(3500.0)
    w.advance()
    assert not w.alt_speed()


def test_free_space_never_grows_as_torrents_come_and_go(monkeypatch: pytest.MonkeyPatch) -> None:
    """Removed torrents keep their files (qBittorrent's default): the demo's disk does not refill
    with space the initial library never took (it grew by 3 GB in ten minutes before)."""
    clock = FakeClock()
    fake_module_time(monkeypatch, clock, world)
    w = World(SimulatorConfig(api="v2", torrents=100, latency=False, churn=True, seed=4))
    free = w.disk_and_limits()["free_space_on_disk"]
    for _ in range(600):
        clock.advance(1.0)
        w.advance()
        now = w.disk_and_limits()["free_space_on_disk"]
        assert now <= free
        free = now


def test_connections_are_kept_alive_as_by_4_1_and_later(sim: Simulator) -> None:
    """Every reply says ``connection: keep-alive`` and the next request (even a pipelined one) is
    answered on the same connection, as a real 4.1+ does (the legacy simulator closes instead)."""
    host = f"Host: 127.0.0.1:{sim.port}\r\n"
    form = "username=admin&password=adminadmin"
    login = (
        f"POST /api/v2/auth/login HTTP/1.1\r\n{host}Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\n\r\n{form}"
    )
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.sendall(login.encode())
        first = _reply_on(sock)
        cookie = f"Cookie: {first[1]['set-cookie'].split(';')[0]}\r\n"
        version = f"GET /api/v2/app/version HTTP/1.1\r\n{host}{cookie}\r\n"
        sock.sendall(f"{version}GET /api/v2/app/webapiVersion HTTP/1.1\r\n{host}{cookie}\r\n".encode())
        second, third = _reply_on(sock), _reply_on(sock)
    assert [r[0] for r in (first, second, third)] == [200, 200, 200]
    assert all(r[1]["connection"] == "keep-alive" for r in (first, second, third))
    assert (first[2], second[2], third[2]) == (b"Ok.", b"v4.6.7", b"2.9.3")


def _reply_on(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One reply read off ``sock`` by its content-length, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError("the server closed the connection")
        data += byte
    head, _, _ = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    body = b""
    while len(body) < int(headers["content-length"]):
        body += sock.recv(int(headers["content-length"]) - len(body))
    return int(lines[0].split()[1]), headers, body
