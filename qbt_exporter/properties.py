"""Which torrents get a per-torrent properties call this scrape, and what is remembered between.

A properties call costs qBittorrent about 1.4 ms per torrent on a legacy 4.0.4 (single-threaded, one
TCP connection per call): 14 s for 10,000 torrents, longer than Prometheus waits. Idle torrents'
properties hardly change, so they are fetched when a torrent is new, changed state, or is moving
data, and otherwise refreshed once per ``max_age``. Each hash gets its own refresh age between
half and all of ``max_age``, so a large library that was fetched at once is not refetched at once
ever again: the refreshes spread over the window instead of arriving as a burst every ``max_age``.

Values older than ``max_age`` are never served: a series that is absent for a while is better
than one that lies about its freshness.

``PropertiesPolicy.complete`` runs one scrape's pass: new torrents and state changes for as long as
the deadline allows, refreshes of busy and aged ones within a budget tied to qBittorrent's own list
time, then every torrent filled from the cache. What happened is reported in a ``PropertiesPass``,
which the torrent-properties collector turns into metrics and its success.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.errors import BackingOff, QbtError, TimedOut, Unreachable
from qbt_exporter.qbittorrent.model import BUSY_STATES, Torrent, TorrentProperties
from qbt_exporter.stats import Stats

REASONS: tuple[str, ...] = ("new", "changed", "busy", "aged")

# Refreshing the properties of busy and aged torrents may cost a scrape at most this share of the
# time qBittorrent took to list the torrents (and at least REFRESH_MIN_SECONDS), so that a library
# with thousands of active torrents keeps its scrape near the cost of the list itself.
REFRESH_REASONS = frozenset({"busy", "aged"})
REFRESH_SHARE = 0.2
REFRESH_MIN_SECONDS = 0.2

# Asks qBittorrent for one torrent's properties: None when the torrent is gone, QbtError on failure.
Fetch = Callable[[str, Deadline], "TorrentProperties | None"]


@dataclass(slots=True)
class _Entry:
    props: TorrentProperties
    state: str
    fetched_at: float


@dataclass(frozen=True, slots=True)
class Due:
    hash: str
    reason: str  # one of REASONS


def _refresh_age(torrent_hash: str, max_age: float) -> float:
    """A per-hash age in [max_age/2, max_age], stable across scrapes and processes."""
    try:
        fraction = int(torrent_hash[:8], 16) / 0xFFFFFFFF
    except ValueError:
        fraction = 1.0
    return max_age * (0.5 + 0.5 * fraction)


def _is_busy(torrent: Torrent) -> bool:
    return torrent.state in BUSY_STATES or bool(torrent.download_speed) or bool(torrent.upload_speed)


class PropertiesCache:
    """Remembered properties per hash, with the refresh plan. Used by one scrape at a time."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def due(self, torrents: Iterable[Torrent], now: float) -> list[Due]:
        """Torrents whose properties should be fetched now, most urgent first.

        New torrents come first (they have no values at all), then state changes, then busy
        torrents and aged entries, each oldest first, so that a refresh cut short by the time
        budget resumes where it stopped.
        """
        new: list[Due] = []
        changed: list[Due] = []
        busy: list[tuple[float, Due]] = []
        aged: list[tuple[float, Due]] = []
        for torrent in torrents:
            if not torrent.missing_properties():
                continue
            entry = self._entries.get(torrent.hash)
            if entry is None:
                new.append(Due(torrent.hash, "new"))
            elif entry.state != torrent.state:
                changed.append(Due(torrent.hash, "changed"))
            elif _is_busy(torrent):
                busy.append((entry.fetched_at, Due(torrent.hash, "busy")))
            elif now - entry.fetched_at >= _refresh_age(torrent.hash, self.max_age):
                aged.append((entry.fetched_at, Due(torrent.hash, "aged")))
        busy.sort(key=lambda pair: pair[0])
        aged.sort(key=lambda pair: pair[0])
        return new + changed + [due for _, due in busy] + [due for _, due in aged]

    def store(self, torrent_hash: str, props: TorrentProperties, state: str, now: float) -> None:
        self._entries[torrent_hash] = _Entry(props, state, now)

    def get(self, torrent_hash: str, now: float) -> tuple[TorrentProperties, float] | None:
        """The remembered properties and their age, or ``None`` if absent or older than max_age."""
        entry = self._entries.get(torrent_hash)
        if entry is None:
            return None
        age = now - entry.fetched_at
        if age > self.max_age:
            return None
        return entry.props, age

    def forget(self, torrent_hash: str) -> None:
        self._entries.pop(torrent_hash, None)

    def retain(self, hashes: Iterable[str]) -> None:
        """Drop every entry whose torrent is no longer in qBittorrent's list."""
        keep = set(hashes)
        for torrent_hash in [h for h in self._entries if h not in keep]:
            del self._entries[torrent_hash]


