"""How this scrape's per-torrent properties pass went (``--[no-]collector.torrent-properties``).

The pass itself (which torrents, within which budget) is ``qbt_exporter/properties.py``; the values
it fills in are emitted by the torrents collector. This collector reports on the pass::

    qbittorrent_exporter_torrent_properties_skipped 0.0
    qbittorrent_exporter_torrent_properties_max_age_seconds 12.5

Its ``collector_success`` is 0 when a properties call failed this scrape (that torrent's property
series are absent, the others and ``qbittorrent_up`` stay as they are). Torrents left for a later
scrape by the time budget are not a failure: they are ``..._skipped``.
"""

from __future__ import annotations

from collections.abc import Iterator

from qbt_exporter.collectors.base import Collector, named
from qbt_exporter.exposition import Family
from qbt_exporter.scraper import ScrapeResult


class TorrentPropertiesCollector(Collector):
    name = "torrent_properties"
    families = (
        "qbittorrent_exporter_torrent_properties_skipped",
        "qbittorrent_exporter_torrent_properties_max_age_seconds",
    )

    def collect(self, result: ScrapeResult) -> Iterator[Family]:
        report = result.properties
        if report is None:
            return
        yield named("qbittorrent_exporter_torrent_properties_skipped", [(float(report.skipped),)])
        if report.max_age is not None:
            yield named("qbittorrent_exporter_torrent_properties_max_age_seconds", [(report.max_age,)])

    def succeeded(self, result: ScrapeResult) -> bool:
        return result.properties is not None and result.properties.failed == 0
