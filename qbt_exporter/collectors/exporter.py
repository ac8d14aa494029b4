"""The exporter's own health: its build, how long reading qBittorrent took, its calls and logins,
the values it could not read, and the login back-off. Always on, and emitted while qBittorrent is
down too: that is when these series matter most. Output (abridged)::

    qbittorrent_exporter_build_info{python_version="3.11.7",version="0.1.0"} 1.0
    qbittorrent_exporter_scrape_duration_seconds 0.0421
    qbittorrent_exporter_scrape_cut_short 0.0
    qbittorrent_exporter_requests_total{endpoint="/query/torrents",outcome="ok"} 12.0
    qbittorrent_exporter_logins_total{outcome="ok"} 1.0
    qbittorrent_exporter_login_backoff_seconds 0.0
    qbittorrent_exporter_login_suspended{reason="banned"} 0.0
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

from qbt_exporter import __version__
from qbt_exporter.collectors.base import Collector, named
from qbt_exporter.exposition import Family
from qbt_exporter.metrics import spec
from qbt_exporter.scraper import ScrapeResult
from qbt_exporter.stats import Stats

# Stats family name for each labelled exporter counter in the catalogue.
STATS_COUNTERS: dict[str, str] = {
    "qbittorrent_exporter_requests_total": "requests",
    "qbittorrent_exporter_logins_total": "logins",
    "qbittorrent_exporter_invalid_values_total": "invalid_values",
    "qbittorrent_exporter_torrent_properties_refreshes_total": "properties_refreshes",
    "qbittorrent_exporter_torrent_trackers_refreshes_total": "trackers_refreshes",
}

# Series that exist at 0 from the first scrape, so that increase() sees the first event: a counter
# that appears already at 1 has no earlier sample to increase from, and its alert would stay silent.
_PRESENT_FROM_START: dict[str, tuple[tuple[str, ...], ...]] = {
    "logins": (("ok",), ("rejected",), ("banned",), ("error",)),
}


def counter_family(name: str, values: dict[tuple[str, ...], float]) -> Family:
    """A labelled counter from Stats-shaped (label values in catalogue order, value) pairs, sorted."""
    return Family(spec(name), [(*labels, value) for labels, value in sorted(values.items())])


def build_info() -> Family:
    build = named("qbittorrent_exporter_build_info")
    build.add(1.0, version=__version__, python_version=platform.python_version())
    return build


class ExporterCollector(Collector):
    name = "exporter"
    families = (
        "qbittorrent_exporter_build_info",
        "qbittorrent_exporter_scrape_duration_seconds",
        "qbittorrent_exporter_scrape_cut_short",
        *STATS_COUNTERS,
        "qbittorrent_exporter_login_backoff_seconds",
        "qbittorrent_exporter_login_suspended",
    )
    reads_qbittorrent = False

    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def collect(self, result: ScrapeResult) -> Iterator[Family]:
        yield build_info()
        yield named("qbittorrent_exporter_scrape_duration_seconds", [(result.duration,)])
        yield named("qbittorrent_exporter_scrape_cut_short", [(1.0 if result.cut_short else 0.0,)])
        for name, stats_family in STATS_COUNTERS.items():
            values = dict(self.stats.items(stats_family))
            for labels in _PRESENT_FROM_START.get(stats_family, ()):
                values.setdefault(labels, 0.0)
            yield counter_family(name, values)
        yield named("qbittorrent_exporter_login_backoff_seconds", [(result.login.backoff_seconds,)])
        suspended = named("qbittorrent_exporter_login_suspended")
        for reason, held in result.login.suspended.items():
            suspended.add(1.0 if held else 0.0, reason=reason)
        yield suspended