def refresh_budget(list_seconds: float) -> float:
    """Seconds this scrape may spend refreshing busy and aged torrents, after a list that took
    ``list_seconds``."""
    return max(REFRESH_MIN_SECONDS, REFRESH_SHARE * list_seconds)


@dataclass(frozen=True, slots=True)
class PropertiesPass:
    """How one scrape's properties pass went, for the torrent-properties collector.

    ``failed`` counts calls qBittorrent did not answer usefully (that torrent's property series are
    absent this time); ``error`` is the last such failure, for the log. A pass with no failure
    succeeded even when the budget or the deadline left torrents for later: that is ``skipped``
    and ``cut_short``, not a fault.
    """

    skipped: int = 0
    max_age: float | None = None
    cut_short: bool = False
    failed: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Completed:
    torrents: list[Torrent]
    report: PropertiesPass


class PropertiesPolicy:
    """The cache and the per-scrape pass over it; used by one scrape at a time (the scraper's gate)."""

    def __init__(self, max_age: float, stats: Stats, clock: Callable[[], float] = time.monotonic) -> None:
        self.cache = PropertiesCache(max_age)
        self.stats = stats
        self._clock = clock

    def complete(
        self, fetch: Fetch, torrents: list[Torrent], deadline: Deadline, list_seconds: float
    ) -> Completed:
        """Fetch the due properties, then fill every torrent from the cache.

        New torrents and state changes are fetched for as long as the deadline allows. Refreshes
        of busy and aged torrents stop after ``refresh_budget(list_seconds)``: what does not fit
        waits for the next scrape, oldest first.
        """
        cache, clock = self.cache, self._clock
        budget = refresh_budget(list_seconds)
        cache.retain(t.hash for t in torrents)
        state_of = {t.hash: t.state for t in torrents}
        vanished: set[str] = set()
        started = clock()
        due = cache.due(torrents, started)
        fetched = failed = 0
        cut_short = False
        error: str | None = None
        for item in due:
            if deadline.expired():
                cut_short = True
                break
            if item.reason in REFRESH_REASONS and clock() - started >= budget:
                break
            try:
                props = fetch(item.hash, deadline)
            except (Unreachable, BackingOff) as err:
                # The server stopped answering mid-way: keep what we have, try again next scrape.
                cut_short = cut_short or isinstance(err, TimedOut)
                failed, error = failed + 1, f"{type(err).__name__}: {err}"
                break
            except QbtError as err:
                fetched, failed, error = fetched + 1, failed + 1, f"{type(err).__name__}: {err}"
                continue  # this torrent's property series are absent this time; the rest go on
            fetched += 1
            self.stats.properties_refresh(item.reason)
            if props is None:
                vanished.add(item.hash)
                cache.forget(item.hash)
            else:
                cache.store(item.hash, props, state_of[item.hash], clock())
        completed, oldest = self._fill(torrents, vanished)
        report = PropertiesPass(len(due) - fetched, oldest, cut_short, failed, error)
        return Completed(completed, report)

    def _fill(self, torrents: list[Torrent], vanished: set[str]) -> tuple[list[Torrent], float | None]:
        """The torrents still listed, each with its cached properties; and the oldest age served."""
        now = self._clock()
        completed: list[Torrent] = []
        oldest: float | None = None
        for torrent in torrents:
            if torrent.hash in vanished:
                continue
            if torrent.missing_properties():
                cached = self.cache.get(torrent.hash, now)
                if cached is not None:
                    props, age = cached
                    torrent = torrent.with_properties(props)
                    oldest = age if oldest is None else max(oldest, age)
            completed.append(torrent)
        return completed, oldest
