"""Tracker health (``--[no-]collector.trackers``): per torrent, and per tracker host.

The trackers pass (which torrents, within which budget, how a reply is summarised) is
``qbt_exporter/trackers.py``; this collector turns its reading into series. Per torrent, keyed by
hash alone (join ``qbittorrent_torrent_info`` for the name); per tracker host, never the announce URL
(it carries the passkey)::

    qbittorrent_torrent_tracker_working{hash="783473f4…"} 0.0
    qbittorrent_torrent_tracker_status{hash="783473f4…",status="unregistered"} 1.0
    qbittorrent_torrents_by_tracker_status{status="unregistered",tracker="tracker.example.org"} 1.0
    qbittorrent_torrents_by_tracker_status{status="working",tracker="tracker.example.org"} 41.0
    qbittorrent_exporter_torrent_trackers_skipped 0.0
    qbittorrent_exporter_torrent_trackers_max_age_seconds 912.5

A torrent whose trackers are not known (not fetched yet, its call failed, its reading older than
the max age) has no tracker series at all, never a false "working". ``collector_success`` is 0 when
a trackers call failed this scrape; the rest of the scrape is unaffected.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterator
from itertools import chain

from qbt_exporter.collectors.base import Collector, labelled, named
from qbt_exporter.exposition import Columns, Family
from qbt_exporter.scraper import ScrapeResult
from qbt_exporter.trackers import HOST_STATUSES, WORKING

_status = operator.attrgetter("status")
_hosts = operator.attrgetter("hosts")


class TrackersCollector(Collector):
    name = "trackers"
    families = (
        "qbittorrent_torrent_tracker_working",
        "qbittorrent_torrent_tracker_status",
        "qbittorrent_torrents_by_tracker_status",
        "qbittorrent_exporter_torrent_trackers_skipped",
        "qbittorrent_exporter_torrent_trackers_max_age_seconds",
    )

    def collect(self, result: ScrapeResult) -> Iterator[Family]:
        reading = result.trackers
        if reading is None:
            return
        # As columns, read by C-level getters: one sample per torrent in each, 10,000 a scrape.
        hashes = list(reading.torrents)
        summaries = list(reading.torrents.values())
        statuses = list(map(_status, summaries))
        working = list(map(WORKING.__getitem__, statuses))  # ``TorrentTrackers.working``, without a call each
        yield named("qbittorrent_torrent_tracker_working", Columns.known(hashes, working))
        yield named("qbittorrent_torrent_tracker_status", Columns([hashes, statuses], [1.0] * len(hashes)))
        # (host, its class for a torrent) → torrents, counted in C (a Python loop building a
        # Counter per host cost more than the two columns above together)
        pairs = Counter(chain.from_iterable(map(_hosts, summaries)))
        rows = [
            (host, host_status, float(pairs[host, host_status]))
            for host in sorted({host for host, _ in pairs})
            for host_status in HOST_STATUSES
        ]
        yield labelled("qbittorrent_torrents_by_tracker_status", ("tracker", "status"), rows)
        report = reading.report
        yield named("qbittorrent_exporter_torrent_trackers_skipped", [(float(report.skipped),)])
        if report.max_age is not None:
            yield named("qbittorrent_exporter_torrent_trackers_max_age_seconds", [(report.max_age,)])

    def succeeded(self, result: ScrapeResult) -> bool:
        return result.trackers is not None and result.trackers.report.failed == 0
