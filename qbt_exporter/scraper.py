"""One scrape of one qBittorrent: detect the API, read the snapshot, complete it with properties,
read the trackers.

The scraper owns everything that must outlive a single scrape: the detected flavour, the
per-torrent caches (properties, trackers), and the single-flight gate. Two Prometheus servers
scraping at the same moment cause one round of qBittorrent calls; the later arrival waits for the
running scrape and shares its result, so they also share one session and never log in twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qbt_exporter import properties as properties_pass
from qbt_exporter import trackers as trackers_pass
from qbt_exporter.deadline import Deadline
from qbt_exporter.pertorrent import PassReport
from qbt_exporter.properties import PropertiesPass, PropertiesPolicy
from qbt_exporter.qbittorrent import flavours
from qbt_exporter.qbittorrent.errors import BackingOff, Banned, LoginRejected, NotFound, QbtError, TimedOut
from qbt_exporter.qbittorrent.flavours.base import Flavour
from qbt_exporter.qbittorrent.model import ServerInfo, Snapshot, Torrent, identified_torrents
from qbt_exporter.refresher import Job, Refresher
from qbt_exporter.selection import Selection, SelectionReport
from qbt_exporter.stats import Stats
from qbt_exporter.trackers import TrackersPolicy, TrackersReading, summarising

if TYPE_CHECKING:
    from qbt_exporter.qbittorrent.client import Client

log = logging.getLogger(__name__)

Detector = Callable[["Client", Stats, Deadline], Flavour]


@dataclass(frozen=True, slots=True)
class LoginState:
    """The client's login back-off as it stood at the end of the scrape."""

    backoff_seconds: float = 0.0
    suspended: Mapping[str, bool] = field(default_factory=lambda: {"rejected": False, "banned": False})


@dataclass(slots=True)
class ScrapeResult:
    """Everything the collectors read: the snapshot (``None`` = qBittorrent down) and how it went.

    Collectors read only this, never the scraper or the client, so that each can be built and
    tested from a plain value. ``snapshot.torrents`` is qBittorrent's whole list as it listed it
    (never filtered, never completed from per-torrent calls: the totals by state, category, tag and
    tracker read it, and must not depend on the filters). ``selected`` is the torrents that get
    per-torrent series: those the filters and the cap kept, completed with their properties;
    ``None`` when no selection ran (then every identified torrent of the snapshot).
    ``properties`` and ``trackers`` are ``None`` when that pass did not run (turned off, or
    qBittorrent down); the trackers pass reads only the selected torrents.
    """

    snapshot: Snapshot | None
    login: LoginState = field(default_factory=LoginState)
    duration: float = 0.0
    cut_short: bool = False
    properties: PropertiesPass | None = None
    error: str | None = None
    selected: list[Torrent] | None = None
    selection: SelectionReport | None = None
    trackers: TrackersReading | None = None

    def per_torrent(self) -> list[Torrent]:
        """The torrents that get per-torrent series this scrape."""
        if self.selected is not None:
            return self.selected
        return identified_torrents(self.snapshot.torrents) if self.snapshot is not None else []


