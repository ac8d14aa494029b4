"""Tracker health per torrent and per tracker host, read through the shared per-torrent policy.

A torrent's trackers come from one call per torrent (``Flavour.trackers``). The call is made when the
torrent is new, when it starts or stops running (``torrent_activity.announce_class``: a move between
running states such as ``stalledUP`` and ``uploading`` is peers coming and going, which its trackers
do not see), when its ``tracker`` field (the host of the tracker that works, which qBittorrent
empties when none does) or 5.2's tracker error/warning flags change, and otherwise once per max age
(spread by hash, within the shared refresh budget: ``pertorrent.py``). A tracker's status only
changes when qBittorrent announces, every 30 minutes or so on most trackers, and a tracker that
starts failing usually changes the ``tracker`` field too, which makes the torrent due at once.

Each reply is summarised when it arrives, so the cache holds a few strings per torrent, not the
reply: the torrent's status (``TORRENT_STATUSES``: ``working`` when any tracker works, else why not)
and each tracker host's class for that torrent (``HOST_STATUSES``). Why a tracker fails comes from
its status (5.0+ say "unreachable" themselves) or from its message (``tracker_messages.classify``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from qbt_exporter.deadline import Deadline
from qbt_exporter.pertorrent import PassReport, PerTorrentPolicy, Plan
from qbt_exporter.qbittorrent.model import Torrent, TrackerEntry, identified_torrents
from qbt_exporter.stats import Stats
from qbt_exporter.torrent_activity import announce_class
from qbt_exporter.tracker_messages import classify, loggable

# --torrents.trackers-max-age's default (most trackers are announced to every 30 minutes): the
# scraper, the /probe targets and the flag all read it here.
DEFAULT_MAX_AGE = 1800.0

log = logging.getLogger(__name__)

# A tracker's class for one torrent, best first: when a torrent has several trackers, its status is
# the best of theirs (one working tracker is enough). "unknown" (a status this exporter cannot read,
# such as a translated one) ranks above the failures: it may be a working tracker, so no failure is
# claimed while it is there. Transient states come last: a failure says more than "announcing".
HOST_STATUSES: tuple[str, ...] = (
    "working",
    "unknown",
    "unregistered",
    "auth",
    "unreachable",
    "other",
    "updating",
    "not_contacted",
)
# A torrent's tracker status: the best of its trackers', or "no_tracker" when it has none.
TORRENT_STATUSES: tuple[str, ...] = (*HOST_STATUSES, "no_tracker")
# The statuses in which no tracker works and the tracker said (or showed) why.
FAILING: frozenset[str] = frozenset({"unregistered", "auth", "unreachable", "other"})
_RANK = {status: rank for rank, status in enumerate(HOST_STATUSES)}
_PASSTHROUGH = frozenset({"working", "updating", "not_contacted", "unreachable", "unknown"})


def entry_status(entry: TrackerEntry) -> str:
    """One tracker's class: its own status where that says enough, else its message classified."""
    if entry.status in _PASSTHROUGH:
        return entry.status
    return classify(entry.message)  # "not_working" (every version) and 5.0+'s "error"


@dataclass(frozen=True, slots=True)
class TorrentTrackers:
    """One torrent's tracker health: its status and (host, class) for each tracker host it uses."""

    status: str  # one of TORRENT_STATUSES
    hosts: tuple[tuple[str, str], ...] = ()

    @property
    def working(self) -> float | None:
        """1 when some tracker works, 0 when none does, None when that cannot be told."""
        return None if self.status == "unknown" else float(self.status == "working")


class _WorkingByStatus(dict[str, float | None]):
    """Status → ``TorrentTrackers.working`` of that status, each worked out once: the collector
    reads it for every torrent by one C-level ``map``. Statuses are the few summarise gives."""

    def __missing__(self, status: str) -> float | None:
        working = self[status] = TorrentTrackers(status).working
        return working


WORKING = _WorkingByStatus()


def summarise(entries: list[TrackerEntry]) -> TorrentTrackers:
    """The summary of one trackers reply; a host used twice counts once, with its better class."""
    best: dict[str, str] = {}
    overall = "no_tracker"
    for entry in entries:
        status = entry_status(entry)
        if overall == "no_tracker" or _RANK[status] < _RANK[overall]:
            overall = status
        if entry.host and (entry.host not in best or _RANK[status] < _RANK[best[entry.host]]):
            best[entry.host] = status
    return TorrentTrackers(overall, tuple(sorted(best.items())))


def _key(torrent: Torrent) -> Hashable:
    return (announce_class(torrent.state), torrent.tracker, torrent.tracker_error, torrent.tracker_warning)


def _identified(torrent: Torrent) -> bool:
    return torrent.identified


PLAN = Plan(wants=_identified, key=_key, select=identified_torrents)


@dataclass(frozen=True, slots=True)
class TrackersReading:
    """This scrape's tracker health: per torrent (hash → summary, only torrents whose trackers are
    known) and the pass report."""

    torrents: dict[str, TorrentTrackers]
    report: PassReport


class TrackersPolicy:
    """The trackers pass; used by one scrape at a time (the scraper's gate)."""

    def __init__(self, max_age: float, stats: Stats, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy: PerTorrentPolicy[TorrentTrackers] = PerTorrentPolicy(
            max_age, PLAN, stats.trackers_refresh, clock
        )

    def read(
        self,
        fetch: Callable[[str, Deadline], list[TrackerEntry] | None],
        torrents: list[Torrent],
        deadline: Deadline,
        list_seconds: float,
        leave_until: float | None = None,
    ) -> TrackersReading:
        """``leave_until``: see ``PerTorrentPolicy.run``."""
        done = self.policy.run(summarising(fetch), torrents, deadline, list_seconds, leave_until)
        return TrackersReading(done.values, done.report)


def summarising(
    fetch: Callable[[str, Deadline], list[TrackerEntry] | None],
) -> Callable[[str, Deadline], TorrentTrackers | None]:
    """``fetch`` of a torrent's trackers whose reply is summarised as it arrives (what the cache
    keeps), with the failing trackers' messages logged at debug: for the scrape's pass and for
    refreshes between scrapes alike."""

    def fetch_summary(torrent_hash: str, deadline: Deadline) -> TorrentTrackers | None:
        entries = fetch(torrent_hash, deadline)
        if entries is None:
            return None
        summary = summarise(entries)
        if summary.status in FAILING and log.isEnabledFor(logging.DEBUG):
            for entry in entries:
                log.debug(
                    "torrent %s: tracker %s %s: %s",
                    torrent_hash,
                    entry.host,
                    entry_status(entry),
                    loggable(entry.message),
                )
        return summary

    return fetch_summary
