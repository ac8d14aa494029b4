"""One scrape of one qBittorrent: detect the API, read the snapshot, complete it with properties.

The scraper owns everything that must outlive a single scrape: the detected flavour, the
properties cache, and the single-flight gate. Two Prometheus servers scraping at the same moment
cause one round of qBittorrent calls; the later arrival waits for the running scrape and shares its
result, so they also share one session and never log in twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qbt_exporter.deadline import Deadline
from qbt_exporter.properties import PropertiesCache
from qbt_exporter.qbittorrent import flavours
from qbt_exporter.qbittorrent.errors import BackingOff, Banned, LoginRejected, QbtError, TimedOut, Unreachable
from qbt_exporter.qbittorrent.flavours.base import Flavour
from qbt_exporter.qbittorrent.model import ServerInfo, Snapshot, Torrent
from qbt_exporter.stats import Stats

if TYPE_CHECKING:
    from qbt_exporter.qbittorrent.client import Client

log = logging.getLogger(__name__)

# Refreshing the properties of busy and aged torrents may cost a scrape at most this share of the
# time qBittorrent took to list the torrents (and at least REFRESH_MIN_SECONDS), so that a library
# with thousands of active torrents keeps its scrape near the cost of the list itself.
REFRESH_REASONS = frozenset({"busy", "aged"})
REFRESH_SHARE = 0.2
REFRESH_MIN_SECONDS = 0.2

Detector = Callable[["Client", Stats, Deadline], Flavour]


@dataclass(slots=True)
class ScrapeResult:
    """What the collector needs: the snapshot (``None`` = qBittorrent down) and how it went."""

    snapshot: Snapshot | None
    duration: float = 0.0
    cut_short: bool = False
    properties_skipped: int = 0
    properties_max_age: float | None = None
    error: str | None = None


@dataclass(slots=True)
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    result: ScrapeResult | None = None


class Scraper:
    """Reads one qBittorrent per scrape; safe to call from several HTTP threads at once."""

    def __init__(
        self,
        client: Client,
        stats: Stats,
        *,
        properties: bool = True,
        properties_max_age: float = 300.0,
        detect: Detector | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.stats = stats
        self.fetch_properties = properties
        self.cache = PropertiesCache(properties_max_age)
        self._detect = detect or flavours.detect
        self._clock = clock
        self._flavour: Flavour | None = None
        self._server: ServerInfo | None = None
        self._logins_seen = -1
        self._gate = threading.Lock()
        self._flight: _Flight | None = None
        self._last_error: str | None = None

    # --- single flight ------------------------------------------------------------------
    def scrape(self, deadline: Deadline) -> ScrapeResult:
        """The result of a scrape: a new one, or the one already running when this call came in.

        Joining a running scrape returns data at most one scrape old, from one round of calls.
        """
        with self._gate:
            flight = self._flight
            leader = flight is None
            if leader:
                flight = self._flight = _Flight()
        assert flight is not None
        if not leader:
            # A deadline may be infinite (Deadline.never()); Event.wait overflows past TIMEOUT_MAX.
            wait = min(deadline.remaining(), threading.TIMEOUT_MAX)
            if flight.done.wait(wait) and flight.result is not None:
                return flight.result
            return ScrapeResult(None, cut_short=True, error="waited for a concurrent scrape")
        try:
            flight.result = self._scrape(deadline)
        finally:
            with self._gate:
                self._flight = None
            flight.done.set()
        return flight.result

    # --- one scrape ---------------------------------------------------------------------
    def _scrape(self, deadline: Deadline) -> ScrapeResult:
        started = self._clock()
        try:
            snapshot, cut_short, skipped, max_age = self._read(deadline)
        except QbtError as err:
            self._note_failure(err)
            return ScrapeResult(None, self._clock() - started, isinstance(err, TimedOut), error=str(err))
        if self._last_error is not None:
            log.info("qBittorrent answers again at %s", self.client.base_url)
            self._last_error = None
        return ScrapeResult(snapshot, self._clock() - started, cut_short, skipped, max_age)

    def _note_failure(self, err: QbtError) -> None:
        """Log a failure once per change of cause, and re-detect after errors that may mean a new server."""
        if not isinstance(err, BackingOff | LoginRejected | Banned):
            self._flavour = None  # restarted, upgraded or replaced: ask /version/api again
        message = f"{type(err).__name__}: {err}"
        if message != self._last_error:
            log.warning("scrape of %s failed: %s", self.client.base_url, message)
            self._last_error = message

    def _flavour_for(self, deadline: Deadline) -> tuple[Flavour, ServerInfo]:
        """The flavour to use, detected again when unknown or when the client had to log in anew.

        A new login means qBittorrent forgot our session: it restarted, and may have been upgraded
        in place, so its version and even its API may have changed.
        """
        logins = self.client.logins_ok
        if self._flavour is None or self._server is None or logins != self._logins_seen:
            flavour = self._detect(self.client, self.stats, deadline)
            self._server = flavour.server_info(deadline)
            self._flavour = flavour
            self._logins_seen = self.client.logins_ok
        return self._flavour, self._server

    def _read(self, deadline: Deadline) -> tuple[Snapshot, bool, int, float | None]:
        flavour, server = self._flavour_for(deadline)
        logins_before = self.client.logins_ok
        listed_at = self._clock()
        transfer, torrents = flavour.snapshot(deadline)
        list_seconds = self._clock() - listed_at
        if self.client.logins_ok != logins_before:
            if logins_before == 0:
                self._logins_seen = self.client.logins_ok  # the first login: nothing restarted
            else:
                # The snapshot call had to log in again: the version we hold may be stale.
                flavour, server = self._flavour_for(deadline)
        cut_short = False
        skipped = 0
        max_age: float | None = None
        if self.fetch_properties:
            refresh_budget = max(REFRESH_MIN_SECONDS, REFRESH_SHARE * list_seconds)
            torrents, cut_short, skipped, max_age = self._complete(
                flavour, torrents, deadline, refresh_budget
            )
        return Snapshot(server, transfer, torrents), cut_short, skipped, max_age

    def _complete(
        self, flavour: Flavour, torrents: list[Torrent], deadline: Deadline, refresh_budget: float
    ) -> tuple[list[Torrent], bool, int, float | None]:
        """Fetch the due properties, then fill every torrent from the cache.

        New torrents and state changes are fetched for as long as the deadline allows. Refreshes
        of busy and aged torrents stop after ``refresh_budget`` seconds: what does not fit waits
        for the next scrape, oldest first.
        """
        self.cache.retain(t.hash for t in torrents)
        state_of = {t.hash: t.state for t in torrents}
        vanished: set[str] = set()
        started = self._clock()
        due = self.cache.due(torrents, started)
        fetched = 0
        cut_short = False
        for item in due:
            if deadline.expired():
                cut_short = True
                break
            if item.reason in REFRESH_REASONS and self._clock() - started >= refresh_budget:
                break
            try:
                props = flavour.properties(item.hash, deadline)
            except (Unreachable, BackingOff) as err:
                # The server stopped answering mid-way: keep what we have, try again next scrape.
                cut_short = cut_short or isinstance(err, TimedOut)
                break
            except QbtError:
                fetched += 1
                continue  # this torrent's property series are absent this time; the rest go on
            fetched += 1
            self.stats.properties_refresh(item.reason)
            if props is None:
                vanished.add(item.hash)
                self.cache.forget(item.hash)
            else:
                self.cache.store(item.hash, props, state_of[item.hash], self._clock())
        skipped = len(due) - fetched
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
        return completed, cut_short, skipped, oldest
