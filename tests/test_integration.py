"""The whole exporter (config → web → collector → scraper → flavour → client) against the
simulated qBittorrent 4.0.4, over real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from qbt_exporter.cli import build
from qbt_exporter.config import parse
from qbt_exporter.qbittorrent.model import BUSY_STATES
from qbt_exporter.simulator import Simulator, SimulatorConfig
from qbt_exporter.web import serve
from tests.tools import promtool_check_metrics

Samples = dict[str, list[tuple[dict[str, str], float]]]


@contextmanager
def exporter(sim: Simulator, *flags: str, password: str = "adminadmin") -> Iterator[str]:
    config = parse(
        [
            "--qbittorrent.url",
            sim.url,
            "--web.listen-address",
            "127.0.0.1:0",
            "--qbittorrent.timeout",
            "2s",
            *flags,
        ],
        environ={"QBITTORRENT_PASSWORD": password},
    )
    client, app = build(config)
    server = serve(app, config.listen_host, config.listen_port)
    try:
        yield f"http://127.0.0.1:{server.port}/metrics"
    finally:
        server.stop()
        client.logout()
        client.close()


def scrape(url: str, timeout: float = 10.0) -> tuple[str, Samples]:
    reply = requests.get(
        url, headers={"X-Prometheus-Scrape-Timeout-Seconds": str(timeout)}, timeout=timeout + 5
    )
    assert reply.status_code == 200
    out: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return reply.text, out


def value(samples: Samples, name: str, **labels: str) -> float:
    matches = [v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items())]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(torrents=40, latency=False, churn=False, time_scale=0)) as simulator:
        yield simulator


def test_healthy_scrape_reports_every_torrent_and_no_passkeys(sim: Simulator) -> None:
    with exporter(sim) as url:
        text, got = scrape(url)
    assert value(got, "qbittorrent_up") == 1
    assert value(got, "qbittorrent_version_info", version="v4.0.4", api="legacy", api_version="17") == 1
    hashes = {labels["hash"] for labels, _ in got["qbittorrent_torrent_info"]}
    assert hashes == set(sim.torrent_hashes())
    assert sum(v for _, v in got["qbittorrent_torrents"]) == 40
    trackers = {labels["tracker"] for labels, _ in got["qbittorrent_torrent_info"]}
    assert trackers and all("/" not in t and ":" not in t for t in trackers)
    assert "announce" not in text
    assert len(got["qbittorrent_torrent_wasted_bytes_total"]) == 40  # properties fetched for all
    promtool_check_metrics(text)


def test_steady_state_costs_two_requests_plus_busy_torrents(sim: Simulator) -> None:
    with exporter(sim) as url:
        scrape(url)
        before = sim.requests_by_path.copy()
        _, got = scrape(url)
        spent = sim.requests_by_path - before
    moving = {
        labels["hash"]
        for name in (
            "qbittorrent_torrent_download_speed_bytes_per_second",
            "qbittorrent_torrent_upload_speed_bytes_per_second",
        )
        for labels, v in got[name]
        if v > 0
    }
    busy = {
        labels["hash"] for labels, _ in got["qbittorrent_torrent_state"] if labels["state"] in BUSY_STATES
    }
    # Refreshes of busy torrents stop after the refresh budget: on a loaded machine some are left
    # for the next scrape, and the exporter says how many. Every busy torrent is either fetched or
    # counted as skipped; nothing else is fetched.
    skipped = value(got, "qbittorrent_exporter_torrent_properties_skipped")
    assert spent["/query/transferInfo"] == 1 and spent["/query/torrents"] == 1
    assert spent["/query/propertiesGeneral"] + skipped == len(moving | busy)
    assert sum(spent.values()) == 2 + spent["/query/propertiesGeneral"]
    assert sim.logins_ok == 1


def test_session_lost_means_one_new_login_and_no_gap(sim: Simulator) -> None:
    with exporter(sim) as url:
        scrape(url)
        sim.drop_sessions()  # as after a qBittorrent restart
        _, got = scrape(url)
    assert value(got, "qbittorrent_up") == 1
    assert sim.logins_ok == 2
    assert value(got, "qbittorrent_exporter_logins_total", outcome="ok") == 2


def test_wrong_password_backs_off_instead_of_getting_banned(sim: Simulator) -> None:
    with exporter(sim, password="wrong") as url:
        for _ in range(10):
            _, got = scrape(url)
    assert value(got, "qbittorrent_up") == 0
    assert "qbittorrent_torrent_info" not in got and "qbittorrent_dht_nodes" not in got
    assert sim.logins_failed == 1
    assert value(got, "qbittorrent_exporter_logins_total", outcome="rejected") == 1
    assert value(got, "qbittorrent_exporter_login_backoff_seconds") > 200


@pytest.mark.parametrize(
    ("kind", "outcome"), [("hang", "timeout"), ("html", "bad_response"), ("truncated", "bad_response")]
)
def test_a_failing_reply_costs_one_scrape_then_recovers(sim: Simulator, kind: str, outcome: str) -> None:
    """The failing call is made once and classified; the scrape still answers (scrape()'s read
    timeout, 5 s past the scrape's own, only turns a hang into a failure), and the next one is whole."""
    with exporter(sim) as url:
        scrape(url)
        sim.fail_next("/query/torrents", kind)
        _, failed = scrape(url, timeout=3)
        _, recovered = scrape(url)
    assert value(failed, "qbittorrent_up") == 0
    assert value(failed, "qbittorrent_exporter_requests_total", endpoint="torrents", outcome=outcome) == 1
    assert "qbittorrent_torrent_info" not in failed
    assert value(recovered, "qbittorrent_up") == 1


def test_a_connection_closed_without_reply_is_retried_once(sim: Simulator) -> None:
    """A legacy server drops connections unannounced; one resend hides that from the scrape."""
    with exporter(sim) as url:
        scrape(url)
        sim.fail_next("/query/torrents", "close")
        before = sim.requests_by_path["/query/torrents"]
        _, got = scrape(url)
        assert sim.requests_by_path["/query/torrents"] - before == 2
    assert value(got, "qbittorrent_up") == 1
    assert value(got, "qbittorrent_exporter_requests_total", endpoint="torrents", outcome="ok") == 2


def test_vanished_torrent_leaves_the_output_next_scrape(sim: Simulator) -> None:
    with exporter(sim) as url:
        scrape(url)
        gone = sim.torrent_hashes()[0]
        sim.remove_torrent(gone)
        _, got = scrape(url)
    assert gone not in {labels["hash"] for labels, _ in got["qbittorrent_torrent_info"]}
    assert all(labels.get("hash") != gone for series in got.values() for labels, _ in series)


def test_qbittorrent_down_at_start_then_up() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sim = Simulator(SimulatorConfig(torrents=5, latency=False, churn=False), port=port)
    with exporter(sim) as url:  # not started yet: nothing listens on its port
        _, down = scrape(url, timeout=2)
        sim.start()
        try:
            _, up = scrape(url)
        finally:
            sim.stop()
    assert value(down, "qbittorrent_up") == 0 and "qbittorrent_version_info" not in down
    assert value(up, "qbittorrent_up") == 1


def test_cut_short_scrape_is_valid_and_continues_next_time() -> None:
    config = SimulatorConfig(torrents=1500, latency=True, churn=False, time_scale=0)
    with Simulator(config) as sim, exporter(sim, "--web.timeout-offset", "0s") as url:
        text, got = scrape(url, timeout=1.5)
        assert value(got, "qbittorrent_up") == 1
        assert value(got, "qbittorrent_exporter_scrape_cut_short") == 1
        skipped = value(got, "qbittorrent_exporter_torrent_properties_skipped")
        assert skipped > 0
        assert len(got["qbittorrent_torrent_info"]) == 1500  # list values for all, properties for some
        promtool_check_metrics(text)
        asked = sim.requests_by_path["/query/propertiesGeneral"]
        _, nxt = scrape(url, timeout=1.5)
    # The next scrape goes on from where this one stopped: what it learnt is kept, so more torrents
    # carry property-only values. (Not "fewer skipped": busy torrents fetched once need a refresh and
    # count as skipped again, so on a loaded machine a slow second scrape could skip more.)
    assert sim.requests_by_path["/query/propertiesGeneral"] > asked
    wasted = "qbittorrent_torrent_wasted_bytes_total"
    # A first scrape slowed down by a loaded machine may have fetched no properties at all: then the
    # family is absent from it, which is zero torrents with property-only values, not an error.
    assert len(nxt.get(wasted, [])) > len(got.get(wasted, []))


def test_two_concurrent_scrapes_make_one_round_of_calls() -> None:
    config = SimulatorConfig(torrents=500, latency=True, churn=False, time_scale=0)
    with Simulator(config) as sim, exporter(sim) as url:
        scrape(url)  # log in, detect, fetch every property
        before = sim.requests_by_path["/query/torrents"]
        threads = [threading.Thread(target=scrape, args=(url,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sim.requests_by_path["/query/torrents"] - before == 1
        assert sim.logins_ok == 1


def test_tracker_health_from_the_simulator_shows_unregistered_torrents_by_host_only() -> None:
    """The demo's simulator serves realistic tracker failures: the exporter classifies them, one
    call per torrent, and labels the hosts only."""
    config = SimulatorConfig(torrents=400, latency=False, churn=False, time_scale=0)
    with Simulator(config) as sim, exporter(sim) as url:
        before = sim.requests_by_path.copy()
        text, got = scrape(url, timeout=30)
        spent = sim.requests_by_path - before
    statuses = {labels["status"] for labels, _ in got["qbittorrent_torrent_tracker_status"]}
    assert {"working", "unregistered", "unreachable"} <= statuses, statuses
    assert len(got["qbittorrent_torrent_tracker_status"]) == 400
    assert spent["/query/propertiesTrackers"] == 400
    hosts = {labels["tracker"] for labels, _ in got["qbittorrent_torrents_by_tracker_status"]}
    assert hosts == {
        "tracker.example.org",
        "tracker.example.net",
        "open.tracker.example.com",
        "bt.example.com",
    }
    assert "passkey=" not in text and "announce" not in text
