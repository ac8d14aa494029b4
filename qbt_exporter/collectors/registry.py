"""Which collectors exist, which flags turn them on and off, and running them for one scrape.

Collectors, in the order their families appear (``collector`` label, what, switch):

- ``transfer``: version, connection status, global values, torrent counts by state and
  category; always on.
- ``groups``: totals by category, tag and tracker host, from the whole list whatever the
  filters; ``--[no-]collector.groups``.
- ``torrents``: the per-torrent series; ``--[no-]collector.torrents``.
- ``exporter``: the exporter's own (build, scrape duration, calls, logins, back-off, invalid
  values); always on.
- ``torrent_properties``: how the properties pass went; ``--[no-]collector.torrent-properties``,
  only with ``torrents``.
- ``trackers``: tracker health per torrent and per tracker host, and how the trackers pass went;
  ``--[no-]collector.trackers``, only with ``torrents`` (it is per-torrent calls and series).

``transfer`` and ``exporter`` cannot be turned off: the first costs no qBittorrent call of its own
(the calls it reads decide ``qbittorrent_up``), the second is how the exporter is watched. The
registry itself emits ``qbittorrent_up`` first and, last, each enabled collector's
``collector_success``, ``collector_duration_seconds`` and ``collector_errors_total``; then the
process metrics unless ``--web.disable-exporter-metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from qbt_exporter.collectors import probe
from qbt_exporter.collectors.base import Collector, Outcome, guarded, named
from qbt_exporter.collectors.exporter import ExporterCollector, counter_family
from qbt_exporter.collectors.groups import GroupsCollector
from qbt_exporter.collectors.process import ProcessMetrics
from qbt_exporter.collectors.properties import TorrentPropertiesCollector
from qbt_exporter.collectors.torrents import TorrentsCollector
from qbt_exporter.collectors.trackers import TrackersCollector
from qbt_exporter.collectors.transfer import TransferCollector
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import Family
from qbt_exporter.scraper import Scraper, ScrapeResult
from qbt_exporter.stats import Stats


@dataclass(frozen=True, slots=True)
class Entry:
    """One collector: how to build it and, when it may be turned off, its switch."""

    name: str
    build: Callable[[Stats], Collector]
    switch: str | None = None  # flag without the leading -- ; None: always on
    env: str | None = None
    help: str = ""
    requires: str | None = None  # another collector without which this one is off


ENTRIES: tuple[Entry, ...] = (
    Entry("transfer", lambda _: TransferCollector()),
    Entry(
        "groups",
        lambda _: GroupsCollector(),
        "collector.groups",
        "QBT_EXPORTER_COLLECTOR_GROUPS",
        "totals by category, tag and tracker host (counts by state, size, amount left, speeds, "
        "all-time bytes), always from the whole list whatever --torrents.include/exclude/max say",
    ),
    Entry(
        "torrents",
        lambda _: TorrentsCollector(),
        "collector.torrents",
        "QBT_EXPORTER_COLLECTOR_TORRENTS",
        "per-torrent series, for the torrents --torrents.include/exclude/max keep (the counts by "
        "state and category and the group totals stay without them)",
    ),
    Entry("exporter", ExporterCollector),
    Entry(
        "torrent_properties",
        lambda _: TorrentPropertiesCollector(),
        "collector.torrent-properties",
        "QBT_EXPORTER_COLLECTOR_TORRENT_PROPERTIES",
        "per-torrent properties calls (wasted bytes, seeding time, connections on older versions); "
        "needs collector.torrents",
        requires="torrents",
    ),
    Entry(
        "trackers",
        lambda _: TrackersCollector(),
        "collector.trackers",
        "QBT_EXPORTER_COLLECTOR_TRACKERS",
        "per-torrent trackers calls: tracker status per torrent and torrents by status per tracker host; "
        "needs collector.torrents",
        requires="torrents",
    ),
)
NAMES: tuple[str, ...] = tuple(entry.name for entry in ENTRIES)

# Families the registry itself emits, around the collectors' own.
OWN_FAMILIES = (
    "qbittorrent_up",
    "qbittorrent_exporter_collector_success",
    "qbittorrent_exporter_collector_duration_seconds",
    "qbittorrent_exporter_collector_errors_total",
)


def enabled(switched_off: Iterable[str]) -> frozenset[str]:
    """The collectors that run when those named in ``switched_off`` are turned off, with each
    collector's requirement applied (no properties pass without the per-torrent series)."""
    off = set(switched_off)
    on = {entry.name for entry in ENTRIES if entry.name not in off}
    return frozenset(name for name in on if _requirement(name) in on | {None})


def _requirement(name: str) -> str | None:
    return next(entry.requires for entry in ENTRIES if entry.name == name)


def owners() -> dict[str, str]:
    """Catalogue name → the collector (or "registry") that emits it: every family has one owner."""
    out = {name: "registry" for name in OWN_FAMILIES}
    out.update({name: "probe" for name in probe.FAMILIES})  # on /metrics with --config.file only
    for entry in ENTRIES:
        for family in entry.build(Stats()).families:
            out[family] = entry.name
    return out


class Collectors:
    """The enabled collectors over one scraper: one scrape in, the whole exposition's families out."""

    def __init__(
        self,
        scraper: Scraper,
        stats: Stats,
        *,
        names: Iterable[str] = NAMES,
        process_metrics: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        wanted = set(names)
        self.scraper = scraper
        self.stats = stats
        self.collectors: list[Collector] = [entry.build(stats) for entry in ENTRIES if entry.name in wanted]
        self.process = ProcessMetrics() if process_metrics else None
        self._clock = clock

    def collect_within(self, deadline: Deadline) -> list[Family]:
        return self.families(self.scraper.scrape(deadline))

    def fallback(self) -> list[Family]:
        """The families to answer with when building or rendering the real ones raised: qBittorrent
        reads as down, with the exporter's own metrics (the scraper supplies that result)."""
        return self.families(self.scraper.failed("internal error"))

    def answered(self) -> None:
        """The answer is sent: work kept off the scrape's path may begin (``Scraper.answered``)."""
        self.scraper.answered()

    def families(self, result: ScrapeResult) -> list[Family]:
        out = [named("qbittorrent_up", [(1.0 if result.snapshot is not None else 0.0,)])]
        outcomes = [guarded(collector, result, self.stats, self._clock) for collector in self.collectors]
        for outcome in outcomes:
            out.extend(outcome.families)
        out.extend(self._outcome_families(outcomes))
        if self.process is not None:
            out.extend(self.process.families())
        return out

    def _outcome_families(self, outcomes: list[Outcome]) -> list[Family]:
        success = named("qbittorrent_exporter_collector_success")
        duration = named("qbittorrent_exporter_collector_duration_seconds")
        for outcome in outcomes:
            success.add(1.0 if outcome.success else 0.0, collector=outcome.name)
            duration.add(outcome.duration, collector=outcome.name)
        errors = {(outcome.name,): 0.0 for outcome in outcomes}  # present at 0 from the first scrape
        errors.update(self.stats.items("collector_errors"))
        return [success, duration, counter_family("qbittorrent_exporter_collector_errors_total", errors)]
