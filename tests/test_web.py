"""The WSGI app: routes, the scrape budget, and the error boundary around scraping and rendering."""

from __future__ import annotations

import gzip
import logging
import math
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from qbt_exporter import web
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import Family
from qbt_exporter.metrics import spec
from qbt_exporter.qbittorrent.errors import Unreachable
from qbt_exporter.qbittorrent.model import Torrent, Transfer
from qbt_exporter.scraper import ScrapeResult
from qbt_exporter.web import MAX_SCRAPE_TIMEOUT, scrape_budget
from tests.fakes import FakeFlavour, torrent
from tests.waiting import eventually
from tests.webtools import ANSWER_WITHIN, RecordingCollector, running


class Exploding(RecordingCollector):
    def collect_within(self, deadline: Deadline) -> list[Family]:
        raise RuntimeError("bug")


def test_budget_is_prometheus_timeout_minus_offset() -> None:
    assert scrape_budget({"HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS": "10"}, 0.5) == 9.5
    assert scrape_budget({}, 0.5) == 9.5  # Prometheus's default timeout when no header
    assert scrape_budget({"HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS": "nan"}, 0.5) == 9.5
    assert scrape_budget({"HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS": "0.2"}, 0.5) == 0.1


@pytest.mark.parametrize(
    "header", ["inf", "Infinity", "1e10", "1e400", "-inf", "nan", "-5", "0", "soon", "", "\u0661"]
)
def test_budget_is_finite_and_bounded_whatever_the_header(header: str) -> None:
    budget = scrape_budget({"HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS": header}, 0.5)
    assert math.isfinite(budget) and 0.1 <= budget <= MAX_SCRAPE_TIMEOUT < threading.TIMEOUT_MAX


class GatedFlavour(FakeFlavour):
    """A flavour whose torrent list waits for ``release``: the scrape holding it stays running."""

    def __init__(self, release: threading.Event, **fields: Any) -> None:
        super().__init__(**fields)
        self.release = release

    def snapshot(self, deadline: Deadline) -> tuple[Transfer, list[Torrent]]:
        self.release.wait(ANSWER_WITHIN)
        return super().snapshot(deadline)


class Arrivals(RecordingCollector):
    """Opens the gate once ``expected`` scrapes have come in, so that the later ones join the first."""

    def __init__(self, expected: int) -> None:
        self.release = threading.Event()
        self.expected = expected
        super().__init__(GatedFlavour(self.release, torrents=[torrent(1)]))

    def collect_within(self, deadline: Deadline) -> list[Family]:
        with self.lock:
            if len(self.budgets) + 1 >= self.expected:
                self.release.set()
        return super().collect_within(deadline)


