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

import operator
from collections.abc import Callable, Iterator, Sequence

from qbt_exporter.collectors.base import Collector, named
from qbt_exporter.exposition import Columns, Family
from qbt_exporter.metrics import CATALOGUE, spec
from qbt_exporter.qbittorrent.model import Torrent
from qbt_exporter.scraper import ScrapeResult
from qbt_exporter.selection import SelectionReport

# The plain value rows read from each Torrent, in catalogue order.
VALUE_ROWS = tuple(row for row in CATALOGUE if row.scope == "torrent" and row.read is not None)
# qbittorrent_torrent_info's labels, in catalogue order, each read from the Torrent field of its name.
_INFO = {label: operator.attrgetter(label) for label in spec("qbittorrent_torrent_info").labels}


class _TorrentColumn:
    """The (hash, value) samples of one per-torrent metric, read from the torrents when they are
    rendered; torrents whose value is unknown have no sample. Lazy: holding the values of every
    per-torrent family (200,000 at 10,000 torrents) for the whole scrape costs more than reading
    them when rendering. ``hashes`` is one list shared by every column of the scrape, so that the
    renderer checks it for escaping once."""

    __slots__ = ("hashes", "read", "torrents")

    def __init__(
        self, torrents: list[Torrent], hashes: list[str], read: Callable[[Torrent], float | None]
    ) -> None:
        self.torrents = torrents
        self.hashes = hashes
        self.read = read

    def columns(self) -> tuple[Sequence[Sequence[object]], Sequence[object]]:
        """The hash column and the values, read by one C-level getter per torrent; the torrents
        without a value are dropped from both."""
        return Columns.known(self.hashes, list(map(self.read, self.torrents))).columns()

    def __iter__(self) -> Iterator[tuple[object, ...]]:
        labels, values = self.columns()
        return zip(*labels, values, strict=True)


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
        hashes = [torrent.hash for torrent in torrents]
        ones = [1.0] * len(torrents)
        info = [list(map(_INFO[label], torrents)) if label != "hash" else hashes for label in _INFO]
        yield named("qbittorrent_torrent_info", Columns(info, ones))
        yield named("qbittorrent_torrent_state", Columns([hashes, [t.state for t in torrents]], ones))
        for row in VALUE_ROWS:
            assert row.read is not None
            yield Family(row, _TorrentColumn(torrents, hashes, row.read))
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
