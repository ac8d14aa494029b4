"""The WebUI of qBittorrent 4.0.4 (API 17): checks, login and the routes the exporter calls.

Why apart: this is the behaviour the exporter is written against, in the order the real server
applies it (qbittorrent-api.md; ``tests/recordings/qbittorrent-4.0.4``):

1. Origin/Referer and Host-port checks (3.3.14+) answer 401 with an empty body, on every path;
2. a banned address gets 403 and the ban text on every path, even with a valid session;
3. ``/query``, ``/sync`` and ``/command`` answer 403 with an empty body without a session;
4. ``POST /login`` answers ``Ok.`` + ``SID`` cookie or ``Fails.`` (still 200), and ``Ok.`` without
   checking anything when the client already has a session; unknown paths 404, empty.

An unknown torrent hash answers 200 with an empty ``application/json`` body, and the same unknown hash
again within 1.5 s answers ``{}`` (propertiesGeneral) or ``[]`` (propertiesTrackers), from the
server's one-slot cache per endpoint: the exporter must tell a vanished torrent from both. Routes
the exporter never calls are not here; the simulator may plug some in (``Routes``), see
``extra_routes``.
"""

from __future__ import annotations

import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qbt_exporter.simulator.auth import Auth, Session
from qbt_exporter.simulator.config import SimulatorConfig
from qbt_exporter.simulator.documents import properties, qt_json, torrent_list, trackers, transfer_info
from qbt_exporter.simulator.server import (
    CT_JSON,
    CT_TEXT,
    REASONS,
    Request,
    Response,
    accepts_gzip,
    compress,
)
from qbt_exporter.simulator.torrent import Torrent
from qbt_exporter.simulator.world import World

__all__ = ["BAN_TEXT", "Call", "Routes", "WebUI", "reply"]

API_VERSION = "17"
API_VERSION_MIN = "15"
QBT_VERSION = "v4.0.4"
CACHE_DURATION = 1.5  # CACHE_DURATION_MS of btjson.cpp, in seconds
BAN_TEXT = b"Your IP address has been banned after too many failed authentication attempts."
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' "
    "data:; script-src 'self' 'unsafe-inline'; object-src 'none';",
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "x-xss-protection": "1; mode=block",
}
PROTECTED_SCOPES = ("query", "sync", "command")
DEFAULT_LATENCY = 0.001  # seconds, the real server's order for a small answer
PROPERTIES_LATENCY = 0.0014  # 4.0.4's propertiesGeneral: one torrent's status and peers (14 s per 10,000)


@dataclass(frozen=True)
class Call:
    """What a data route is given: the world at this tick, the config, the request and its session."""

    world: World
    config: SimulatorConfig
    request: Request
    session: Session
    now: float


@dataclass(frozen=True)
class Routes:
    """Data routes of the protected scopes, as JSON documents.

    ``documents``: ``"scope/action"`` → the document. ``per_hash``: ``/query/<action>/<hash>`` →
    (document of that torrent, what the cache slot keeps for an unknown hash, latency)."""

    documents: Mapping[str, Callable[[Call], Any]] = field(default_factory=dict)
    per_hash: Mapping[str, tuple[Callable[[Torrent, float], Any], Any, float]] = field(default_factory=dict)


_OWN = Routes(
    documents={"query/transferInfo": lambda call: transfer_info(call.world)},
    per_hash={
        "propertiesGeneral": (properties, {}, PROPERTIES_LATENCY),
        "propertiesTrackers": (trackers, [], 0.001),
    },
)


def reply(status: int, body: bytes = b"", content_type: str | None = None) -> Response:
    """A WebUI reply: every one carries the security headers (the parser's 400 does not)."""
    headers = dict(SECURITY_HEADERS)
    if content_type is not None:
        headers["content-type"] = content_type
    return Response(status, REASONS.get(status, "Error"), headers, body)


