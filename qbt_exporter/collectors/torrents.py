"""One set of series per torrent, keyed by hash (``--[no-]collector.torrents``).

The name, category, tags and tracker host live once on ``qbittorrent_torrent_info``; every other
series carries the hash alone, so that renaming a torrent does not start new series. The values
the properties pass fills in (wasted bytes, seeding time, connections on older versions) are
emitted here with the rest: the torrent-properties collector reports on the pass itself.

Only the torrents that ``--torrents.include``/``--torrents.exclude`` and ``--torrents.max`` keep
get series (``qbt_exporter/selection.py``); the filters in force and how many torrents they left
out are reported here too, so a dashboard can say that the per-torrent view is partial. Output::

    qbittorrent_torrent_info{category="",hash="783473f4…",name="alpha.bin",tags="",tracker=""} 1.0
    qbittorrent_torrent_state{hash="783473f4…",state="stalledUP"} 1.0
    qbittorrent_torrent_size_bytes{hash="783473f4…"} 300000.0
    qbittorrent_torrent_wasted_bytes_total{hash="783473f4…"} 0.0
    qbittorrent_exporter_torrents_filter_info{exclude="",include="category=movies",max=""} 1.0
    qbittorrent_exporter_torrents_left_out{reason="filter"} 118.0
    qbittorrent_exporter_torrents_left_out{reason="cap"} 0.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from qbt_exporter.collectors.base import Collector, named
from qbt_exporter.exposition import Family
from qbt_exporter.metrics import CATALOGUE
from qbt_exporter.qbittorrent.model import Torrent
from qbt_exporter.scraper import ScrapeResult
from qbt_exporter.selection import SelectionReport

# The plain value rows read from each Torrent, in catalogue order.
VALUE_ROWS = tuple(row for row in CATALOGUE if row.scope == "torrent" and row.read is not None)


class _TorrentColumn:
    """The (hash, value) samples of one per-torrent metric, read from the torrents as they are
    rendered; torrents whose value is unknown have no sample. Lazy: holding a tuple per sample
    (200,000 at 10,000 torrents) for the whole scrape costs more than reading twice."""

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


class TorrentsCollector(Collector):
    name = "torrents"
    families = (
        "qbittorrent_torrent_info",
        "qbittorrent_torrent_state",
        *(row.name for row in VALUE_ROWS),
        "qbittorrent_exporter_torrents_filter_info",
        "qbittorrent_exporter_torrents_left_out",
    )

    def collect(self, result: ScrapeResult) -> Iterator[Family]:
        """One series per selected torrent; the flavour has already kept one torrent per hash."""
        assert result.snapshot is not None  # reads_qbittorrent: only called with a snapshot
        torrents = result.per_torrent()
        info = named("qbittorrent_torrent_info")
        info.add_each(
            torrents, 1.0, hash="hash", name="name", category="category", tags="tags", tracker="tracker"
        )
        yield info
        state = named("qbittorrent_torrent_state")
        state.add_each(torrents, 1.0, hash="hash", state="state")
        yield state
        for row in VALUE_ROWS:
            assert row.read is not None
            yield Family(row, _TorrentColumn(torrents, row.read))
        yield from _selection(result.selection or SelectionReport())


def _selection(report: SelectionReport) -> Iterator[Family]:
    info = named("qbittorrent_exporter_torrents_filter_info")
    info.add(
        1.0, include=report.include, exclude=report.exclude, max="" if report.max is None else str(report.max)
    )
    yield info
    left_out = named("qbittorrent_exporter_torrents_left_out")
    left_out.add(float(report.filtered_out), reason="filter")
    left_out.add(float(report.capped), reason="cap")
    yield left_out
