"""The running simulator: one world, one WebUI, one fault switch behind one socket server.

Why: tests, benchmarks and ``--demo`` want one object to start, stop, inspect and poke. This module
only wires the pieces together and holds the lock that serialises every request and test hook, as
the real server is single-threaded; it is also where the real server's latency is spent, after
compression, so a big gzip'd list costs what the real answer costs and not Python's time on top.
That time counts from when the request reached the server (``Request.arrived``), or from when the
previous answer was ready if it came while the server was busy: the thread started for a
connection and the parsing of a request are Python's time too (about 1 ms a call, measured), and
counted from the lock alone they made a properties call cost 2.4 ms instead of a real 4.0.4's 1.4.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from qbt_exporter.simulator.auth import Auth
from qbt_exporter.simulator.config import SimulatorConfig
from qbt_exporter.simulator.extra_routes import ROUTES
from qbt_exporter.simulator.failures import FailureSwitch
from qbt_exporter.simulator.server import Drop, HttpServer, Request, Response
from qbt_exporter.simulator.v2 import V2WebUI
from qbt_exporter.simulator.webui import WebUI
from qbt_exporter.simulator.world import World

__all__ = ["Simulator"]


def _now() -> float:
    """The server's clock, looked up here at each call so that a test's fake ``time`` reaches it."""
    return time.monotonic()


class Simulator:
    """A running simulated qBittorrent 4.0.4 (or, with ``api="v2"``, 4.6.7). Use as a context manager
    or start()/stop().

    ``requests_by_path``, ``logins_ok``, ``logins_failed`` and ``bans`` count what clients did, so
    tests can assert "one login, N requests" without parsing logs. ``fail_next`` injects the
    transport failures seen on real legacy servers.

    ``clock`` (monotonic seconds) times the ban and the idle sessions, so that a test can run days
    of a client's login policy against it in a moment; the torrents keep their own scaled clock.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or SimulatorConfig()
        self.host = host
        self.port = port
        self._lock = threading.RLock()
        self._world = World(self.config)
        self._auth = Auth(self.config, clock)
        webui = V2WebUI if self.config.api == "v2" else WebUI
        self._webui = webui(self._world, self.config, self._auth, ROUTES)
        self._failures = FailureSwitch()
        self._server: HttpServer | None = None
        self._free_since = 0.0  # when the last request's answer was ready (the server free again)

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Simulator:
        """Bind and serve in a background thread; returns self so ``Simulator(cfg).start()`` works."""
        if self._server is None:
            keep_alive = self.config.api == "v2"  # as 4.1+ do; the 4.0.4 closes after every reply
            self._server = HttpServer(self.host, self.port, self._handle, keep_alive=keep_alive, clock=_now)
            self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop serving, release hung requests, close the listening socket."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- what clients did -----------------------------------------------------------------------
    @property
    def requests_by_path(self) -> Counter[str]:
        return self._webui.requests_by_path

    @property
    def logins_ok(self) -> int:
        return self._auth.logins_ok

    @property
    def logins_failed(self) -> int:
        return self._auth.logins_failed

    @property
    def bans(self) -> int:
        return self._auth.bans

    # --- hooks for tests ------------------------------------------------------------------------
    def fail_next(self, path_prefix: str, kind: str, status: int = 200) -> None:
        """Make the next request whose path starts with ``path_prefix`` fail:
        ``hang`` never answers (until the client goes away or the simulator stops), ``html`` answers
        an HTML error page (with ``status``), ``truncated`` answers the real reply cut in half with a
        matching content-length, ``close`` closes the connection without answering."""
        self._failures.arm(path_prefix, kind, status)

    def drop_sessions(self) -> None:
        """Forget every session, as a restarted qBittorrent does."""
        with self._lock:
            self._auth.drop_sessions()

    def clear_bans(self) -> None:
        """Forget failed-login counts and bans (a restart does this too)."""
        with self._lock:
            self._auth.clear_bans()

    def set_state(self, torrent_hash: str, state: str) -> None:
        """Force a torrent into ``state``, with the side effects the real state implies."""
        with self._lock:
            self._world.advance()
            self._world.force_state(torrent_hash, state)

    def remove_torrent(self, torrent_hash: str) -> None:
        with self._lock:
            self._world.advance()
            self._world.remove(torrent_hash)

    def add_torrents(self, n: int) -> list[str]:
        """Add ``n`` new torrents (downloading or fetching metadata); returns their hashes."""
        with self._lock:
            self._world.advance()
            return self._world.add(n)

    def torrent_hashes(self) -> list[str]:
        with self._lock:
            self._world.advance()
            return list(self._world.torrents)

    # --- request handling -----------------------------------------------------------------------
    def _handle(self, request: Request) -> Response | Drop:
        """Answer one parsed request (or fail as armed), serialised, with the simulated latency."""
        failure = self._failures.take(request.path)
        if failure is not None and failure.drop is not None:
            with self._lock:
                self._webui.count(request.path)
            return failure.drop
        with self._lock:
            # The real server's time for a request runs from when it has the request and is free
            # for it: the thread and parsing before this lock are its time too (they are a real
            # server's), the wait for another request's answer is not.
            started = max(request.arrived, self._free_since)
            self._webui.count(request.path)
            self._world.advance()
            response, latency = self._webui.respond(request)
            if failure is not None:
                response = failure.spoil(response)
            self._webui.compress(request, response)
            if self.config.latency:
                remaining = latency - (time.monotonic() - started)
                if remaining > 0:
                    time.sleep(remaining)
            self._free_since = time.monotonic()
            return response