class WebUI:
    """Answers parsed requests from one world; the caller serialises calls (one lock, like the
    single-threaded real server) and brings the world up to date first.

    ``requests_by_path`` counts requests by path, ``/query/<action>`` without the hash."""

    def __init__(
        self, world: World, config: SimulatorConfig, auth: Auth, extra: Routes | None = None
    ) -> None:
        self.world = world
        self.config = config
        self.auth = auth
        self.requests_by_path: Counter[str] = Counter()
        extra = extra or Routes()
        self._documents = {**_OWN.documents, **extra.documents}
        self._per_hash = {**_OWN.per_hash, **extra.per_hash}
        self._prop_cache: dict[str, tuple[str, float, bytes]] = {}
        self._list_cache: tuple[int, bytes, bytes | None] | None = None  # world version, body, gzip'd

    def count(self, path: str) -> None:
        parts = path.split("/")
        key = "/".join(parts[:3]) if len(parts) > 3 and parts[1] in PROTECTED_SCOPES else path
        self.requests_by_path[key] += 1

    def respond(self, req: Request) -> tuple[Response, float]:
        """The reply and the real server's latency for it."""
        if self._cross_site(req) or not self._host_ok(req):
            return reply(401), DEFAULT_LATENCY
        session = self.auth.session(req.headers.get("cookie", ""))
        if self.auth.banned(req.client_ip):
            return reply(403, BAN_TEXT, CT_TEXT), DEFAULT_LATENCY
        segments = req.path.split("/")[1:]
        scope = segments[0] if segments else ""
        if scope in PROTECTED_SCOPES:
            if session is None:
                return reply(403), DEFAULT_LATENCY
            return self._protected(req, session, segments)
        if scope == "version" and len(segments) == 2:
            value = {"api": API_VERSION, "api_min": API_VERSION_MIN, "qbittorrent": QBT_VERSION}.get(
                segments[1]
            )
            if value is not None:
                return reply(200, value.encode(), CT_TEXT), DEFAULT_LATENCY
        elif req.path == "/login":
            return self._login(req, session), DEFAULT_LATENCY
        elif req.path == "/logout":
            return self._logout(session), DEFAULT_LATENCY
        return reply(404), DEFAULT_LATENCY

    def compress(self, req: Request, response: Response) -> None:
        """gzip when the client accepts it, reusing the packed torrent list while the world is
        unchanged (it is the one big reply, asked for on every scrape)."""
        if not accepts_gzip(req.headers.get("accept-encoding", "")):
            return
        cache = self._list_cache
        if cache is not None and response.body is cache[1]:
            packed = cache[2] if cache[2] is not None else compress(response.body)
            self._list_cache = (cache[0], cache[1], packed)
        else:
            packed = compress(response.body)
        if packed is not None:
            response.body = packed
            response.headers["content-encoding"] = "gzip"

    def _cross_site(self, req: Request) -> bool:
        origin = req.headers.get("origin", "")
        referer = req.headers.get("referer", "")
        if not origin and not referer:
            return False
        target = req.headers.get("x-forwarded-host", req.headers.get("host", ""))
        return _host_port(target) != _host_port(origin or referer)

    def _host_ok(self, req: Request) -> bool:
        _, port = _host_port(req.headers.get("host", ""))
        return port in (-1, req.local_port)

    def _login(self, req: Request, session: Session | None) -> Response:
        if session is not None:
            return reply(200, b"Ok.", CT_TEXT)  # 3.3.14+: credentials not even checked
        sid = self.auth.login(req.client_ip, req.posts.get("username", ""), req.posts.get("password", ""))
        if sid is None:
            return reply(200, b"Fails.", CT_TEXT)
        response = reply(200, b"Ok.", CT_TEXT)
        response.headers["set-cookie"] = f"SID={sid}; HttpOnly; path=/"
        return response

    def _logout(self, session: Session | None) -> Response:
        response = reply(200)
        if session is not None:
            self.auth.logout(session)
            expiry = time.strftime("%a, %d-%b-%Y %H:%M:%S GMT", time.gmtime(time.time() - 86400))
            response.headers["set-cookie"] = f"SID=; expires={expiry}; path=/"
        return response

    def _protected(self, req: Request, session: Session, segments: list[str]) -> tuple[Response, float]:
        scope, action = segments[0], segments[1] if len(segments) > 1 else ""
        args = segments[2:]
        now = self.world.tick_time()
        if not args:
            if scope == "query" and action == "torrents":
                return self._torrents(now), 0.0002 * len(self.world.torrents)
            document = self._documents.get(f"{scope}/{action}")
            if document is not None:
                body = qt_json(document(Call(self.world, self.config, req, session, now)))
                return reply(200, body, CT_JSON), DEFAULT_LATENCY
        elif scope == "query" and len(args) == 1 and action in self._per_hash:
            build, empty, latency = self._per_hash[action]
            body = self._cached_for_hash(action, args[0], lambda t: build(t, now), empty)
            return reply(200, body, CT_JSON), latency
        return reply(404), DEFAULT_LATENCY

    def _torrents(self, now: float) -> Response:
        """``/query/torrents``, built once per world version (query parameters are ignored: the
        exporter sends none)."""
        if self._list_cache is None or self._list_cache[0] != self.world.version:
            self._list_cache = (self.world.version, torrent_list(self.world, now), None)
        return reply(200, self._list_cache[1], CT_JSON)

    def _cached_for_hash(
        self, action: str, torrent_hash: str, build: Callable[[Torrent], Any], empty: Any
    ) -> bytes:
        """CACHED_VARIABLE_FOR_HASH: one slot per endpoint, 1.5 s from the first request; an
        unknown hash leaves an empty container in the slot, so a quick repeat answers ``{}``/``[]``."""
        now = time.monotonic()
        slot = self._prop_cache.get(action)
        if slot is not None and slot[0] == torrent_hash and now - slot[1] <= CACHE_DURATION:
            return slot[2]
        torrent = self.world.torrents.get(torrent_hash)
        if torrent is None:
            self._prop_cache[action] = (torrent_hash, now, qt_json(empty))
            return b""
        body = qt_json(build(torrent))
        self._prop_cache[action] = (torrent_hash, now, body)
        return body


def _host_port(value: str) -> tuple[str, int]:
    """QUrl host and port of a Host/Origin/Referer value (-1 when there is no port)."""
    if "://" not in value:
        value = "http://" + value
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port
    except ValueError:
        return ("", -2)
    return ((parts.hostname or "").lower(), -1 if port is None else port)
