"""Per-torrent properties: the shared per-torrent policy (``pertorrent.py``) set up for them.

The properties call fills the values a version's torrent list lacks (wasted bytes, seeding time,
connections...). It is only of use for a torrent with such a value missing; it is made again when
the torrent's state changes, every scrape while the torrent moves data (those values go stale fast),
and otherwise once per max age, all within the shared policy's budget; not at all while the list
proves them unchanged: a torrent held paused (stopped, queued...: ``torrent_activity``) whose
active time, downloaded and uploaded bytes in the list are what they were at the fetch has not run
since, so none of its property values (connections 0, wasted bytes, seeding time) can have moved.
That proof needs the active time in the list (4.0.4 and every v2 have it; older lists do not). The
values are folded into the torrents themselves, which the torrents collector emits; the
torrent-properties collector reports on the pass.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from itertools import compress, repeat

from qbt_exporter.deadline import Deadline
from qbt_exporter.pertorrent import PassReport, PerTorrentCache, PerTorrentPolicy, Plan
from qbt_exporter.qbittorrent.model import (
    BUSY_STATES,
    PROPERTY_FIELDS,
    TORRENT_FIELDS,
    Torrent,
    TorrentProperties,
    hash_of,
    identified_torrents,
    new_torrent,
    property_values,
)
from qbt_exporter.stats import Stats
from qbt_exporter.torrent_activity import HELD_STATES

# --torrents.properties-max-age's default: the scraper, the /probe targets and the flag all read it here.
DEFAULT_MAX_AGE = 300.0

# The properties pass's report: the shared one, under the name its collector and scraper use.
PropertiesPass = PassReport


def _is_busy(torrent: Torrent) -> bool:
    return torrent.state in BUSY_STATES or bool(torrent.download_speed) or bool(torrent.upload_speed)


def _settled(torrent: Torrent) -> Hashable | None:
    """The list's own counters of a held torrent: the same at the fetch and now means it never ran
    in between (its active time would have grown). ``None`` when the list lacks one of them."""
    if torrent.state not in HELD_STATES:
        return None
    mark = (torrent.active_seconds, torrent.downloaded, torrent.uploaded)
    return None if None in mark else mark


def _select(torrents: list[Torrent]) -> list[Torrent]:
    """``Torrent.missing_properties`` of a whole list, by C-level calls: identified torrents with
    some property value absent from the list."""
    identified = identified_torrents(torrents)
    return list(compress(identified, map(operator.contains, map(property_values, identified), repeat(None))))


PLAN = Plan(
    wants=Torrent.missing_properties,
    key=operator.attrgetter("state"),
    busy=_is_busy,
    settled=_settled,
    select=_select,
    settled_reads=operator.attrgetter("state", "active_seconds", "downloaded", "uploaded"),  # _settled's
)


class PropertiesCache(PerTorrentCache[TorrentProperties]):
    """The shared per-torrent cache with the properties plan."""

    def __init__(self, max_age: float) -> None:
        super().__init__(max_age, PLAN)


@dataclass(frozen=True, slots=True)
class Completed:
    torrents: list[Torrent]
    report: PassReport


class PropertiesPolicy:
    """The properties pass; used by one scrape at a time (the scraper's gate)."""

    def __init__(self, max_age: float, stats: Stats, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy: PerTorrentPolicy[TorrentProperties] = PerTorrentPolicy(
            max_age, PLAN, stats.properties_refresh, clock
        )
        self.cache = self.policy.cache

    def complete(
        self,
        fetch: Callable[[str, Deadline], TorrentProperties | None],
        torrents: list[Torrent],
        deadline: Deadline,
        list_seconds: float,
        leave_until: float | None = None,
    ) -> Completed:
        """Fetch the due properties, then fill every torrent from the cache; a torrent qBittorrent
        said is gone since the list was read is left out. ``leave_until``: see
        ``PerTorrentPolicy.run``."""
        done = self.policy.run(fetch, torrents, deadline, list_seconds, leave_until)
        if done.vanished:
            torrents = [torrent for torrent in torrents if torrent.hash not in done.vanished]
        properties = map(done.values.get, map(hash_of, torrents), repeat(_NO_PROPERTIES))
        return Completed(completed(torrents, list(properties)), done.report)


def completed(torrents: list[Torrent], properties: list[TorrentProperties]) -> list[Torrent]:
    """``torrent.with_properties(props)`` for each torrent and its properties, by C-level calls.

    This runs for every torrent of every scrape. A version's list either has a property value for
    every torrent or for none (every v2 lacks wasted bytes and connections): then one ``itemgetter``
    picks the merged values for all of them, from each torrent's property values followed by its
    properties', and ``map`` rebuilds the torrents around them, a quarter less CPU than a call per
    torrent. A list with some torrents lacking a value that others have is filled torrent by torrent.
    """
    count = len(torrents)
    absent: list[bool] = []
    for read in _PROPERTY_READS:
        gaps = sum(map(operator.is_, map(read, torrents), repeat(None)))
        if 0 < gaps < count:
            return list(map(Torrent.with_properties, torrents, properties))
        absent.append(gaps > 0)
    if not any(absent):
        return list(torrents)
    width = len(PROPERTY_FIELDS)
    pick = operator.itemgetter(*(index + width * gap for index, gap in enumerate(absent)))
    merged = map(pick, map(operator.add, map(property_values, torrents), map(property_values, properties)))
    return list(map(new_torrent, map(operator.add, map(_listed_part, torrents), merged)))


_NO_PROPERTIES = TorrentProperties()  # all None: fills nothing
_PROPERTY_READS = tuple(map(operator.attrgetter, PROPERTY_FIELDS))
# Torrent's fields but the property ones, which are its last: with_properties is its definition
_listed_part = operator.itemgetter(slice(0, len(TORRENT_FIELDS) - len(PROPERTY_FIELDS)))
assert TORRENT_FIELDS[-len(PROPERTY_FIELDS) :] == PROPERTY_FIELDS
