"""Totals by category, by tag and by tracker host (``--[no-]collector.groups``).

Always computed from qBittorrent's whole list as it listed it, never from the filtered one and
never from per-torrent calls: the per-category, per-tag and per-tracker views stay complete and
identical whatever ``--torrents.include``/``--torrents.exclude``/``--torrents.max`` say, and with
the per-torrent series off altogether. That is what lets a large library turn per-torrent series
off (or down) without losing them. Output (abridged)::

    qbittorrent_category_size_bytes{category="linux-isos"} 7.2e+10
    qbittorrent_tag_torrents{state="stalledUP",tag="hd"} 12.0
    qbittorrent_tracker_upload_speed_bytes_per_second{tracker="tracker.example.org"} 51200.0
    qbittorrent_tracker_uploaded_bytes{tracker="tracker.example.org"} 8.1e+11

The counts by category are the transfer collector's ``qbittorrent_torrents`` (there since the first
version); the counts by tag and tracker follow its rule: every known state, 0 included, for each
value in use, so a state that empties reads 0, not absent. A sum is absent for a group in which no
torrent has the value (e.g. all-time bytes before qBittorrent 3.3.11).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator

from qbt_exporter.collectors.base import Collector, named
from qbt_exporter.exposition import Family
from qbt_exporter.metrics import CATALOGUE, GROUP_DIMENSIONS, MetricSpec
from qbt_exporter.qbittorrent.model import TORRENT_STATES, Torrent
from qbt_exporter.scraper import ScrapeResult


def _category(torrent: Torrent) -> tuple[str, ...]:
    return (torrent.category,)


def _tags(torrent: Torrent) -> tuple[str, ...]:
    return tuple(torrent.tags.split(",")) if torrent.tags else ("",)


def _tracker(torrent: Torrent) -> tuple[str, ...]:
    return (torrent.tracker,)


# The groups each torrent belongs to, per dimension (a torrent has several tags, or none).
MEMBERSHIP: dict[str, Callable[[Torrent], tuple[str, ...]]] = {
    "category": _category,
    "tag": _tags,
    "tracker": _tracker,
}
assert set(MEMBERSHIP) == set(GROUP_DIMENSIONS)

SUM_ROWS: dict[str, tuple[MetricSpec, ...]] = {
    dimension: tuple(row for row in CATALOGUE if row.scope == "group" and row.labels == (dimension,))
    for dimension in GROUP_DIMENSIONS
}
COUNT_ROWS: dict[str, str] = {
    dimension: f"qbittorrent_{dimension}_torrents" for dimension in ("tag", "tracker")
}


class GroupsCollector(Collector):
    name = "groups"
    families = (
        *COUNT_ROWS.values(),
        *(row.name for rows in SUM_ROWS.values() for row in rows),
    )

    def collect(self, result: ScrapeResult) -> Iterator[Family]:
        assert result.snapshot is not None  # reads_qbittorrent: only called with a snapshot
        torrents = result.snapshot.torrents
        for dimension, member_of in MEMBERSHIP.items():
            groups: dict[str, list[Torrent]] = defaultdict(list)
            for torrent in torrents:
                for group in member_of(torrent):
                    groups[group].append(torrent)
            if dimension in COUNT_ROWS:
                yield _counts(COUNT_ROWS[dimension], dimension, groups)
            for row in SUM_ROWS[dimension]:
                yield _sums(row, groups)


def _counts(name: str, dimension: str, groups: dict[str, list[Torrent]]) -> Family:
    """Every known state for every group in use (and the empty group), 0 included."""
    fam = named(name)
    for group in sorted(groups.keys() | {""}):
        counts = Counter(t.state for t in groups.get(group, ()))
        for state in TORRENT_STATES:
            fam.add(float(counts.get(state, 0)), state=state, **{dimension: group})
    return fam


def _sums(row: MetricSpec, groups: dict[str, list[Torrent]]) -> Family:
    """The sum of ``row.read`` per group; no sample for a group where no torrent has the value."""
    read = row.read
    assert read is not None
    fam = Family(row)
    for group in sorted(groups):
        values = [value for value in map(read, groups[group]) if value is not None]
        if values:
            fam.add(float(sum(values)), **{row.labels[0]: group})
    return fam
