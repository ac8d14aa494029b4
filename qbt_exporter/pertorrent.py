"""The one policy for every per-torrent call: which torrents get a call this scrape, within what budget.

Some values exist only behind one call per torrent (properties, trackers). Such a call costs
qBittorrent about 1.4 ms per torrent on a legacy 4.0.4 (single-threaded, one TCP connection per
call): 14 s for 10,000 torrents, longer than Prometheus waits. So a torrent is fetched when it is
new or its ``key`` changed (its state; for trackers also its tracker host), every scrape while it is
``busy`` (for the calls whose values go stale while data moves), and otherwise refreshed once per
``max_age``, unless the list itself proves the value unchanged since it was fetched (``settled``:
a paused torrent whose counters have not moved cannot have other values now). Each hash gets its
own refresh age between half and nine tenths of ``max_age``, so a large library that was fetched
at once is not refetched at once ever again: the refreshes spread over the window instead of
arriving as a burst every ``max_age``.

Values older than ``max_age`` are never served: a series that is absent for a while is better than
one that lies about its freshness. A value's age counts from the last time it was known true: its
fetch, or the last scrape whose list proved it unchanged.

``PerTorrentPolicy.run`` is one scrape's pass: new torrents and changes for as long as the deadline
allows, refreshes of busy and aged ones within a budget tied to qBittorrent's own list time (each
kind of call has its own budget), then every listed torrent's value from the cache.

The time budget alone cannot keep a large library within ``max_age``: at 10,000 torrents with state
changes eating the budget, or a scrape only every minute, two thirds of the values used to expire
and their series went absent for good. So refreshes also go on past the time budget at the pace
that keeps every value within ``max_age`` (``refresh_pace``: the cached torrents times the time since
the last pass, over the shortest refresh age). That pace is the least the promise costs; the
scrape's deadline still bounds it, and a larger ``max_age`` lowers it. What happened
is a ``PassReport``, which the kind's collector turns into metrics and its success.

Most of those refreshes need not wait for a scrape: ``refresher.py`` makes, between scrapes, the
ones the next scrape would make for age alone (``PerTorrentCache.ahead``), and stores them through
``PerTorrentPolicy.keep`` as a scrape does; the pass above still does whatever it did not.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Generic, TypeVar

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.errors import BackingOff, QbtError, TimedOut, Unreachable
from qbt_exporter.qbittorrent.model import Torrent, hash_of

V = TypeVar("V")

# Why a call was made: in a scrape, for a torrent new to the cache, with a changed key, busy, or
# whose value reached its refresh age; "ahead": between scrapes, a value that would have reached its
# refresh age by the next scrape (``refresher.py``).
REASONS: tuple[str, ...] = ("new", "changed", "busy", "aged", "ahead")

# Refreshing busy and aged torrents may cost a scrape at most this share of the time qBittorrent
# took to list the torrents (and at least REFRESH_MIN_SECONDS), per kind of call, so that a library
# with thousands of torrents keeps its scrape near the cost of the list itself.
REFRESH_REASONS = frozenset({"busy", "aged"})
REFRESH_SHARE = 0.2
REFRESH_MIN_SECONDS = 0.2
PACE_HEADROOM = 1.5  # refresh_pace: how much faster than the average need a backlog is worked off

# Asks qBittorrent for one torrent's value: None when the torrent is gone, QbtError on failure.
Fetch = Callable[[str, Deadline], "V | None"]


@dataclass(frozen=True, slots=True)
class Plan:
    """What a kind of per-torrent call needs to know about a torrent to plan its calls."""

    wants: Callable[[Torrent], bool]  # whether the call is of any use for this torrent
    key: Callable[[Torrent], Hashable]  # a change of it makes the torrent due ("changed")
    busy: Callable[[Torrent], bool] | None = None  # refreshed every scrape, within the budget
    # A mark read from the list that proves the value unchanged for as long as it stays what it was
    # at the fetch (with the same key); None when the list proves nothing for this torrent.
    settled: Callable[[Torrent], Hashable | None] | None = None
    # Shortcuts by C-level calls, for what every scrape asks of every torrent; each gives the same
    # answers as the definitions above. ``select``: the torrents ``wants``, in list order.
    # ``settled_reads``: the fields ``settled`` reads, as one value (an ``attrgetter``), so that
    # fields equal to those at the fetch prove the same mark without asking ``settled``.
    select: Callable[[list[Torrent]], list[Torrent]] | None = None
    settled_reads: Callable[[Torrent], Hashable] | None = None

    def wanted(self, torrents: list[Torrent]) -> list[Torrent]:
        """The torrents this kind of call is of use for, in list order."""
        if self.select is not None:
            return self.select(torrents)
        return list(filter(self.wants, torrents))


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    key: Hashable
    known_at: float  # when the value was last known true: fetched, or proved unchanged (``settled``)
    mark: Hashable | None = None  # the plan's ``settled`` mark at the fetch
    refresh_age: float = math.inf  # its hash's ``refresh_age``, worked out once at the fetch
    reads: Hashable | None = None  # the plan's ``settled_reads`` at the fetch, when it had a mark


@dataclass(frozen=True, slots=True)
class Due:
    hash: str
    reason: str  # one of REASONS
    expiring: bool = False  # a refresh whose value has reached its refresh age (may go past the budget)


def refresh_age(torrent_hash: str, max_age: float) -> float:
    """A per-hash age in [max_age/2, 0.9 max_age], stable across scrapes and processes.

    Not up to ``max_age`` itself: a value not yet due when a pass starts would then expire during
    the pass's own calls, and its series would be absent from that scrape (seen at 1,000 torrents:
    6 in every 1,000 once per refresh cycle). The last tenth is that margin."""
    try:
        fraction = int(torrent_hash[:8], 16) / 0xFFFFFFFF
    except ValueError:
        fraction = 1.0
    return max_age * (0.5 + 0.4 * fraction)


def refresh_pace(cached: int, elapsed: float, max_age: float) -> int:
    """Refreshes one pass may make past its time budget: enough that each of ``cached`` values is
    refreshed within the shortest refresh age (half of ``max_age``) when passes come ``elapsed``
    seconds apart, and half as many again (``PACE_HEADROOM``), so that a backlog drains: a library
    fetched all at once falls due at exactly that rate, and without headroom a few values expired
    at every turn."""
    if cached <= 0 or elapsed <= 0 or max_age <= 0:
        return 0
    return math.ceil(PACE_HEADROOM * cached * min(elapsed, max_age) / (max_age / 2))


def refresh_budget(list_seconds: float) -> float:
    """Seconds one kind of call may spend this scrape refreshing busy and aged torrents, after a
    list that took ``list_seconds``."""
    return max(REFRESH_MIN_SECONDS, REFRESH_SHARE * list_seconds)


class PerTorrentCache(Generic[V]):
    """Remembered values per hash, with the refresh plan. Used by one scrape at a time."""

    def __init__(self, max_age: float, plan: Plan) -> None:
        self.max_age = max_age
        self.plan = plan
        self._entries: dict[str, _Entry[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def due(self, torrents: Iterable[Torrent], now: float) -> list[Due]:
        """Torrents whose value should be fetched now, most urgent first.

        New torrents come first (they have no values at all), then changes, then busy torrents and
        aged entries, each oldest first, so that a refresh cut short by the time budget resumes
        where it stopped. An entry the list proves unchanged (``Plan.settled``: the same mark as at
        the fetch) is known true as of ``now`` and is not due. A different mark proves nothing:
        the entry ages from the last time it was known true, like any other (a held torrent whose
        counters move on every scrape would otherwise cost a call per scrape beyond the budget).
        """
        return self.due_wanted(self.plan.wanted(list(torrents)), now)

    def due_wanted(self, wanted: list[Torrent], now: float, *, prove: bool = True) -> list[Due]:
        """``due`` of the torrents the plan wants. Runs for every wanted torrent of every scrape, so
        the entries and keys are looked up by C-level ``map`` and each torrent's refresh age is
        the one its entry kept from the fetch. ``prove=False``: an entry the list proves unchanged
        is left as it was instead of being known true as of ``now`` (for a ``now`` to come)."""
        plan = self.plan
        is_busy, settled = plan.busy, plan.settled
        new: list[Due] = []
        changed: list[Due] = []
        busy: list[tuple[float, Due]] = []
        aged: list[tuple[float, Due]] = []
        hashes = list(map(hash_of, wanted))
        keys = map(plan.key, wanted)
        reads = (
            map(plan.settled_reads, wanted) if plan.settled_reads is not None else repeat(None, len(wanted))
        )
        entries = map(self._entries.get, hashes)
        for torrent, torrent_hash, entry, key, read in zip(wanted, hashes, entries, keys, reads, strict=True):
            if entry is None:
                new.append(Due(torrent_hash, "new"))
            elif entry.key != key:
                changed.append(Due(torrent_hash, "changed"))
            elif (
                entry.mark is not None
                and settled is not None
                and ((read is not None and read == entry.reads) or settled(torrent) == entry.mark)
            ):
                if prove:
                    entry.known_at = now  # the list proves the value unchanged since the fetch
            else:
                expiring = now - entry.known_at >= entry.refresh_age
                if is_busy is not None and is_busy(torrent):
                    busy.append((entry.known_at, Due(torrent_hash, "busy", expiring)))
                elif expiring:
                    aged.append((entry.known_at, Due(torrent_hash, "aged", True)))
        busy.sort(key=_first)
        aged.sort(key=_first)
        return new + changed + [due for _, due in busy] + [due for _, due in aged]

    def ahead(self, wanted: list[Torrent], until: float) -> list[Torrent]:
        """The torrents a pass at ``until`` would refresh for age alone (``aged``) if the list were
        still ``wanted``, oldest first: for a refresh between scrapes (``refresher.py``).

        Not new, changed or busy torrents: those belong to the scrape that lists them. Not a settled
        entry either: the next list will most likely prove it unchanged again. Read-only
        (``prove=False``): ``until`` is a time not yet come, and a value must never be known true
        as of the future (it would be served past its max age)."""
        by_hash = {torrent.hash: torrent for torrent in wanted}
        due = self.due_wanted(wanted, until, prove=False)
        return [by_hash[item.hash] for item in due if item.reason == "aged"]

    def store(
        self,
        torrent_hash: str,
        value: V,
        key: Hashable,
        now: float,
        mark: Hashable | None = None,
        reads: Hashable | None = None,
    ) -> None:
        """Remember a fetched value with the torrent's ``key``, ``settled`` mark and the fields that
        mark was read from (``Plan.settled_reads``) as listed."""
        age = refresh_age(torrent_hash, self.max_age)
        self._entries[torrent_hash] = _Entry(value, key, now, mark, age, None if mark is None else reads)

    def get(self, torrent_hash: str, now: float) -> tuple[V, float] | None:
        """The remembered value and its age, or ``None`` if absent or older than max_age."""
        entry = self._entries.get(torrent_hash)
        if entry is None:
            return None
        age = now - entry.known_at
        if age > self.max_age:
            return None
        return entry.value, age

    def left_until(self, torrent_hash: str) -> float:
        """Until when a refresh of this value for age alone may be left to the refresh between
        scrapes: halfway from its refresh age to ``max_age``. Spread by hash as the refresh ages
        are, so that values fetched at once are not all taken back by one scrape if that refresh
        falls behind, and with room left before they expire (-inf when there is no value)."""
        entry = self._entries.get(torrent_hash)
        if entry is None:
            return -math.inf
        return entry.known_at + (min(entry.refresh_age, self.max_age) + self.max_age) / 2

    def forget(self, torrent_hash: str) -> None:
        self._entries.pop(torrent_hash, None)

    def retain(self, hashes: Iterable[str]) -> None:
        """Drop every entry whose torrent is no longer in qBittorrent's list."""
        for torrent_hash in self._entries.keys() - set(hashes):
            del self._entries[torrent_hash]

    def served(self, hashes: list[str], now: float) -> tuple[dict[str, V], float | None]:
        """``get`` for each of ``hashes`` at once: the values (by hash) and the oldest age served.
        (A loop: the interpreter's own reads of an entry's slots beat ``attrgetter`` over them.)"""
        max_age = self.max_age
        values: dict[str, V] = {}
        oldest: float | None = None
        for torrent_hash, entry in zip(hashes, map(self._entries.get, hashes), strict=True):
            if entry is None:
                continue
            age = now - entry.known_at
            if age > max_age:
                continue
            values[torrent_hash] = entry.value
            if oldest is None or age > oldest:
                oldest = age
        return values, oldest


