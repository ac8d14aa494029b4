"""Refresh ahead: between scrapes, fetch the per-torrent values the next scrape would refresh for age.

A large library needs a steady rate of per-torrent calls to keep its values within their max age
(10,000 torrents and the default 5 minutes: about 44 properties calls a second), but a scrape is a
point event: made inside scrapes, those calls pile up into every scrape (interval × rate of them:
about 2,600, ≈ 10 s on a legacy 4.0.4, at a 60 s scrape interval), past Prometheus's timeout. So
after a scrape has answered, one worker per scraper uses the idle time before the next expected
scrape to refresh the values that would reach their refresh age by then (``PerTorrentCache.ahead``:
``aged`` ones only; new, changed and busy torrents belong to the scrape that lists them), oldest
first, stored with the torrent as last listed. The next scrape then finds them fresh and makes only
the calls for new and changed torrents and the busy ones; whatever the background did not get to,
the scrape's own pass still does, as before.

When, and how it stops, so that it can never cost a scrape more than one short call:

* only once the scrape's answer is sent (``go``: the server calls ``Collectors.answered`` when it
  closes the answer, ``web.Answer``), so as not to compete with the rendering and the sending for
  the interpreter;
* only after two scrapes were seen (the expected next one is the last start plus the interval
  between the last two starts), only after a scrape that reached qBittorrent, and only until a share
  (``WINDOW_SHARE``) of that interval after the last start: when scrapes stop coming, so does the
  background work;
* each call has its own deadline (``CALL_SECONDS``; a properties call takes 1–5 ms), so that a
  hung or dripping qBittorrent cannot hold it;
* the first failure that says qBittorrent or the session is in trouble (``STOPS``) ends the window
  until the next scrape;
* a scrape arriving (``pause``) stops the work before the next call and waits for the call in
  flight for at most its deadline and a little grace. The caches are touched by one thread at a
  time: the background reads and stores only while no scrape runs, and a call that outlives a
  scrape's wait has its value dropped (the client then has two callers for a moment, which it
  supports: its login lock and back-off are shared by every thread).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from qbt_exporter.deadline import Deadline
from qbt_exporter.pertorrent import PerTorrentPolicy
from qbt_exporter.qbittorrent.errors import (
    BackingOff,
    Banned,
    Forbidden,
    LoginRejected,
    QbtError,
    Unauthorized,
    Unreachable,
)
from qbt_exporter.qbittorrent.model import Torrent

log = logging.getLogger(__name__)

CALL_SECONDS = 0.5  # one background call's deadline, and so the longest a scrape waits for it
GRACE_SECONDS = 0.1  # on top of it, for the call's own bookkeeping after its deadline
WINDOW_SHARE = 0.8  # no background call starts later than this share of the interval after a start
# Failures after which the background stops until the next scrape: qBittorrent does not answer, or
# the session is refused (a login failure must not be repeated by a thread nobody watches).
STOPS: tuple[type[QbtError], ...] = (Unreachable, BackingOff, LoginRejected, Banned, Unauthorized, Forbidden)
REASON = "ahead"  # the refresh counters' reason for calls made between scrapes

Wait = Callable[[threading.Event, float], bool]


@dataclass(frozen=True, slots=True)
class Job:
    """One kind of per-torrent call to refresh ahead: its policy (cache and counter), the fetch the
    last scrape used and the torrents that scrape gave that pass."""

    policy: PerTorrentPolicy[Any]
    fetch: Callable[[str, Deadline], Any]
    torrents: list[Torrent]


@dataclass(frozen=True, slots=True)
class _Window:
    generation: int  # the scrape it follows: a newer one makes it void
    jobs: tuple[Job, ...]
    until: float  # values that come due by then are refreshed
    ends: float  # no call starts at or after this


def _wait(event: threading.Event, timeout: float) -> bool:
    return event.wait(timeout)


class Refresher:
    """The background refresh of one scraper's per-torrent caches (see the module's docstring).

    The scraper calls ``pause`` before a scrape touches its caches and ``resume`` after. ``work``
    runs one window's calls; the worker thread (started at the first window, daemon) runs it when
    woken, and tests with a fake clock call it directly (``spawn=False``). ``close`` stops it.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Wait = _wait,
        call_clock: Callable[[], float] = time.monotonic,
        call_seconds: float = CALL_SECONDS,
        share: float = WINDOW_SHARE,
        spawn: bool = True,
    ) -> None:
        self._clock = clock  # the scrapes' clock: the window
        self._wait = wait
        self._call_clock = call_clock  # a call's deadline: the network's time
        self._call_seconds = call_seconds
        self._share = share
        self._spawn = spawn
        self._lock = threading.Lock()
        self._idle = threading.Event()  # set while no background call is in flight
        self._idle.set()
        self._wake = threading.Event()
        self._generation = 0
        self._scraping = False  # a scrape runs: the caches are its own
        self._pausing = False  # a scrape waits for the call in flight, whose value may still be kept
        self._closed = False
        self._window: _Window | None = None
        self._last_start: float | None = None
        self._thread: threading.Thread | None = None
        # Whether the next scrape may count on this refresh: a window was opened after the last
        # scrape, and no failure ended it (``leave_until``).
        self._running = False

    # --- the scraper's side -------------------------------------------------------------
    def pause(self) -> None:
        """A scrape starts: no background call starts from now on, and the one in flight ends (or is
        given up: its value is dropped) within its deadline and the grace, before this returns."""
        with self._lock:
            self._generation += 1
            self._window = None
            self._pausing = True
        if not self._idle.is_set():
            self._wait(self._idle, self._call_seconds + GRACE_SECONDS)
        with self._lock:
            self._pausing = False
            self._scraping = True

    def leave_until(self, started: float) -> float | None:
        """For the scrape that started at ``started``: the time until which a value due for age
        alone may be left to this refresh (``PerTorrentPolicy.run``), or ``None`` when the scrape
        must not count on it (fewer than two scrapes seen, the last one found qBittorrent down, a
        failure ended its window, or closed).

        Twice the interval between the last two starts: the next scrape is expected one interval
        from now, and a value still within its max age then is refreshed by it if this refresh
        has not got to it, with a whole interval to spare for a late scrape."""
        with self._lock:
            if self._closed or not self._running or self._last_start is None:
                return None
            interval = started - self._last_start
            return started + 2 * interval if interval > 0 else None

    def resume(self, started: float, passes_at: float, jobs: Sequence[Job] | None) -> None:
        """The scrape that started at ``started`` is done; its per-torrent passes began at
        ``passes_at`` (after the list), with ``jobs`` (``None`` when qBittorrent was down).

        Opens the window up to the next expected scrape: values that come due by the time that
        scrape's passes begin (its start plus this one's list time) are refreshed now."""
        with self._lock:
            self._scraping = False
            interval = None if self._last_start is None else started - self._last_start
            self._last_start = started
            self._running = False
            if self._closed or not jobs or interval is None or interval <= 0:
                return
            ends = started + self._share * interval
            if self._clock() >= ends:
                return
            until = started + interval + max(0.0, passes_at - started)
            self._window = _Window(self._generation, tuple(jobs), until, ends)
            self._running = True

    def go(self) -> None:
        """The scrape's answer is ready: the open window's calls may begin (the worker is started at
        the first window it gets)."""
        with self._lock:
            window = self._window
            if window is None or not self._open(window) or not self._spawn:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="qbt-refresh-ahead", daemon=True)
                self._thread.start()
        self._wake.set()

    def close(self, timeout: float = CALL_SECONDS + GRACE_SECONDS + 1.0) -> bool:
        """Stop the worker (at shutdown, or when the scraper is dropped): no call starts after this,
        and the call in flight is waited for up to ``timeout`` (the thread is a daemon: a call that
        outlives it cannot hold the exit). Whether the worker has ended."""
        with self._lock:
            self._closed = True
            self._generation += 1
            self._window = None
            thread = self._thread
        self._wake.set()
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # --- the worker's side --------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            try:
                self.work()
            except Exception:  # a bug must not end the worker for good: the scrapes still refresh
                log.exception("refreshing per-torrent values between scrapes failed")

    def work(self) -> int:
        """Make the open window's calls, oldest first per kind, until it ends, a scrape comes, or a
        call fails with one of ``STOPS``; how many values were stored."""
        with self._lock:
            window = self._window
            if window is None or not self._open(window):
                return 0
            # Read under the lock and with no scrape running: the caches are the scrape's then.
            todo = [
                (job, torrent)
                for job in window.jobs
                for torrent in job.policy.ahead(job.torrents, window.until)
            ]
            # The whole lists are the last scrape's: from here on only the few torrents due are held.
            window = self._window = replace(window, jobs=())
        stored = 0
        for job, torrent in todo:
            with self._lock:
                if not self._open(window):
                    break
                self._idle.clear()
            value: Any = None
            answered = False
            failed: QbtError | None = None
            try:
                value = job.fetch(torrent.hash, Deadline(self._call_seconds, self._call_clock))
                answered = True
            except QbtError as err:
                failed = err
            finally:
                with self._lock:
                    # Not once a scrape runs: it waited for this call no longer than its deadline.
                    if answered and self._keeps(window):
                        job.policy.keep(torrent, value, REASON)
                        stored += 1
                    self._idle.set()
            if isinstance(failed, STOPS):
                with self._lock:
                    if self._window is window:
                        self._window = None  # until the next scrape
                        self._running = False  # which must not leave its refreshes to this one
                break
        return stored

    def _keeps(self, window: _Window) -> bool:
        """Whether a value fetched in ``window`` may be stored now (called under the lock): while it
        is current, or while the scrape right after it waits for that call."""
        if self._closed:
            return False
        return self._current(window) or (self._pausing and self._generation == window.generation + 1)

    def _open(self, window: _Window) -> bool:
        """Whether a call of ``window`` may start now: still current and before its end (called
        under the lock). A call started before the end may still be kept after it (``_keeps``)."""
        return self._current(window) and self._clock() < window.ends

    def _current(self, window: _Window) -> bool:
        """Whether ``window`` may still make calls (called under the lock)."""
        return not self._closed and not self._scraping and window.generation == self._generation
