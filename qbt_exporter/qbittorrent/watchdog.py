"""Cutting an HTTP exchange off at the scrape's deadline, however slowly the server drips.

A socket timeout bounds one read, not a reply: a server that sends one byte every second resets it
each time, so a 40-byte body took 39 s against a 9.5 s budget. Checking the clock between reads does
not help either while one read blocks until its buffer fills. What does: one thread that, when an
exchange's deadline passes, shuts its socket down. Every blocked ``recv`` of that exchange returns
at once (EOF or an error) and the caller, seeing ``Exchange.fired``, knows it was a timeout.

The socket is reached through a duplicate of its descriptor, taken when the connection is made or
reused (``watch``) and owned by the exchange: shutting a duplicate down ends the shared TCP
connection (TLS on top of it included, even mid-handshake), and closing it never closes a
descriptor that another thread may by then have been given for something else.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import os
import socket
import threading
import time
from collections.abc import Callable

_current = threading.local()


class Exchange:
    """One HTTP exchange's deadline on the monotonic clock, and the sockets to shut down at it."""

    __slots__ = ("_done", "_lock", "_socks", "due", "fired")

    def __init__(self, due: float) -> None:
        self.due = due
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []

    @property
    def done(self) -> bool:
        return self._done

    def adopt(self, sock: socket.socket) -> None:
        """Watch a duplicate of ``sock``: shut down at the deadline, closed when the exchange ends."""
        try:
            # family/type/proto given, so that socket() need not ask the kernel for them
            dup = socket.socket(sock.family, sock.type, sock.proto, os.dup(sock.fileno()))
        except OSError:
            return  # the socket is already closed: nothing left to cut
        with self._lock:
            if not self._done:
                self._socks.append(dup)
                if self.fired:  # a connection made after the deadline passed
                    _shutdown(dup)
                return
        dup.close()

    def fire(self) -> None:
        """The deadline passed: shut every watched socket down (the blocked reads return)."""
        with self._lock:
            if self._done:
                return
            self.fired = True
            for sock in self._socks:
                _shutdown(sock)

    def finish(self) -> None:
        """The exchange is over: no socket is shut down after this, the duplicates are closed."""
        with self._lock:
            self._done = True
            socks, self._socks = self._socks, []
        for sock in socks:
            sock.close()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """One daemon thread firing exchanges whose deadline has passed, earliest first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Exchange]] = []
        self._seq = itertools.count()
        self._live = 0
        self._thread: threading.Thread | None = None

    def guard(self, seconds: float) -> _Guard:
        """An exchange ending ``seconds`` from now (never if infinite), current for this thread
        inside the ``with``."""
        return _Guard(self, Exchange(self._clock() + seconds))

    def _arm(self, exchange: Exchange) -> None:
        with self._cond:
            self._live += 1
            heapq.heappush(self._heap, (exchange.due, next(self._seq), exchange))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="qbt-exporter-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is exchange:
                self._cond.notify()  # the thread sleeps until a later deadline: wake it up

    def _disarm(self) -> None:
        """Finished exchanges leave the heap lazily; rebuild it when they are most of it, so that far
        deadlines (a huge scrape timeout) cannot make it grow without end."""
        with self._cond:
            self._live -= 1
            if len(self._heap) > 64 and len(self._heap) > 2 * self._live:
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - self._clock()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)[2].fire()


class _Guard:
    """``with watchdog.guard(seconds) as exchange``: arm, make current, and finish at the end (a
    class rather than a generator: it runs on every request)."""

    __slots__ = ("_armed", "_exchange", "_previous", "_watchdog")

    def __init__(self, dog: Watchdog, exchange: Exchange) -> None:
        self._watchdog = dog
        self._exchange = exchange
        self._armed = math.isfinite(exchange.due)
        self._previous: Exchange | None = None

    def __enter__(self) -> Exchange:
        if self._armed:
            self._watchdog._arm(self._exchange)
        self._previous = getattr(_current, "exchange", None)
        _current.exchange = self._exchange
        return self._exchange

    def __exit__(self, *exc: object) -> None:
        _current.exchange = self._previous
        self._exchange.finish()
        if self._armed:
            self._watchdog._disarm()


def watch(sock: socket.socket | None) -> None:
    """Called by the connection classes when a socket is made or reused: the exchange running in
    this thread (if any) adopts it."""
    exchange: Exchange | None = getattr(_current, "exchange", None)
    if exchange is not None and sock is not None:
        exchange.adopt(sock)


WATCHDOG = Watchdog()