@dataclass(frozen=True, slots=True)
class _Read:
    snapshot: Snapshot
    selected: list[Torrent]
    selection: SelectionReport
    properties: PropertiesPass | None
    trackers: TrackersReading | None = None
    passes_at: float = 0.0  # when the per-torrent passes began (after the list)
    jobs: tuple[Job, ...] = ()  # those passes, for the refresh between scrapes


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
        properties_max_age: float = properties_pass.DEFAULT_MAX_AGE,
        selection: Selection | None = None,
        trackers: bool = True,
        trackers_max_age: float = trackers_pass.DEFAULT_MAX_AGE,
        detect: Detector | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresher: Refresher | None = None,
    ) -> None:
        self.client = client
        self.stats = stats
        self.properties = PropertiesPolicy(properties_max_age, stats, clock) if properties else None
        self.selection = selection or Selection()
        self.trackers = TrackersPolicy(trackers_max_age, stats, clock) if trackers else None
        self._detect = detect or flavours.detect
        self._clock = clock
        self._flavour: Flavour | None = None
        self._server: ServerInfo | None = None
        self._generation_seen = -1
        self._gate = threading.Lock()
        self._flight: _Flight | None = None
        self._last_error: str | None = None
        self._last_pass_error: dict[str, str | None] = {}
        self._announced: ServerInfo | None = None
        # Refreshes the per-torrent values between scrapes (--torrents.refresh-ahead); None: off.
        self.refresher = refresher if (self.properties or self.trackers) else None

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
            return self.failed("waited for a concurrent scrape", cut_short=True)
        try:
            flight.result = self._scrape(deadline)
        finally:
            with self._gate:
                self._flight = None
            flight.done.set()
        return flight.result

    def answered(self) -> None:
        """The last scrape's answer is sent: the refresh between scrapes may use the time left (not
        before: it would compete with the rendering and the sending for the interpreter)."""
        if self.refresher is not None:
            self.refresher.go()

    def close(self) -> None:
        """Stop the refresh between scrapes (shutdown, or the target evicted)."""
        if self.refresher is not None:
            self.refresher.close()

    def failed(self, error: str, *, duration: float = 0.0, cut_short: bool = False) -> ScrapeResult:
        """A result without a snapshot (qBittorrent reads as down), with the login state as it is.

        Also the answer the web layer renders when building the exposition raised: it reports
        ``qbittorrent_up 0`` and the exporter's own metrics rather than an HTTP error.
        """
        return ScrapeResult(None, self._login_state(), duration, cut_short, error=error)

    def _login_state(self) -> LoginState:
        return LoginState(self.client.login_backoff_remaining(), dict(self.client.login_suspended()))

    # --- one scrape ---------------------------------------------------------------------
    def _scrape(self, deadline: Deadline) -> ScrapeResult:
        refresher = self.refresher
        if refresher is not None:
            refresher.pause()  # the caches are this scrape's alone from here on
        started = self._clock()
        leave_until = refresher.leave_until(started) if refresher is not None else None
        read: _Read | None = None
        try:
            read = self._read(deadline, leave_until)
        except QbtError as err:
            self._note_failure(err)
            return self.failed(
                str(err), duration=self._clock() - started, cut_short=isinstance(err, TimedOut)
            )
        finally:
            if refresher is not None:  # no refresh between scrapes after one that found qBittorrent down
                refresher.resume(started, read.passes_at if read else started, read.jobs if read else None)
        if self._last_error is not None:
            log.info("qBittorrent answers again at %s", self.client.base_url)
            self._last_error = None
        self._announce(read.snapshot)
        if read.properties is not None:
            self._note_pass("properties", "property", read.properties)
        if read.trackers is not None:
            self._note_pass("trackers", "tracker", read.trackers.report)
        cut_short = any(
            report is not None and report.cut_short
            for report in (read.properties, read.trackers and read.trackers.report)
        )
        return ScrapeResult(
            read.snapshot,
            self._login_state(),
            self._clock() - started,
            cut_short,
            read.properties,
            selected=read.selected,
            selection=read.selection,
            trackers=read.trackers,
        )

    def _announce(self, snapshot: Snapshot) -> None:
        """Say once which qBittorrent answered, and again when that changes (an upgrade in place):
        the one line that proves the URL and the credentials right, before any dashboard does."""
        if snapshot.server != self._announced:
            server = snapshot.server
            log.info(
                "connected to qBittorrent %s at %s (API %s %s): %d torrents",
                server.version,
                self.client.base_url,
                server.api,
                server.api_version,
                len(snapshot.torrents),
            )
            self._announced = server

    def _note_failure(self, err: QbtError) -> None:
        """Log a failure once per change of cause, and re-detect after errors that may mean a new server."""
        if not isinstance(err, BackingOff | LoginRejected | Banned):
            self._flavour = None  # restarted, upgraded or replaced: ask /version/api again
        message = f"{type(err).__name__}: {err}"
        if isinstance(err, NotFound) and self._server is None:
            # Not even the version calls exist there: the URL is not the WebUI's root.
            message += (
                f" at {self.client.base_url}: is that qBittorrent's WebUI root URL? give it without "
                "/api/v2 (and with the path prefix only when behind a reverse proxy)"
            )
        if message != self._last_error:
            log.warning("scrape of %s failed: %s", self.client.base_url, message)
            self._last_error = message

    def _note_pass(self, calls: str, series: str, report: PassReport) -> None:
        """Say why a per-torrent pass's collector_success is 0, once per change of cause."""
        if report.error != self._last_pass_error.get(calls):
            if report.error is not None:
                log.warning(
                    "%s calls to %s failed (%d this scrape; those torrents' %s series are absent): %s",
                    calls,
                    self.client.base_url,
                    report.failed,
                    series,
                    report.error,
                )
            else:
                log.info("%s calls to %s answer again", calls, self.client.base_url)
            self._last_pass_error[calls] = report.error

    def _flavour_for(self, deadline: Deadline) -> tuple[Flavour, ServerInfo]:
        """The flavour to use, detected again when unknown or when the client had to log in anew.

        A new login means qBittorrent forgot our session: it restarted, and may have been upgraded
        in place, so its version and even its API may have changed.
        """
        generation = self.client.session_generation
        if self._flavour is None or self._server is None or generation != self._generation_seen:
            flavour = self._detect(self.client, self.stats, deadline)
            self._server = flavour.server_info(deadline)
            self._flavour = flavour
            self._generation_seen = self.client.session_generation
        return self._flavour, self._server

    def _read(self, deadline: Deadline, leave_until: float | None = None) -> _Read:
        """The snapshot and the per-torrent passes; ``leave_until``: see ``PerTorrentPolicy.run``."""
        flavour, server = self._flavour_for(deadline)
        generation_before = self.client.session_generation
        listed_at = self._clock()
        transfer, torrents = flavour.snapshot(deadline)
        list_seconds = self._clock() - listed_at
        if self.client.session_generation != generation_before:
            if generation_before == 0:
                self._generation_seen = self.client.session_generation  # the first login: nothing restarted
            else:
                # The snapshot call had to log in again: the version we hold may be stale.
                flavour, server = self._flavour_for(deadline)
        # Per-torrent calls only for the torrents that get per-torrent series; the whole list stays
        # in the snapshot, as listed, for the totals.
        selected, selection = self.selection.choose(torrents)
        passes_at = self._clock()
        jobs: list[Job] = []
        report: PropertiesPass | None = None
        if self.properties is not None:
            jobs.append(Job(self.properties.policy, flavour.properties, selected))
            completed = self.properties.complete(
                flavour.properties, selected, deadline, list_seconds, leave_until
            )
            selected, report = completed.torrents, completed.report
        trackers: TrackersReading | None = None
        if self.trackers is not None:
            jobs.append(Job(self.trackers.policy, summarising(flavour.trackers), selected))
            trackers = self.trackers.read(flavour.trackers, selected, deadline, list_seconds, leave_until)
        snapshot = Snapshot(server, transfer, torrents)
        return _Read(snapshot, selected, selection, report, trackers, passes_at, tuple(jobs))
