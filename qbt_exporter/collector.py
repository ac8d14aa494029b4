"""Snapshot to metric families, fresh on every scrape, from the catalogue in ``metrics.py``.

A scrape of a healthy qBittorrent looks like this (abridged)::

    qbittorrent_up 1.0
    qbittorrent_version_info{api="legacy",api_version="17",version="v4.0.4"} 1.0
    qbittorrent_connection_status{status="connected"} 0.0
    qbittorrent_connection_status{status="firewalled"} 1.0
    qbittorrent_torrents{category="",state="stalledUP"} 3.0
    qbittorrent_torrent_info{category="",hash="783473f4…",name="alpha.bin",tags="",tracker=""} 1.0
    qbittorrent_torrent_state{hash="783473f4…",state="stalledUP"} 1.0
    qbittorrent_torrent_size_bytes{hash="783473f4…"} 300000.0

When qBittorrent cannot be read, only ``qbittorrent_up 0`` and the exporter's own metrics are
emitted: no data series at all, because a zero would read as a counter reset to ``rate()``.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import Metric

from qbt_exporter import __version__
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import Family
from qbt_exporter.metrics import CATALOGUE, MetricSpec, spec
from qbt_exporter.qbittorrent.model import CONNECTION_STATUSES, TORRENT_STATES, Snapshot, Torrent, Transfer
from qbt_exporter.scraper import Scraper, ScrapeResult
from qbt_exporter.stats import Stats

# Stats family name for each labelled exporter counter in the catalogue.
_STATS_COUNTERS: dict[str, str] = {
    "qbittorrent_exporter_requests_total": "requests",
    "qbittorrent_exporter_logins_total": "logins",
    "qbittorrent_exporter_invalid_values_total": "invalid_values",
    "qbittorrent_exporter_torrent_properties_refreshes_total": "properties_refreshes",
}

# Series that exist at 0 from the first scrape, so that increase() sees the first event: a counter
# that appears already at 1 has no earlier sample to increase from, and its alert would stay silent.
_PRESENT_FROM_START: dict[str, tuple[tuple[str, ...], ...]] = {
    "logins": (("ok",), ("rejected",), ("banned",), ("error",)),
}

_VALUE_ROWS: dict[str, tuple[MetricSpec, ...]] = {
    scope: tuple(row for row in CATALOGUE if row.scope == scope and row.read is not None)
    for scope in ("server", "torrent")
}


def _named(name: str) -> Family:
    return Family(spec(name))


class _TorrentColumn:
    """The (hash, value) samples of one per-torrent metric, read from the torrents as they are
    rendered; torrents whose value is unknown have no sample."""

    __slots__ = ("read", "torrents")

    def __init__(self, torrents: list[Torrent], read: Callable[[Torrent], float | None]) -> None:
        self.torrents = torrents
        self.read = read

    def __iter__(self) -> Iterator[tuple[str, float]]:
        read = self.read
        for torrent in self.torrents:
            value = read(torrent)
            if value is not None:
                yield torrent.hash, value


class Collector:
    """A prometheus_client collector for one qBittorrent.

    ``describe()`` returns no families, which tells prometheus_client not to call ``collect()``
    at registration: registering must never reach out to qBittorrent.
    """

    def __init__(self, scraper: Scraper, stats: Stats, *, per_torrent: bool = True) -> None:
        self.scraper = scraper
        self.stats = stats
        self.per_torrent = per_torrent

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        """For registry use without a Prometheus deadline: the client's own timeouts apply."""
        for fam in self.collect_within(Deadline.never()):
            yield fam.to_metric()

    def collect_within(self, deadline: Deadline) -> list[Family]:
        result = self.scraper.scrape(deadline)
        return self.families(result)

    # --- building families --------------------------------------------------------------
    def families(self, result: ScrapeResult) -> list[Family]:
        out: list[Family] = []
        snap = result.snapshot
        up = _named("qbittorrent_up")
        up.add(1.0 if snap is not None else 0.0)
        out.append(up)
        if snap is not None:
            out.extend(self._server_families(snap))
            if self.per_torrent:
                out.extend(self._torrent_families(snap.torrents))
        out.extend(self._exporter_families(result))
        return out

    def _server_families(self, snap: Snapshot) -> Iterable[Family]:
        version = _named("qbittorrent_version_info")
        version.add(snap.server.version, snap.server.api, snap.server.api_version, 1.0)
        yield version
        yield from self._transfer_families(snap.transfer)
        yield self._torrent_counts(snap.torrents)

    @staticmethod
    def _transfer_families(transfer: Transfer) -> Iterable[Family]:
        if transfer.connection_status in CONNECTION_STATUSES:
            status = _named("qbittorrent_connection_status")
            for name in CONNECTION_STATUSES:
                status.add(name, 1.0 if name == transfer.connection_status else 0.0)
            yield status
        for row in _VALUE_ROWS["server"]:
            assert row.read is not None
            value = row.read(transfer)
            if value is not None:
                fam = Family(row)
                fam.add(value)
                yield fam

    @staticmethod
    def _torrent_counts(torrents: list[Torrent]) -> Family:
        """Every known state for every category in use, so a state that empties reads 0, not absent.
        Torrents without a usable hash count too: they are in qBittorrent's list."""
        counts = Counter((t.category, t.state) for t in torrents)
        categories = sorted({t.category for t in torrents} | {""})
        fam = _named("qbittorrent_torrents")
        for category in categories:
            for state in TORRENT_STATES:
                fam.add(state, category, float(counts.get((category, state), 0)))
        return fam

    @staticmethod
    def _torrent_families(listed: list[Torrent]) -> Iterable[Family]:
        """One series per identified torrent; the flavour has already kept one torrent per hash."""
        torrents = [t for t in listed if t.identified]
        info = _named("qbittorrent_torrent_info")
        state = _named("qbittorrent_torrent_state")
        for t in torrents:
            info.add(t.hash, t.name, t.category, t.tags, t.tracker, 1.0)
            state.add(t.hash, t.state, 1.0)
        yield info
        yield state
        for row in _VALUE_ROWS["torrent"]:
            read = row.read
            assert read is not None
            yield Family(row, _TorrentColumn(torrents, read))

    def _exporter_families(self, result: ScrapeResult) -> Iterable[Family]:
        build = _named("qbittorrent_exporter_build_info")
        build.add(__version__, platform.python_version(), 1.0)
        yield build
        duration = _named("qbittorrent_exporter_scrape_duration_seconds")
        duration.add(result.duration)
        yield duration
        cut = _named("qbittorrent_exporter_scrape_cut_short")
        cut.add(1.0 if result.cut_short else 0.0)
        yield cut
        for name, stats_family in _STATS_COUNTERS.items():
            fam = _named(name)
            values = dict(self.stats.items(stats_family))
            for labels in _PRESENT_FROM_START.get(stats_family, ()):
                values.setdefault(labels, 0.0)
            for labels, value in sorted(values.items()):
                fam.add(*labels, value)
            yield fam
        backoff = _named("qbittorrent_exporter_login_backoff_seconds")
        backoff.add(self.scraper.client.login_backoff_remaining())
        yield backoff
        suspended = _named("qbittorrent_exporter_login_suspended")
        for reason, held in self.scraper.client.login_suspended().items():
            suspended.add(reason, 1.0 if held else 0.0)
        yield suspended
        if self.scraper.fetch_properties and result.snapshot is not None:
            skipped = _named("qbittorrent_exporter_torrent_properties_skipped")
            skipped.add(float(result.properties_skipped))
            yield skipped
            if result.properties_max_age is not None:
                age = _named("qbittorrent_exporter_torrent_properties_max_age_seconds")
                age.add(result.properties_max_age)
                yield age
