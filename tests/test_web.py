import gzip
import socket

import requests

from qbt_exporter.collector import Collector
from qbt_exporter.deadline import Deadline
from qbt_exporter.errors import Unreachable
from qbt_exporter.scraper import Scraper
from qbt_exporter.stats import Stats
from qbt_exporter.web import ExporterApp, scrape_budget, serve
from tests.fakes import FakeClient, FakeFlavour, torrent


class RecordingCollector(Collector):
    """A real collector that remembers the deadline each scrape was given."""

    def __init__(self, flavour: FakeFlavour) -> None:
        stats = Stats()
        super().__init__(Scraper(FakeClient(), stats, detect=lambda *_: flavour), stats)  # type: ignore[arg-type]
        self.budgets: list[float] = []

    def collect_within(self, deadline: Deadline):  # type: ignore[no-untyped-def]
        self.budgets.append(deadline.remaining())
        return super().collect_within(deadline)


class Exploding(RecordingCollector):
    def collect_within(self, deadline: Deadline):  # type: ignore[no-untyped-def]
        raise RuntimeError("bug")


def test_budget_is_prometheus_timeout_minus_offset() -> None:
    assert scrape_budget({"HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS": "10"}, 0.5) == 9.5
    assert scrape_budget({}, 0.5) == 9.5  # Prometheus's default timeout when no header
    assert scrape_budget({"HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS": "nan"}, 0.5) == 9.5
    assert scrape_budget({"HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS": "0.2"}, 0.5) == 0.1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(collector: Collector):  # type: ignore[no-untyped-def]
    return serve(ExporterApp(collector, timeout_offset=0.5), "127.0.0.1", _free_port())


def test_routes_over_a_real_socket() -> None:
    collector = RecordingCollector(FakeFlavour(torrents=[torrent(1)]))
    server = run(collector)
    base = f"http://127.0.0.1:{server.port}"
    try:
        health = requests.get(f"{base}/healthz", timeout=5)
        assert health.status_code == 200 and collector.budgets == []  # no qBittorrent call
        assert "/metrics" in requests.get(f"{base}/", timeout=5).text
        assert requests.get(f"{base}/nope", timeout=5).status_code == 404
        reply = requests.get(
            f"{base}/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"}, timeout=5
        )
        assert reply.status_code == 200 and "qbittorrent_up 1.0" in reply.text
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert 2.4 < collector.budgets[-1] <= 2.5
    finally:
        server.stop()


def test_gzip_when_asked() -> None:
    server = run(RecordingCollector(FakeFlavour(torrents=[torrent(1)])))
    try:
        raw = requests.get(
            f"http://127.0.0.1:{server.port}/metrics",
            headers={"Accept-Encoding": "gzip"},
            stream=True,
            timeout=5,
        ).raw.read()
        assert b"qbittorrent_up 1.0" in gzip.decompress(raw)
    finally:
        server.stop()


def test_internal_error_still_answers_200_with_up_zero() -> None:
    server = run(Exploding(FakeFlavour()))
    try:
        reply = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
        assert reply.status_code == 200 and "qbittorrent_up 0.0" in reply.text
    finally:
        server.stop()


def test_down_qbittorrent_is_200_with_up_zero() -> None:
    server = run(RecordingCollector(FakeFlavour(fail=Unreachable("refused"))))
    try:
        reply = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
        assert reply.status_code == 200 and "qbittorrent_up 0.0" in reply.text
        assert "qbittorrent_torrent_" not in reply.text
    finally:
        server.stop()


def test_openmetrics_only_clients_get_openmetrics() -> None:
    server = run(RecordingCollector(FakeFlavour(torrents=[torrent(1)])))
    try:
        reply = requests.get(
            f"http://127.0.0.1:{server.port}/metrics",
            headers={"Accept": "application/openmetrics-text;version=1.0.0"},
            timeout=5,
        )
        assert reply.headers["Content-Type"].startswith("application/openmetrics-text")
        assert reply.text.endswith("# EOF\n") and "qbittorrent_up 1.0" in reply.text
    finally:
        server.stop()