@dataclass(frozen=True, slots=True)
class PassReport:
    """How one scrape's pass of one kind of per-torrent call went, for its collector.

    ``failed`` counts calls qBittorrent did not answer usefully (that torrent's series of this kind
    are absent this time); ``error`` is the last such failure, for the log. A pass with no failure
    succeeded even when the budget or the deadline left torrents for later: that is ``skipped`` and
    ``cut_short``, not a fault.
    """

    skipped: int = 0
    max_age: float | None = None
    cut_short: bool = False
    failed: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PassResult(Generic[V]):
    """The values to serve (hash → value, only for torrents still listed and with a value no older
    than max_age), the torrents qBittorrent said are gone, and the report."""

    values: dict[str, V]
    report: PassReport
    vanished: set[str] = field(default_factory=set)


class PerTorrentPolicy(Generic[V]):
    """The cache and the per-scrape pass over it; used by one scrape at a time (the scraper's gate).

    ``counted`` is told the reason of every call made (for the exporter's refresh counters).
    """

    def __init__(
        self,
        max_age: float,
        plan: Plan,
        counted: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache: PerTorrentCache[V] = PerTorrentCache(max_age, plan)
        self._counted = counted
        self._clock = clock
        self._last_pass: float | None = None  # when the previous pass started (for refresh_pace)

    def run(
        self,
        fetch: Callable[[str, Deadline], V | None],
        torrents: list[Torrent],
        deadline: Deadline,
        list_seconds: float,
        leave_until: float | None = None,
    ) -> PassResult[V]:
        """Fetch the due values, then read every listed torrent's value from the cache.

        New torrents and changes are fetched for as long as the deadline allows. Refreshes of busy
        and aged torrents stop after ``refresh_budget(list_seconds)``, except that up to
        ``refresh_pace`` values that reached their refresh age are still refreshed past it: what does
        not fit waits for the next scrape, oldest first.

        ``leave_until``: the refresh between scrapes is running (``refresher.py``) and the next
        scrape is expected before this time. A value due for age alone that may still be left to
        that refresh then (``PerTorrentCache.left_until``) is not refreshed here: made in the
        scrape, those calls lengthen it, which shortens the time left between scrapes, which leaves
        more of them to the next scrape, until the refresh between scrapes does almost nothing
        (measured: 87 calls made between scrapes against about 600 left in each 15 s scrape). A
        value past that is refreshed here as before, well before it expires, so that none does if
        the refresh between scrapes falls behind or stops.
        """
        cache, clock, plan = self.cache, self._clock, self.cache.plan
        budget = refresh_budget(list_seconds)
        cache.retain(map(hash_of, torrents))
        listed: dict[str, Torrent] = {}  # by hash, built at the first fetch (none in a steady state)
        vanished: set[str] = set()
        started = clock()
        elapsed = 0.0 if self._last_pass is None else started - self._last_pass
        self._last_pass = started
        pace = refresh_pace(len(cache), elapsed, cache.max_age)
        wanted = plan.wanted(torrents)
        due = cache.due_wanted(wanted, started)
        if leave_until is not None:
            left_until = cache.left_until
            due = [item for item in due if item.reason != "aged" or left_until(item.hash) <= leave_until]
        fetched = failed = paced = 0
        cut_short = False
        error: str | None = None
        for item in due:
            if deadline.expired():
                cut_short = True
                break
            if item.reason in REFRESH_REASONS and clock() - started >= budget:
                if not item.expiring or paced >= pace:
                    continue  # left for a later scrape (counted as skipped)
                paced += 1
            try:
                value = fetch(item.hash, deadline)
            except (Unreachable, BackingOff) as err:
                # The server stopped answering mid-way: keep what we have, try again next scrape.
                cut_short = cut_short or isinstance(err, TimedOut)
                failed, error = failed + 1, f"{type(err).__name__}: {err}"
                break
            except QbtError as err:
                fetched, failed, error = fetched + 1, failed + 1, f"{type(err).__name__}: {err}"
                continue  # this torrent's series are absent this time; the rest go on
            fetched += 1
            if value is None:
                vanished.add(item.hash)
            listed = listed or {t.hash: t for t in torrents}
            self.keep(listed[item.hash], value, item.reason)
        hashes = list(map(hash_of, wanted))
        if vanished:
            hashes = [h for h in hashes if h not in vanished]
        values, oldest = cache.served(hashes, self._clock())
        return PassResult(values, PassReport(len(due) - fetched, oldest, cut_short, failed, error), vanished)

    def ahead(self, torrents: list[Torrent], until: float) -> list[Torrent]:
        """``PerTorrentCache.ahead`` of the torrents this kind of call is of use for."""
        return self.cache.ahead(self.cache.plan.wanted(torrents), until)

    def keep(self, torrent: Torrent, value: V | None, reason: str) -> None:
        """Count a call made for ``reason`` and remember its value with ``torrent``'s key and
        ``settled`` mark as listed (``None``: qBittorrent said the torrent is gone; forgotten)."""
        self._counted(reason)
        cache, plan = self.cache, self.cache.plan
        if value is None:
            cache.forget(torrent.hash)
            return
        mark = plan.settled(torrent) if plan.settled is not None else None
        reads = plan.settled_reads(torrent) if plan.settled_reads is not None else None
        cache.store(torrent.hash, value, plan.key(torrent), self._clock(), mark, reads)


_first = operator.itemgetter(0)
