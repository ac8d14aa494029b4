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

import operator
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from itertools import repeat
from typing import Any

from qbt_exporter.collectors.base import Collector, labelled
from qbt_exporter.exposition import Family
from qbt_exporter.metrics import CATALOGUE, GROUP_DIMENSIONS, PREFIX, MetricSpec
from qbt_exporter.qbittorrent.model import TORRENT_STATES, Torrent
from qbt_exporter.scraper import ScrapeResult


def _tags(tags: str) -> list[str]:
    """The tags of a torrent's comma-separated ``tags`` (a torrent has several, or none: "")."""
    return tags.split(",") if tags else [""]


# Each dimension's key on the Torrent: one group per value, but for tags, one per tag it lists.
KEYS: dict[str, Callable[[Torrent], str]] = {
    "category": operator.attrgetter("category"),
    "tag": operator.attrgetter("tags"),
    "tracker": operator.attrgetter("tracker"),
}
assert set(KEYS) == set(GROUP_DIMENSIONS)

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
        """Each summed value is read once per torrent into a column shared by the three dimensions
        (the same sums by category, tag and tracker), and each group is a list of positions in
        it: eighteen sums over every torrent cost six reads of it, by C-level calls."""
        assert result.snapshot is not None  # reads_qbittorrent: only called with a snapshot
        torrents = result.snapshot.torrents
        states = list(map(_state, torrents))
        columns: dict[str, list[float | None]] = {}
        for dimension, key in KEYS.items():
            groups = {
                group: _picker(members)
                for group, members in _groups(map(key, torrents), split=dimension == "tag").items()
            }
            if dimension in COUNT_ROWS:
                yield _counts(COUNT_ROWS[dimension], dimension, groups, states)
            for row in SUM_ROWS[dimension]:
                assert row.read is not None
                summed = row.name.removeprefix(f"{PREFIX}{dimension}_")  # e.g. size_bytes
                if summed not in columns:
                    column = list(map(row.read, torrents))
                    columns[summed] = (column, None in column)
                yield _sums(row, groups, *columns[summed])


_state = operator.attrgetter("state")
_known = partial(operator.is_not, None)
Picker = Callable[[list[Any]], Sequence[Any]]


def _picker(members: list[int]) -> Picker:
    """The items of a column at ``members``' positions, in one C-level call (``itemgetter``), as a
    sequence even for one position (where ``itemgetter`` alone would give the bare item)."""
    if len(members) == 1:
        return operator.itemgetter(slice(members[0], members[0] + 1))
    return operator.itemgetter(*members)


def _groups(keys: Iterable[str], *, split: bool) -> dict[str, list[int]]:
    """Group → the positions of its torrents, in list order (a float sum adds in that order).

    Tags are grouped by the whole ``tags`` text first, then each distinct text is split: a
    library has far fewer tag combinations than torrents."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        groups[key].append(index)
    if not split:
        return groups
    tags: dict[str, list[int]] = defaultdict(list)
    for key, members in groups.items():
        for tag in _tags(key):
            tags[tag].extend(members)
    for members in tags.values():
        members.sort()
    return tags


def _counts(name: str, dimension: str, groups: dict[str, Picker], states: list[str]) -> Family:
    """Every known state for every group in use (and the empty group), 0 included."""
    rows: list[tuple[object, ...]] = []
    for group in sorted(groups.keys() | {""}):
        counts = Counter(groups[group](states) if group in groups else ())
        counted = map(float, map(counts.get, TORRENT_STATES, repeat(0)))
        rows.extend(zip(repeat(group), TORRENT_STATES, counted))
    return labelled(name, (dimension, "state"), rows)


def _sums(row: MetricSpec, groups: dict[str, Picker], column: list[float | None], has_none: bool) -> Family:
    """The sum of ``column`` per group; no sample for a group where no torrent has the value."""
    fam = Family(row)
    for group in sorted(groups):
        values = groups[group](column)
        if has_none:
            values = list(filter(_known, values))
        if values:
            fam.add(float(sum(values)), **{row.labels[0]: group})  # type: ignore[arg-type]
    return fam