def test_concurrent_scrapes_with_an_infinite_timeout_all_get_data() -> None:
    """Defect 7: ``inf`` reached Event.wait in the shared scrape (OverflowError): 19 of 20 got up 0."""
    collector = Arrivals(expected=20)
    replies: list[str] = []
    with running(collector) as server:

        def scrape() -> None:
            reply = requests.get(
                f"http://127.0.0.1:{server.port}/metrics",
                headers={"X-Prometheus-Scrape-Timeout-Seconds": "inf"},
                timeout=ANSWER_WITHIN * 2,
            )
            replies.append(reply.text if reply.status_code == 200 else f"status {reply.status_code}")

        threads = [threading.Thread(target=scrape) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(ANSWER_WITHIN * 3)
    assert len(replies) == 20
    assert all("qbittorrent_up 1.0" in text for text in replies), [text[:60] for text in replies]


def test_deadlines_without_end_do_not_break_the_shared_scrape() -> None:
    """A scrape without a deadline (Deadline.never()) scrapes with Deadline.never(): the same overflow."""
    collector = Arrivals(expected=5)
    results: list[list[Family]] = []
    threads = [
        threading.Thread(target=lambda: results.append(collector.collect_within(Deadline.never())))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(ANSWER_WITHIN * 3)
    assert len(results) == 5
    assert all(families[0].rows == [(1.0,)] for families in results)  # qbittorrent_up 1 for each


def test_routes_over_a_real_socket() -> None:
    collector = RecordingCollector(FakeFlavour(torrents=[torrent(1)]))
    with running(collector) as server:
        base = f"http://127.0.0.1:{server.port}"
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


def test_gzip_when_asked() -> None:
    with running(RecordingCollector(FakeFlavour(torrents=[torrent(1)]))) as server:
        raw = requests.get(
            f"http://127.0.0.1:{server.port}/metrics",
            headers={"Accept-Encoding": "gzip"},
            stream=True,
            timeout=5,
        ).raw.read()
        assert b"qbittorrent_up 1.0" in gzip.decompress(raw)


@pytest.mark.parametrize("deflate", ["isal", "zlib"])
def test_gzip_from_either_deflate_inflates_to_the_plain_text(
    deflate: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ISA-L where it is installed, zlib where it is not: the client inflates the same text."""
    if deflate == "zlib":
        monkeypatch.setattr(web, "isal_zlib", None)
    else:
        assert web.isal_zlib is not None, "isal is a dependency on this platform (pyproject)"
    families = [Family(spec("qbittorrent_torrent_size_bytes"), [(f"{n:040x}", n * 1e6) for n in range(5000)])]
    plain = b"".join(web._encode(web._render(families, ""), False))
    body = b"".join(web._encode(web._render(families, ""), True))
    assert zlib.decompress(body, 16 + zlib.MAX_WBITS) == plain
    assert gzip.decompress(body) == plain
    assert len(body) < len(plain) / 3


def test_gzip_compresses_each_family_as_it_is_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The uncompressed text (18 MB at 10,000 torrents) is never held whole: each family's chunk
    goes into the gzip stream before the next family is rendered."""
    events: list[str] = []

    class Rows:
        def __init__(self, name: str) -> None:
            self.name = name

        def __iter__(self) -> Iterator[tuple[str, float]]:
            events.append(f"render {self.name}")
            yield self.name, 1.0

    real = web._compressor

    class Compressor:
        def __init__(self) -> None:
            self.inner = real()

        def compress(self, data: bytes) -> bytes:
            events.append("compress")
            return self.inner.compress(data)

        def flush(self) -> bytes:
            return self.inner.flush()

    class TwoFamilies(RecordingCollector):
        def collect_within(self, deadline: Deadline) -> list[Family]:
            return [Family(spec("qbittorrent_torrent_size_bytes"), Rows(n)) for n in ("a", "b")]

    monkeypatch.setattr(web, "_compressor", Compressor)
    app = web.ExporterApp(TwoFamilies(), timeout_offset=0.5)
    body = b"".join(app({"PATH_INFO": "/metrics", "HTTP_ACCEPT_ENCODING": "gzip"}, lambda *_: None))

    assert events == ["render a", "compress", "render b", "compress"]
    assert gzip.decompress(body).count(b"\n") == 6  # HELP, TYPE and one sample per family


def test_internal_error_still_answers_200_with_up_zero() -> None:
    with running(Exploding(FakeFlavour())) as server:
        reply = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
        assert reply.status_code == 200 and "qbittorrent_up 0.0" in reply.text


def test_down_qbittorrent_is_200_with_up_zero() -> None:
    with running(RecordingCollector(FakeFlavour(fail=Unreachable("refused")))) as server:
        reply = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
        assert reply.status_code == 200 and "qbittorrent_up 0.0" in reply.text
        assert "qbittorrent_torrent_" not in reply.text


def test_openmetrics_only_clients_get_openmetrics() -> None:
    with running(RecordingCollector(FakeFlavour(torrents=[torrent(1)]))) as server:
        reply = requests.get(
            f"http://127.0.0.1:{server.port}/metrics",
            headers={"Accept": "application/openmetrics-text;version=1.0.0"},
            timeout=5,
        )
        assert reply.headers["Content-Type"].startswith("application/openmetrics-text")
        assert reply.text.endswith("# EOF\n") and "qbittorrent_up 1.0" in reply.text


class BadRendering(RecordingCollector):
    """A scrape's families plus one whose rendering raises."""

    def __init__(self, bad: Family) -> None:
        super().__init__(FakeFlavour(torrents=[torrent(1)]))
        self.bad = bad

    def collect_within(self, deadline: Deadline) -> list[Family]:
        return [*super().collect_within(deadline), self.bad]


def _failing_rows() -> Iterator[tuple[object, ...]]:
    yield (f"{1:040x}", 1.0)
    raise RuntimeError("a bug in a lazy column")


HASH = f"{1:040x}"
BAD_FAMILIES = {
    "400-digit integer": Family(spec("qbittorrent_torrent_size_bytes"), [(HASH, 10**400)]),
    "lone surrogate": Family(spec("qbittorrent_torrent_info"), [(HASH, "\ud800", "", "", "", 1.0)]),
    "failing row reader": Family(spec("qbittorrent_torrent_size_bytes"), _failing_rows()),
}


@pytest.mark.parametrize("accept", ["", "application/openmetrics-text;version=1.0.0"])
@pytest.mark.parametrize("bad", list(BAD_FAMILIES), ids=list(BAD_FAMILIES))
def test_a_rendering_failure_is_a_valid_200_with_up_zero(
    bad: str, accept: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 4: rendering ran outside the error handling, so one odd value made every scrape a 500."""
    family = BAD_FAMILIES[bad]
    if bad == "failing row reader":
        family = Family(family.spec, _failing_rows())  # a fresh generator for each run
    with caplog.at_level(logging.ERROR), running(BadRendering(family)) as server:
        reply = requests.get(
            f"http://127.0.0.1:{server.port}/metrics", headers={"Accept": accept}, timeout=ANSWER_WITHIN
        )
    assert reply.status_code == 200
    names = {sample.name: sample.value for fam in _parse(reply.text, accept) for sample in fam.samples}
    assert names["qbittorrent_up"] == 0.0
    assert "qbittorrent_exporter_build_info" in names
    assert not any(name.startswith("qbittorrent_torrent_") for name in names)  # nothing half-rendered
    assert any(record.exc_info for record in caplog.records), "the traceback is logged"


class BrokenEverywhere(Exploding):
    def families(self, result: ScrapeResult) -> list[Family]:
        raise RuntimeError("even the fallback fails")


@pytest.mark.parametrize("accept", ["", "application/openmetrics-text;version=1.0.0"])
def test_when_even_the_fallback_fails_the_answer_is_up_zero_alone(accept: str) -> None:
    with running(BrokenEverywhere()) as server:
        reply = requests.get(
            f"http://127.0.0.1:{server.port}/metrics", headers={"Accept": accept}, timeout=ANSWER_WITHIN
        )
    assert reply.status_code == 200
    assert [s.value for fam in _parse(reply.text, accept) for s in fam.samples] == [0.0]


def _parse(text: str, accept: str) -> list[Any]:
    return list(parse_openmetrics(text) if accept else text_string_to_metric_families(text))


class _Answered(RecordingCollector):
    """Counts ``answered``: when the work kept off the scrape's path may begin."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.answered_count = 0
        self.fail = fail

    def collect_within(self, deadline: Deadline) -> list[Family]:
        if self.fail:
            raise RuntimeError("bug")
        return super().collect_within(deadline)

    def answered(self) -> None:
        self.answered_count += 1


@pytest.mark.parametrize("fail", [False, True], ids=["scraped", "fallback"])
def test_the_work_between_scrapes_may_begin_once_the_answer_is_sent_not_when_it_is_rendered(
    fail: bool, caplog: pytest.LogCaptureFixture
) -> None:
    collector = _Answered(fail)
    app = web.ExporterApp(collector)
    with caplog.at_level(logging.CRITICAL, logger="qbt_exporter.web"):
        answer: Any = app({"PATH_INFO": "/metrics", "REQUEST_METHOD": "GET"}, lambda *_: None)
    assert (b"qbittorrent_up 0.0" if fail else b"qbittorrent_up 1.0") in b"".join(answer)
    assert collector.answered_count == 0  # rendered, not sent yet
    answer.close()  # what a WSGI server does once it has sent the answer
    answer.close()
    assert collector.answered_count == 1


def test_the_exporters_server_says_the_answer_is_sent() -> None:
    collector = _Answered()
    with running(collector) as server:
        reply = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=ANSWER_WITHIN)
        assert reply.status_code == 200
        # the close follows the last byte, on the connection's thread
        assert eventually(lambda: collector.answered_count == 1, ANSWER_WITHIN)
