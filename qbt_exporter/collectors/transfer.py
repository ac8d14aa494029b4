"""qBittorrent as a whole: its version, connection status, global rates and totals, and how many
torrents it has in each state and category.

The counts by state are global state, not per-torrent series: they stay when
``--no-collector.torrents`` turns the per-torrent series off. Output (abridged)::

    qbittorrent_version_info{api="legacy",api_version="17",version="v4.0.4"} 1.0
    qbittorrent_connection_status{status="connected"} 0.0
    qbittorrent_connection_status{status="firewalled"} 1.0
    qbittorrent_dht_nodes 312.0
    qbittorrent_download_speed_bytes_per_second 1.2e+06
    qbittorrent_torrents{category="",state="stalledUP"} 3.0
    qbittorrent_torrents{category="",state="downloading"} 0.0
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterator

from qbt_exporter.collectors.base import Collector, labelled, named
from qbt_exporter.exposition import Family
from qbt_exporter.metrics import CATALOGUE
from qbt_exporter.qbittorrent.model import CONNECTION_STATUSES, TORRENT_STATES, Snapshot, Torrent
from qbt_exporter.scraper import ScrapeResult

# The plain value rows read from the Transfer, in catalogue order.
VALUE_ROWS = tuple(row for row in CATALOGUE if row.scope == "server" and row.read is not None)


class TransferCollector(Collector):
    name = "transfer"
    families = (
        "qbittorrent_version_info",
        "qbittorrent_connection_status",
        *(row.name for row in VALUE_ROWS),
        "qbittorrent_torrents",
    )

    def collect(self, result: ScrapeResult) -> Iterator[Family]:
        snap = result.snapshot
        assert snap is not None  # reads_qbittorrent: only called with a snapshot
        version = named("qbittorrent_version_info")
        version.add(
            1.0, version=snap.server.version, api=snap.server.api, api_version=snap.server.api_version
        )
        yield version
        yield from _transfer(snap)
        yield _torrent_counts(snap.torrents)


def _transfer(snap: Snapshot) -> Iterator[Family]:
    transfer = snap.transfer
    if transfer.connection_status in CONNECTION_STATUSES:
        status = named("qbittorrent_connection_status")
        for name in CONNECTION_STATUSES:
            status.add(1.0 if name == transfer.connection_status else 0.0, status=name)
        yield status
    for row in VALUE_ROWS:
        assert row.read is not None
        value = row.read(transfer)
        if value is not None:
            fam = Family(row)
            fam.add(value)
            yield fam


_category = operator.attrgetter("category")
_state = operator.attrgetter("state")


def _torrent_counts(torrents: list[Torrent]) -> Family:
    """Every known state for every category in use, so a state that empties reads 0, not absent.
    Torrents without a usable hash count too: they are in qBittorrent's list."""
    categories_of = list(map(_category, torrents))  # C-level reads: this runs for every torrent
    counts = Counter(zip(categories_of, map(_state, torrents), strict=True))
    categories = sorted({*categories_of, ""})
    rows = [
        (category, state, float(counts.get((category, state), 0)))
        for category in categories
        for state in TORRENT_STATES
    ]
    return labelled("qbittorrent_torrents", ("category", "state"), rows)
