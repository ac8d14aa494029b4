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

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from qbt_exporter.deadline import Deadline
from qbt_exporter.pertorrent import PassReport, PerTorrentCache, PerTorrentPolicy, Plan
from qbt_exporter.qbittorrent.model import BUSY_STATES, Torrent, TorrentProperties
from qbt_exporter.stats import Stats
from qbt_exporter.torrent_activity import HELD_STATES

# --torrents.properties-max-age's default: the scraper, the /probe targets and the flag all read it here.
DEFAULT_MAX_AGE = 300.0

# The properties pass's report: the shared one, under the name its collector and scraper use.
PropertiesPass = PassReport


def _is_busy(torrent: Torrent) -> bool:
    return torrent.state in BUSY_STATES or bool(torrent.download_speed) or bool(torrent.upload_speed)


def _state(torrent: Torrent) -> str:
    return torrent.state


def _settled(torrent: Torrent) -> Hashable | None:
    """The list's own counters of a held torrent: the same at the fetch and now means it never ran
    in between (its active time would have grown). ``None`` when the list lacks one of them."""
    if torrent.state not in HELD_STATES:
        return None
    mark = (torrent.active_seconds, torrent.downloaded, torrent.uploaded)
    return None if None in mark else mark


PLAN = Plan(wants=Torrent.missing_properties, key=_state, busy=_is_busy, settled=_settled)


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
    ) -> Completed:
        """Fetch the due properties, then fill every torrent from the cache; a torrent qBittorrent
        said is gone since the list was read is left out."""
        done = self.policy.run(fetch, torrents, deadline, list_seconds)
        completed = [
            torrent.with_properties(done.values.get(torrent.hash))
            for torrent in torrents
            if torrent.hash not in done.vanished
        ]
        return Completed(completed, done.report)
