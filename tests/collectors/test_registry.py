"""The collectors one by one: each owns its families, runs in its own error boundary, and reports
its success and duration; the process metrics and their switch."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from qbt_exporter.cli import build
from qbt_exporter.collectors import Collectors, registry
from qbt_exporter.collectors.base import Collector, named
from qbt_exporter.collectors.process import as_families
from qbt_exporter.collectors.torrents import TorrentsCollector
from qbt_exporter.config import parse
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import Family, render_text
from qbt_exporter.metrics import CATALOGUE
from qbt_exporter.qbittorrent.errors import HttpError, Unreachable
from qbt_exporter.qbittorrent.model import TorrentProperties
from qbt_exporter.scraper import Scraper, ScrapeResult
from qbt_exporter.stats import Stats
from tests.fakes import FakeClient, FakeFlavour, torrent


def collectors(flavour: FakeFlavour, **kwargs: Any) -> Collectors:
    stats = Stats()
    scraper = Scraper(FakeClient(), stats, detect=lambda *_: flavour)  # type: ignore[arg-type]
    return Collectors(scraper, stats, **kwargs)


def samples(families: list[Family]) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {sorted labels: value}, read back from the text the exporter serves."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(render_text(families).decode()):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def by_collector(got: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str) -> dict[str, float]:
    return {dict(labels)["collector"]: value for labels, value in got[name].items()}


class FailingProperties(FakeFlavour):
    """qBittorrent answers the list, and 500 to every properties call."""

    def properties(self, torrent_hash: str, deadline: Deadline) -> TorrentProperties | None:
        self.property_calls.append(torrent_hash)
        raise HttpError("500 Internal Server Error")


def test_every_catalogue_family_has_exactly_one_owner() -> None:
    owners = registry.owners()
    assert set(owners) == {row.name for row in CATALOGUE}
    declared = [family for entry in registry.ENTRIES for family in entry.build(Stats()).families]
    assert len(declared) == len(set(declared)), "a family declared by two collectors"


def test_each_collector_emits_only_the_families_it_declares() -> None:
    flavour = FakeFlavour(torrents=[torrent(1, eta=5.0, ratio=1.0, completed=1.0, last_activity=2.0)])
    coll = collectors(flavour)
    result = coll.scraper.scrape(Deadline(5))
    for collector in coll.collectors:
        emitted = {family.spec.name for family in collector.collect(result)}
        assert emitted and emitted <= set(collector.families), collector.name


def test_a_healthy_scrape_reports_every_collector_successful() -> None:
    got = samples(collectors(FakeFlavour(torrents=[torrent(1)])).collect_within(Deadline(5)))
    assert by_collector(got, "qbittorrent_exporter_collector_success") == dict.fromkeys(registry.NAMES, 1.0)
    assert set(by_collector(got, "qbittorrent_exporter_collector_duration_seconds")) == set(registry.NAMES)
    assert by_collector(got, "qbittorrent_exporter_collector_errors_total") == dict.fromkeys(
        registry.NAMES, 0.0
    )


def test_a_failing_properties_pass_costs_only_its_own_collector() -> None:
    """Before: a failed properties call was invisible (skipped counted only the budget's leftovers)."""
    flavour = FailingProperties(torrents=[torrent(1), torrent(2)])
    got = samples(collectors(flavour).collect_within(Deadline(5)))
    assert got["qbittorrent_up"] == {(): 1.0}
    success = by_collector(got, "qbittorrent_exporter_collector_success")
    assert success == {
        "transfer": 1.0,
        "groups": 1.0,
        "torrents": 1.0,
        "exporter": 1.0,
        "torrent_properties": 0.0,
        "trackers": 1.0,
    }
    assert len(got["qbittorrent_torrent_info"]) == 2  # the torrents are all there
    assert "qbittorrent_torrent_wasted_bytes_total" not in got  # without the values the calls failed to get
    assert flavour.property_calls == [torrent(1).hash, torrent(2).hash]  # one failure stops nothing


def test_a_failing_properties_pass_is_logged_once_per_cause(caplog: pytest.LogCaptureFixture) -> None:
    flavour = FailingProperties(torrents=[torrent(1)])
    coll = collectors(flavour)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            coll.collect_within(Deadline(5))
        flavour.__class__ = FakeFlavour  # qBittorrent answers the properties calls again
        flavour.torrents = [torrent(2)]  # a new torrent: due at once
        coll.collect_within(Deadline(5))
    # (the first scrape's "connected to qBittorrent ..." line aside)
    messages = [r.getMessage() for r in caplog.records if not r.getMessage().startswith("connected to")]
    assert len(messages) == 2, messages
    assert "properties calls" in messages[0] and "500" in messages[0] and "answer again" in messages[1]


def test_qbittorrent_down_fails_the_collectors_that_read_it_not_the_exporters_own() -> None:
    got = samples(collectors(FakeFlavour(fail=Unreachable("refused"))).collect_within(Deadline(5)))
    assert got["qbittorrent_up"] == {(): 0.0}
    success = by_collector(got, "qbittorrent_exporter_collector_success")
    assert success == {
        "transfer": 0.0,
        "groups": 0.0,
        "torrents": 0.0,
        "exporter": 1.0,
        "torrent_properties": 0.0,
        "trackers": 0.0,
    }
    assert by_collector(got, "qbittorrent_exporter_collector_errors_total") == dict.fromkeys(
        registry.NAMES, 0.0
    )


class Broken(Collector):
    """Yields one family, then raises: a bug half-way through."""

    name = "broken"
    families = ("qbittorrent_free_disk_space_bytes",)  # the fake qBittorrent reports no free space

    def collect(self, result: ScrapeResult) -> Iterable[Family]:
        yield named("qbittorrent_free_disk_space_bytes", [(1.0,)])
        raise KeyError("a bug")


def test_an_exporter_bug_in_one_collector_is_logged_counted_and_poisons_nothing_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: one exception anywhere in the collector made the whole answer qbittorrent_up 0."""
    coll = collectors(FakeFlavour(torrents=[torrent(1)]))
    coll.collectors.insert(1, Broken())
    with caplog.at_level(logging.ERROR):
        first = samples(coll.collect_within(Deadline(5)))
        second = samples(coll.collect_within(Deadline(5)))
    assert first["qbittorrent_up"] == {(): 1.0}
    assert "qbittorrent_free_disk_space_bytes" not in first  # what it half built is dropped, not sent
    assert by_collector(first, "qbittorrent_exporter_collector_success")["broken"] == 0.0
    assert by_collector(first, "qbittorrent_exporter_collector_success")["torrents"] == 1.0
    assert len(first["qbittorrent_torrent_info"]) == 1 and "qbittorrent_version_info" in first
    assert by_collector(second, "qbittorrent_exporter_collector_errors_total")["broken"] == 2.0
    errors = [r for r in caplog.records if r.exc_info]
    assert len(errors) == 2 and "broken" in errors[0].getMessage() and errors[0].exc_info[0] is KeyError


def test_a_bug_in_the_torrents_collector_keeps_qbittorrent_up_over_http(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same through the web app: the answer says qBittorrent is up, with its global series."""
    from tests.webtools import RecordingCollector

    def boom(self: TorrentsCollector, result: ScrapeResult) -> Iterable[Family]:
        raise ValueError("a value nobody foresaw")

    monkeypatch.setattr(TorrentsCollector, "collect", boom)
    got = samples(RecordingCollector(FakeFlavour(torrents=[torrent(1)])).collect_within(Deadline(5)))
    assert got["qbittorrent_up"] == {(): 1.0} and "qbittorrent_dht_nodes" in got
    assert by_collector(got, "qbittorrent_exporter_collector_success")["torrents"] == 0.0


def test_the_fallback_comes_from_the_scraper_with_the_login_state() -> None:
    coll = collectors(FakeFlavour())
    coll.scraper.client.backoff = 42.0  # type: ignore[attr-defined]
    got = samples(coll.fallback())
    assert got["qbittorrent_up"] == {(): 0.0}
    assert got["qbittorrent_exporter_login_backoff_seconds"] == {(): 42.0}


def test_process_metrics_render_as_prometheus_client_renders_them() -> None:
    reg = CollectorRegistry(auto_describe=False)
    for make in (ProcessCollector, PlatformCollector, GCCollector):
        make(registry=reg)
    metrics = list(reg.collect())  # collected once: the values change between calls

    class Frozen:
        def collect(self) -> list[Any]:
            return metrics

    assert render_text(as_families(metrics)) == generate_latest(Frozen())  # type: ignore[arg-type]


def _served(argv: list[str]) -> str:
    _, app = build(
        parse(["--qbittorrent.url", "http://127.0.0.1:9", "--qbittorrent.timeout", "1s", *argv], {})
    )
    replies: list[str] = []
    body = app({"PATH_INFO": "/metrics", "REQUEST_METHOD": "GET"}, lambda status, _: replies.append(status))
    assert replies == ["200 OK"]
    return b"".join(body).decode()


def test_process_metrics_are_served_and_parse() -> None:
    names = {fam.name for fam in text_string_to_metric_families(_served([]))}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "python_info"} <= names
    assert "python_gc_collections" in names and "qbittorrent_up" in names


def test_disable_exporter_metrics_leaves_out_the_process_not_the_exporters_own() -> None:
    names = {fam.name for fam in text_string_to_metric_families(_served(["--web.disable-exporter-metrics"]))}
    assert not [name for name in names if name.startswith(("process_", "python_"))]
    assert "qbittorrent_exporter_collector_success" in names and "qbittorrent_up" in names
