"""A simulated legacy qBittorrent 4.0.4 (WebUI API 17): a real HTTP server on a real socket.

Why it exists: no legacy qBittorrent can be installed in CI any more, yet the exporter's first target
is that API. The integration tests, the 10,000-torrent benchmarks and ``qbt-exporter --demo`` all need
a server that behaves like 4.0.4 *on the wire*, including its awkward parts. Everything here was taken
from ``qbittorrent-api.md`` (read from qBittorrent's sources) and from the recordings of a real 4.0.4
in ``tests/recordings/qbittorrent-4.0.4``:

* every response is ``HTTP/1.1`` with lower-case headers in alphabetical order, always a
  ``content-length`` (also ``0``) and a ``date``, never a ``connection`` header, and the TCP
  connection is closed after the one response (a pipelined second request is dropped);
* ``POST /login`` answers ``Ok.`` + ``SID`` cookie or ``Fails.`` (still 200); five failures from one
  IP ban it for an hour on *every* path, and a success never resets the count;
* protected scopes (``/query``, ``/sync``, ``/command``) answer 403 with an empty body without a
  session; Origin/Referer and Host-port checks answer 401; unknown paths 404, all with empty bodies;
* unknown torrent hashes answer 200 with an empty ``application/json`` body, and the same unknown
  hash again within 1.5 s answers ``{}`` (the server's one-slot cache);
* the JSON is Qt's: compact, keys sorted, integers without a fraction, non-ASCII as raw UTF-8.

Torrents are generated from a seed and evolve over (scaled) wall time in ticks of one simulated
second, so that the same seed gives the same torrents, and the list, the properties and the transfer
totals read within one tick agree with each other. Request handling is serialised by one lock, as the
real server is single-threaded, and a per-request latency of the real server's order can be added.

Run by hand: ``python -m qbt_exporter.simulator --torrents 1000 --port 8080``.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import math
import random
import re
import select
import socket
import socketserver
import struct
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

__all__ = ["STATES", "Simulator", "SimulatorConfig", "main"]

API_VERSION = "17"
API_VERSION_MIN = "15"
QBT_VERSION = "v4.0.4"

MAX_ETA = 8640000
UNSET_DATE = 4294967295  # Qt's toTime_t() of an invalid QDateTime, as sent in /query/torrents
MAX_RATIO = 9999
MAX_FAILED_LOGINS = 5
CACHE_DURATION = 1.5  # CACHE_DURATION_MS of btjson.cpp, in seconds
IDLE_CONNECTION_TIMEOUT = 7.0  # the server drops connections that send nothing for 7 s
MAX_CONTENT_LENGTH = 10_000_000
TICK = 1.0  # simulated seconds per evolution step
MAX_STEPS_PER_ADVANCE = 60  # after a long idle period, catch up in at most this many coarse steps

BAN_TEXT = b"Your IP address has been banned after too many failed authentication attempts."
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' "
    "data:; script-src 'self' 'unsafe-inline'; object-src 'none';",
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "x-xss-protection": "1; mode=block",
}
CT_TEXT = "text/plain; charset=UTF-8"
CT_HTML = "text/html; charset=UTF-8"
CT_JSON = "application/json"

#: Every state string 4.0.4 can produce (qbittorrent-api.md §7.6).
STATES: tuple[str, ...] = (
    "error",
    "missingFiles",
    "uploading",
    "pausedUP",
    "queuedUP",
    "stalledUP",
    "checkingUP",
    "forcedUP",
    "allocating",
    "downloading",
    "metaDL",
    "pausedDL",
    "queuedDL",
    "stalledDL",
    "checkingDL",
    "forcedDL",
    "queuedForChecking",
    "checkingResumeData",
    "unknown",
)
# Initial mix: most torrents sit idle, as on a real long-running seedbox.
_STATE_WEIGHTS: dict[str, float] = {
    "stalledUP": 45,
    "pausedUP": 15,
    "uploading": 8,
    "stalledDL": 6,
    "downloading": 5,
    "pausedDL": 5,
    "queuedUP": 3,
    "queuedDL": 3,
    "checkingUP": 1,
    "checkingDL": 1,
    "error": 1,
    "missingFiles": 1,
    "forcedUP": 1,
    "forcedDL": 1,
    "metaDL": 1,
    "allocating": 0.5,
    "checkingResumeData": 0.5,
    "queuedForChecking": 0.5,
    "unknown": 0.3,
}
_COMPLETE_STATES = frozenset({"uploading", "pausedUP", "queuedUP", "stalledUP", "checkingUP", "forcedUP"})
_PAUSED_STATES = frozenset({"pausedUP", "pausedDL", "error", "missingFiles"})  # isPaused() in 4.0.4
_CHECKING_STATES = frozenset({"checkingUP", "checkingDL", "checkingResumeData", "queuedForChecking"})
_TRANSIENT_STATES = _CHECKING_STATES | {"allocating"}
_DL_ACTIVE = frozenset({"downloading", "forcedDL"})
_UP_ACTIVE = frozenset({"uploading", "forcedUP"})
_SEEDING_STATES = frozenset({"uploading", "stalledUP", "checkingUP", "queuedUP", "forcedUP"})
_DOWNLOADING_STATES = frozenset(
    {"downloading", "metaDL", "stalledDL", "checkingDL", "pausedDL", "queuedDL", "forcedDL"}
)
# What a random event turns a torrent into (weights), by current state.
_TRANSITIONS: dict[str, dict[str, float]] = {
    "stalledUP": {"uploading": 6, "pausedUP": 2, "queuedUP": 0.5, "checkingUP": 0.5, "forcedUP": 0.3},
    "uploading": {"stalledUP": 8, "pausedUP": 2},
    "pausedUP": {"stalledUP": 6, "checkingUP": 1, "missingFiles": 0.3},
    "queuedUP": {"stalledUP": 5, "uploading": 3},
    "forcedUP": {"uploading": 5, "stalledUP": 5},
    "downloading": {"stalledDL": 5, "pausedDL": 2, "queuedDL": 1},
    "stalledDL": {"downloading": 7, "pausedDL": 2, "error": 0.2},
    "pausedDL": {"downloading": 5, "queuedDL": 2, "checkingDL": 1},
    "queuedDL": {"downloading": 6, "stalledDL": 2},
    "forcedDL": {"downloading": 5, "stalledDL": 2},
    "metaDL": {"downloading": 6, "stalledDL": 2},
    "error": {"checkingDL": 3, "pausedDL": 1},
    "missingFiles": {"checkingUP": 3, "pausedUP": 1},
    "unknown": {"stalledDL": 1, "stalledUP": 1},
}

_CATEGORIES = ("", "", "", "linux", "movies", "tv", "music", "books")
_TAGS = ("", "", "", "", "a, b", "hd", "private, seed")
_WORDS_A = (
    "Ubuntu",
    "Debian",
    "Fedora",
    "Big Buck Bunny",
    "Sintel",
    "Tears of Steel",
    "Elephants Dream",
    "Cosmos Laundromat",
    "Arch Linux",
    "Wikipedia dump",
    "OpenStreetMap planet",
    "Internet Archive",
    "Blender demo",
    "LibreOffice",
    "Public Domain Audiobook",
)
_WORDS_B = ("2019", "2020", "2021", "2022", "2023", "24.04", "12.5", "Season 1", "Vol. 3", "Remastered")
_WORDS_C = ("1080p", "720p", "2160p HDR", "amd64", "arm64", "FLAC", "x265", "netinst", "DVD", "EPUB")
_EXTS = (".iso", ".mkv", ".tar.gz", "", "", ".zip", ".mp4", ".flac")
# Names that exercise label escaping in the exporter (quotes, backslashes, newlines, Unicode).
_ODD_NAMES = (
    'The "Quoted" Collection',
    "C:\\Users\\share\\backup\\disk.img",
    "First line\nSecond line.mkv",
    "Café Müller – Ünïcødé 日本語 🎬.mkv",
    "Tab\tand \\n literal and 'single' quotes",
    'Mixed \\"escapes\\" {braces} = 100%',
    "Ελληνικά και Кириллица",
    "emoji only 🍿🎞️",
)
_TRACKER_TEMPLATES = (
    "http://tracker.example.org:6969/{key}/announce",
    "https://tracker.example.net/announce.php?passkey={key}",
    "udp://open.tracker.example.com:1337/announce",
    "http://bt.example.com:2710/{key}/announce",
)

_REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/(\d)\.(\d)$")


def _f32(value: float) -> float:
    """Round through a C float: libtorrent's progress is a float, printed by Qt as a double."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


def _escape_magnet(value: str) -> str:
    """libtorrent's ``escape_string``: percent-encode with lower-case hex, as in the recordings."""
    quoted = urllib.parse.quote(value, safe="-_!.~*()")
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted)


_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class _Raw:
    """Already-encoded JSON spliced into a larger document without decoding it again (maindata
    holds thousands of torrents whose encodings are also kept for the next incremental diff)."""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body


def _json(value: Any) -> bytes:
    """Qt-like compact JSON: sorted keys (QVariantMap), raw UTF-8, integers without a fraction."""
    if isinstance(value, _Raw):
        return value.body
    if isinstance(value, dict) and any(isinstance(v, (_Raw, dict)) for v in value.values()):
        parts = [_ENCODER.encode(str(k)).encode("utf-8") + b":" + _json(value[k]) for k in sorted(value)]
        return b"{" + b",".join(parts) + b"}"
    return _ENCODER.encode(value).encode("utf-8")


def _num(value: float) -> float | int:
    """Qt prints integral doubles without a fraction; keep Python from writing ``1.0``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class _Torrent:
    """One torrent's state. Time counters are kept as base + running-since, so idle torrents cost
    nothing per tick: only transferring ones are touched by the evolution loop."""

    __slots__ = (
        "added_on",
        "auto_tmm",
        "category",
        "comment",
        "completed",
        "completion_on",
        "created_by",
        "creation_date",
        "dl_limit",
        "dlspeed",
        "downloaded",
        "downloaded_session",
        "force_start",
        "has_metadata",
        "hash",
        "last_transfer",
        "magnet_uri",
        "name",
        "num_complete",
        "num_incomplete",
        "num_leechs",
        "num_seeds",
        "piece_size",
        "ratio_limit",
        "reannounce_at",
        "running_since",
        "save_path",
        "seeding_base",
        "seeding_since",
        "seq_dl",
        "size",
        "state",
        "super_seeding",
        "tags",
        "time_active_base",
        "total_size",
        "tracker_ok",
        "trackers",
        "transient_until",
        "up_limit",
        "uploaded",
        "uploaded_session",
        "upspeed",
        "wasted",
    )

    def __init__(self) -> None:
        self.hash = ""
        self.name = ""
        self.category = ""
        self.tags = ""
        self.save_path = "/downloads/"
        self.comment = ""
        self.created_by = "mktorrent 1.1"
        self.creation_date = 0
        self.added_on = 0
        self.piece_size = 262144
        self.total_size = 0
        self.size = 0
        self.completed = 0
        self.downloaded = 0
        self.uploaded = 0
        self.downloaded_session = 0
        self.uploaded_session = 0
        self.wasted = 0
        self.state = "stalledUP"
        self.dlspeed = 0
        self.upspeed = 0
        self.num_seeds = 0
        self.num_leechs = 0
        self.num_complete = 0
        self.num_incomplete = 0
        self.time_active_base = 0.0
        self.running_since: float | None = None
        self.seeding_base = 0.0
        self.seeding_since: float | None = None
        self.completion_on: int | None = None
        self.last_transfer: float | None = None
        self.trackers: list[str] = []
        self.tracker_ok = True
        self.dl_limit = -1
        self.up_limit = -1
        self.ratio_limit = -1
        self.force_start = False
        self.seq_dl = False
        self.super_seeding = False
        self.auto_tmm = False
        self.has_metadata = True
        self.magnet_uri = ""
        self.reannounce_at = 0.0
        self.transient_until = 0.0

    # --- derived values -------------------------------------------------------------------------
    @property
    def is_complete(self) -> bool:
        return self.has_metadata and self.completed >= self.size

    def time_active(self, now: float) -> int:
        extra = now - self.running_since if self.running_since is not None else 0.0
        return int(self.time_active_base + max(0.0, extra))

    def seeding_time(self, now: float) -> int:
        extra = now - self.seeding_since if self.seeding_since is not None else 0.0
        return int(self.seeding_base + max(0.0, extra))

    def ratio(self) -> float | int:
        """``TorrentHandle::realRatio`` of 4.0.4, capped at 9999 (never -1)."""
        download = self.downloaded
        if download < self.completed * 0.01:
            download = self.completed  # "a seeder who lost its stats"
        if download == 0:
            return 0 if self.uploaded == 0 else MAX_RATIO
        return _num(min(self.uploaded / download, float(MAX_RATIO)))

    def progress(self) -> float | int:
        if not self.has_metadata or self.size <= 0:
            return 0
        if self.completed >= self.size:
            return 1
        # libtorrent: progress_ppm / 1e6 as a float, so an incomplete torrent never shows 1
        return _num(_f32((self.completed * 1_000_000 // self.size) / 1_000_000))

    def eta(self) -> int:
        if self.state in _DL_ACTIVE and self.dlspeed > 0:
            return min(MAX_ETA, (self.size - self.completed) // self.dlspeed)
        return MAX_ETA

    def last_activity(self, now: float) -> int:
        """0 when paused or checking; otherwise now minus the time since the last transfer, and
        ``now + 1`` for a torrent that never transferred (libtorrent reports -1 then)."""
        if self.state in _PAUSED_STATES or self.state in _CHECKING_STATES:
            return 0
        if self.last_transfer is None:
            return int(now) + 1
        return int(self.last_transfer)

    def working_tracker(self) -> str:
        if not self.trackers or not self.tracker_ok or self.running_since is None:
            return ""
        if self.state in _CHECKING_STATES or self.state in {"queuedUP", "queuedDL", "allocating"}:
            return ""
        return self.trackers[0]

    def pieces_num(self) -> int:
        if not self.has_metadata:
            return -1
        return max(1, -(-self.total_size // self.piece_size))

    # --- wire objects ---------------------------------------------------------------------------
    def list_item(self, now: float, priority: int, with_hash: bool = True) -> dict[str, Any]:
        """The ``/query/torrents`` object of 4.0.4 (maindata uses it without ``hash``)."""
        item: dict[str, Any] = {
            "added_on": self.added_on,
            "amount_left": max(0, self.size - self.completed),
            "auto_tmm": self.auto_tmm,
            "category": self.category,
            "completed": self.completed,
            "completion_on": UNSET_DATE if self.completion_on is None else self.completion_on,
            "dl_limit": self.dl_limit,
            "dlspeed": self.dlspeed,
            "downloaded": self.downloaded,
            "downloaded_session": self.downloaded_session,
            "eta": self.eta(),
            "force_start": self.force_start,
            "last_activity": self.last_activity(now),
            "magnet_uri": self.magnet_uri,
            "name": self.name,
            "num_complete": self.num_complete,
            "num_incomplete": self.num_incomplete,
            "num_leechs": self.num_leechs,
            "num_seeds": self.num_seeds,
            "priority": priority,
            "progress": self.progress(),
            "ratio": self.ratio(),
            "ratio_limit": self.ratio_limit,
            "save_path": self.save_path,
            "seen_complete": UNSET_DATE,
            "seq_dl": self.seq_dl,
            "size": self.size,
            "state": self.state,
            "super_seeding": self.super_seeding,
            "tags": self.tags,
            "time_active": self.time_active(now),
            "total_size": self.total_size,
            "tracker": self.working_tracker(),
            "up_limit": self.up_limit,
            "uploaded": self.uploaded,
            "uploaded_session": self.uploaded_session,
            "upspeed": self.upspeed,
        }
        if self.has_metadata:
            item["f_l_piece_prio"] = False  # absent without metadata, as in btjson.cpp
        if with_hash:
            item["hash"] = self.hash
        return item

    def properties(self, now: float) -> dict[str, Any]:
        """``/query/propertiesGeneral`` of 4.0.4, from the same state as the list item."""
        elapsed = self.time_active(now)
        pieces = self.pieces_num()
        return {
            "addition_date": self.added_on,
            "comment": self.comment,
            "completion_date": -1 if self.completion_on is None else self.completion_on,
            "created_by": self.created_by if self.has_metadata else "",
            "creation_date": self.creation_date if self.has_metadata else -1,
            "dl_limit": self.dl_limit if self.dl_limit > 0 else -1,
            "dl_speed": self.dlspeed,
            "dl_speed_avg": self.downloaded // elapsed if elapsed > 0 else 0,
            "eta": self.eta(),
            "last_seen": -1,
            "nb_connections": self.num_seeds + self.num_leechs,
            "nb_connections_limit": 100,
            "peers": self.num_leechs,
            "peers_total": self.num_incomplete,
            "piece_size": self.piece_size if self.has_metadata else -1,
            "pieces_have": (pieces if self.is_complete else self.completed // self.piece_size)
            if self.has_metadata
            else 0,
            "pieces_num": pieces,
            "reannounce": int((self.reannounce_at - now) % 1800) if self.working_tracker() else 0,
            "save_path": self.save_path,
            "seeding_time": self.seeding_time(now),
            "seeds": self.num_seeds,
            "seeds_total": self.num_complete,
            "share_ratio": self.ratio(),
            "time_elapsed": elapsed,
            "total_downloaded": self.downloaded,
            "total_downloaded_session": self.downloaded_session,
            "total_size": self.total_size,
            "total_uploaded": self.uploaded,
            "total_uploaded_session": self.uploaded_session,
            "total_wasted": self.wasted,
            "up_limit": self.up_limit if self.up_limit > 0 else -1,
            "up_speed": self.upspeed,
            "up_speed_avg": self.uploaded // elapsed if elapsed > 0 else 0,
        }

    def tracker_items(self) -> list[dict[str, Any]]:
        """``/query/propertiesTrackers``: English status strings, no DHT/PeX/LSD pseudo-entries."""
        items: list[dict[str, Any]] = []
        running = self.running_since is not None and self.state not in _CHECKING_STATES
        for index, url in enumerate(self.trackers):
            if not running:
                status, msg, peers = "Not contacted yet", "", 0
            elif not self.tracker_ok:
                host = urllib.parse.urlsplit(url).hostname or ""
                status, msg, peers = "Not working", f"{host}: Connection refused", 0
            elif index == 0:
                status, msg, peers = "Working", "", self.num_complete + self.num_incomplete
            else:
                status, msg, peers = "Not contacted yet", "", 0
            items.append({"msg": msg, "num_peers": peers, "status": status, "url": url})
        return items


@dataclass
class SimulatorConfig:
    """How the simulated server looks and behaves; the defaults are the real 4.0.4's."""

    torrents: int = 50
    username: str = "admin"
    password: str = "adminadmin"
    seed: int = 0
    #: per-request latencies of the real server's order: /query/torrents ≈ 0.2 ms per torrent,
    #: propertiesGeneral ≈ 1.4 ms, others ≈ 1 ms. False = as fast as possible (unit tests).
    latency: bool = True
    #: torrents added and removed over time (a few per minute at time_scale 1).
    churn: bool = True
    #: speed of the simulated clock; 0 freezes the torrents (exact comparisons in tests).
    time_scale: float = 1.0
    #: idle session lifetime (INACTIVE_TIME of 3.3.12–4.0.4); tests shorten it.
    session_timeout: float = 900.0
    #: how long an IP stays banned after its fifth failed login (BAN_TIME).
    ban_duration: float = 3600.0


@dataclass
class _Session:
    sid: str
    last_seen: float
    rid: int = 0
    sync_torrents: dict[str, bytes] | None = None
    sync_state: dict[str, Any] | None = None
    sync_categories: list[str] | None = None


@dataclass
class _Request:
    method: str
    target: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    posts: dict[str, str]
    client_ip: str
    local_port: int


@dataclass
class _Response:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes = b""


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


def _response(status: int, body: bytes = b"", content_type: str | None = None) -> _Response:
    headers = dict(SECURITY_HEADERS)
    if content_type is not None:
        headers["content-type"] = content_type
    return _Response(status, _REASONS.get(status, "Error"), headers, body)


def _serialise(response: _Response, head: bool) -> bytes:
    """Status line + sorted lower-case headers (Qt keeps them in a QMap) + body."""
    body = b"" if head else response.body  # HEAD /version/api was recorded with content-length 0
    headers = dict(response.headers)
    headers["content-length"] = str(len(body))
    headers["date"] = formatdate(usegmt=True)
    lines = [f"HTTP/1.1 {response.status} {response.reason}"]
    lines.extend(f"{name}: {headers[name]}" for name in sorted(headers))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def _compress(body: bytes) -> bytes | None:
    """4.0.4's rule: gzip level 6, only bodies over 1024 bytes, only if it saves space."""
    if len(body) <= 1024:
        return None
    packed = gzip.compress(body, compresslevel=6, mtime=0)
    return packed if len(packed) < len(body) else None


def _accepts_gzip(value: str) -> bool:
    for part in value.split(","):
        token, _, params = part.strip().partition(";")
        if token.strip().lower() not in ("gzip", "*"):
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, val = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


def _parse_pairs(text: str) -> dict[str, str]:
    """QUrlQuery-like parsing: split on & and =, percent-decode, no ``+`` → space translation."""
    result: dict[str, str] = {}
    for pair in text.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        result[urllib.parse.unquote(key)] = urllib.parse.unquote(value)
    return result


def _parse_multipart(body: bytes, content_type: str) -> dict[str, str]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        return {}
    result: dict[str, str] = {}
    for part in body.split(b"--" + match.group(1).encode("latin-1")):
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        name = re.search(rb'name="([^"]*)"', head)
        if name:
            result[name.group(1).decode("utf-8", "replace")] = content.removesuffix(b"\r\n").decode(
                "utf-8", "replace"
            )
    return result


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


class Simulator:
    """A running simulated qBittorrent 4.0.4. Use as a context manager or start()/stop().

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
        self.requests_by_path: Counter[str] = Counter()
        self.logins_ok = 0
        self.logins_failed = 0
        self.bans = 0
        self._clock = clock
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._rng = random.Random(self.config.seed)
        self._sid_rng = random.Random(f"sid-{self.config.seed}")
        self._sessions: dict[str, _Session] = {}
        self._failed: dict[str, int] = {}
        self._banned_until: dict[str, float] = {}
        self._failures: list[tuple[str, str, int]] = []
        self._prop_cache: dict[str, tuple[str, float, bytes]] = {}
        self._list_cache: tuple[int, bytes, bytes | None] | None = None
        self._priorities: dict[str, int] | None = None
        self._torrent_list: list[_Torrent] | None = None
        # clocks: simulated epoch seconds advance at time_scale × wall time
        self._mono0 = time.monotonic()
        self._epoch0 = float(int(time.time()))
        self._tick = 0
        self._torrents: dict[str, _Torrent] = {}
        self._active: set[str] = set()
        self._transient: set[str] = set()
        self._categories: set[str] = {c for c in _CATEGORIES if c}
        self._counter = 0
        self._session_dl = 0
        self._session_ul = 0
        self._session_wasted = 0
        self._alltime_dl = self._rng.randrange(10**12, 10**14)
        self._alltime_ul = self._rng.randrange(10**12, 10**14)
        self._dht_nodes = self._rng.randrange(150, 450)
        for _ in range(self.config.torrents):
            self._create(self._now(), initial=True)

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Simulator:
        """Bind and serve in a background thread; returns self so ``Simulator(cfg).start()`` works."""
        if self._server is not None:
            return self
        self._stop.clear()
        server = _Server((self.host, self.port), _Handler)
        server.simulator = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="qbt-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release hung requests, close the listening socket."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- hooks for tests ------------------------------------------------------------------------
    def fail_next(self, path_prefix: str, kind: str, status: int = 200) -> None:
        """Make the next request whose path starts with ``path_prefix`` fail:
        ``hang`` never answers (until the client goes away or the simulator stops), ``html`` answers
        an HTML error page (with ``status``), ``truncated`` answers the real reply cut in half with a
        matching content-length, ``close`` closes the connection without answering."""
        if kind not in ("hang", "html", "truncated", "close"):
            raise ValueError(f"unknown failure kind {kind!r}")
        with self._lock:
            self._failures.append((path_prefix, kind, status))

    def drop_sessions(self) -> None:
        """Forget every session, as a restarted qBittorrent does."""
        with self._lock:
            self._sessions.clear()

    def clear_bans(self) -> None:
        """Forget failed-login counts and bans (a restart does this too)."""
        with self._lock:
            self._failed.clear()
            self._banned_until.clear()

    def set_state(self, torrent_hash: str, state: str) -> None:
        """Force a torrent into ``state``, with the side effects the real state implies."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        with self._lock:
            self._advance()
            self._set_state(self._torrents[torrent_hash], state, self._tick_time())

    def remove_torrent(self, torrent_hash: str) -> None:
        with self._lock:
            self._advance()
            self._remove(torrent_hash)

    def add_torrents(self, n: int) -> list[str]:
        """Add ``n`` new torrents (downloading or fetching metadata); returns their hashes."""
        with self._lock:
            self._advance()
            return [self._create(self._tick_time(), initial=False).hash for _ in range(n)]

    def torrent_hashes(self) -> list[str]:
        with self._lock:
            self._advance()
            return list(self._torrents)

    # --- clock and evolution --------------------------------------------------------------------
    def _now(self) -> float:
        return self._epoch0 + (time.monotonic() - self._mono0) * self.config.time_scale

    def _tick_time(self) -> float:
        return self._epoch0 + self._tick * TICK

    def _advance(self) -> None:
        """Bring the torrents up to the current simulated tick (called under the lock)."""
        target = int((self._now() - self._epoch0) // TICK)
        pending = target - self._tick
        if pending <= 0:
            return
        steps = min(pending, MAX_STEPS_PER_ADVANCE)
        start = self._tick
        for step in range(1, steps + 1):
            tick = start + (pending * step) // steps
            dt = (tick - self._tick) * TICK
            self._tick = tick
            self._step(dt, self._tick_time())
        self._list_cache = None

    def _step(self, dt: float, now: float) -> None:
        rng = self._rng
        for h in list(self._active):
            t = self._torrents[h]
            if t.state in _DL_ACTIVE:
                t.dlspeed = max(
                    1024, int(t.dlspeed * rng.uniform(0.8, 1.25)) or rng.randrange(50_000, 5_000_000)
                )
                t.upspeed = max(0, int(t.dlspeed * rng.uniform(0.0, 0.3)))
                got = min(int(t.dlspeed * dt), t.size - t.completed)
                t.completed += got
                t.downloaded += got
                t.downloaded_session += got
                self._session_dl += got
                self._alltime_dl += got
                if rng.random() < 0.02:
                    lost = rng.randrange(16384, 262144)
                    t.wasted += lost
                    self._session_wasted += lost
            else:
                t.dlspeed = 0
                t.upspeed = max(
                    1024, int(t.upspeed * rng.uniform(0.8, 1.25)) or rng.randrange(10_000, 2_000_000)
                )
            sent = int(t.upspeed * dt)
            t.uploaded += sent
            t.uploaded_session += sent
            self._session_ul += sent
            self._alltime_ul += sent
            t.last_transfer = now
            if now >= t.reannounce_at:
                t.reannounce_at = now + 1800
            if t.state in _DL_ACTIVE and t.completed >= t.size:
                self._set_state(t, "uploading" if rng.random() < 0.3 else "stalledUP", now)
        for h in list(self._transient):
            t = self._torrents[h]
            if now >= t.transient_until:
                self._set_state(t, "stalledUP" if t.is_complete else "stalledDL", now)
        # random state changes: about one per torrent per 30 simulated minutes
        if self._torrents:
            for _ in range(self._poisson(len(self._torrents) * dt / 1800.0)):
                t = rng.choice(self._ordered())
                choices = _TRANSITIONS.get(t.state)
                if choices:
                    nxt = rng.choices(list(choices), weights=list(choices.values()))[0]
                    self._set_state(t, nxt, now)
        if self.config.churn:
            for _ in range(self._poisson(dt * 2 / 60.0)):
                self._create(now, initial=False)
            for _ in range(self._poisson(dt * 2 / 60.0)):
                if self._torrents:
                    self._remove(rng.choice(self._ordered()).hash)

    def _poisson(self, expected: float) -> int:
        count = int(expected)
        if self._rng.random() < expected - count:
            count += 1
        return count

    def _ordered(self) -> list[_Torrent]:
        if self._torrent_list is None:
            self._torrent_list = list(self._torrents.values())
        return self._torrent_list

    def _priority_map(self) -> dict[str, int]:
        """Queue positions: 1-based among incomplete torrents in order of addition, 0 for seeds."""
        if self._priorities is None:
            positions: dict[str, int] = {}
            for t in self._torrents.values():
                if not t.is_complete:
                    positions[t.hash] = len(positions) + 1
            self._priorities = positions
        return self._priorities

    def _set_state(self, t: _Torrent, state: str, now: float) -> None:
        """Apply a state and keep every dependent field coherent (speeds, clocks, completion)."""
        was_complete = t.is_complete
        if state in _COMPLETE_STATES and not was_complete:
            if not t.has_metadata:
                self._give_metadata(t)
            t.completed = t.size
            t.completion_on = int(now)
        if state == "metaDL" and t.completed == 0:
            t.has_metadata = False
            t.size = 0
            t.total_size = -1
        elif state != "metaDL" and not t.has_metadata:
            self._give_metadata(t)
        # fold the running clocks, then restart them if the new state runs
        if t.running_since is not None:
            t.time_active_base += max(0.0, now - t.running_since)
            t.running_since = None
        if t.seeding_since is not None:
            t.seeding_base += max(0.0, now - t.seeding_since)
            t.seeding_since = None
        t.state = state
        t.force_start = state in ("forcedUP", "forcedDL")
        if state not in _PAUSED_STATES:
            t.running_since = now
            if t.is_complete:
                t.seeding_since = now
        if state in _DL_ACTIVE or state in _UP_ACTIVE:
            self._active.add(t.hash)
            if state in _DL_ACTIVE:
                t.dlspeed = self._rng.randrange(50_000, 5_000_000)
            t.upspeed = self._rng.randrange(10_000, 2_000_000) if state in _UP_ACTIVE else 0
            t.num_seeds = self._rng.randrange(1, 30) if state in _DL_ACTIVE else self._rng.randrange(0, 3)
            t.num_leechs = self._rng.randrange(1, 20)
        else:
            self._active.discard(t.hash)
            t.dlspeed = t.upspeed = 0
            running = state not in _PAUSED_STATES and state not in _CHECKING_STATES
            t.num_seeds = self._rng.randrange(0, 3) if running and state == "stalledDL" else 0
            t.num_leechs = 0
        if state in _TRANSIENT_STATES:
            self._transient.add(t.hash)
            t.transient_until = now + self._rng.uniform(3, 30)
        else:
            self._transient.discard(t.hash)
        if t.is_complete != was_complete:
            self._priorities = None
        self._list_cache = None

    def _give_metadata(self, t: _Torrent) -> None:
        t.has_metadata = True
        t.total_size = int(math.exp(self._rng.uniform(math.log(1e6), math.log(5e10))))
        t.size = t.total_size
        self._priorities = None

    def _create(self, now: float, initial: bool) -> _Torrent:
        rng = self._rng
        self._counter += 1
        t = _Torrent()
        t.hash = f"{rng.getrandbits(160):040x}"
        while t.hash in self._torrents:
            t.hash = f"{rng.getrandbits(160):040x}"
        if self._counter % 9 == 4:
            t.name = _ODD_NAMES[(self._counter // 9) % len(_ODD_NAMES)]
        else:
            t.name = " ".join((rng.choice(_WORDS_A), rng.choice(_WORDS_B), rng.choice(_WORDS_C)))
            t.name = t.name.replace(" ", rng.choice((" ", ".", "_"))) + rng.choice(_EXTS)
        t.category = rng.choice(_CATEGORIES)
        t.tags = rng.choice(_TAGS)
        t.save_path = f"/downloads/{t.category or 'data'}/"
        t.comment = rng.choice(("", "", "Downloaded from example.org", 'said "thanks"'))
        t.created_by = rng.choice(("mktorrent 1.1", "qBittorrent v4.0.4", "Transmission/2.94", ""))
        t.piece_size = rng.choice((32768, 262144, 1048576, 4194304))
        if rng.random() < 0.002:
            t.total_size = rng.randrange(10_000, 100_000)  # small, popular: ratio hits the 9999 cap
        else:
            t.total_size = int(math.exp(rng.uniform(math.log(1e6), math.log(5e10))))
        t.size = t.total_size if rng.random() < 0.9 else int(t.total_size * rng.uniform(0.3, 0.9))
        key = f"{rng.getrandbits(128):032x}"
        roll = rng.random()
        if roll < 0.05:
            t.trackers = []
        else:
            first = rng.choice(_TRACKER_TEMPLATES).format(key=key)
            t.trackers = [first]
            if roll > 0.8:
                t.trackers.append(rng.choice(_TRACKER_TEMPLATES).format(key=key))
        t.tracker_ok = rng.random() > 0.05
        t.magnet_uri = f"magnet:?xt=urn:btih:{t.hash}&dn={_escape_magnet(t.name)}" + "".join(
            f"&tr={_escape_magnet(url)}" for url in t.trackers
        )
        t.dl_limit = rng.choice((-1, -1, -1, 0, 1048576))
        t.up_limit = rng.choice((-1, -1, -1, 0, 102400))
        t.ratio_limit = rng.choice((-1, -1, -1, -1, 2))
        t.seq_dl = rng.random() < 0.05
        t.auto_tmm = rng.random() < 0.2
        t.num_complete = rng.randrange(0, 200)
        t.num_incomplete = rng.randrange(0, 50)
        t.reannounce_at = now + rng.uniform(0, 1800)
        if initial:
            state = rng.choices(list(_STATE_WEIGHTS), weights=list(_STATE_WEIGHTS.values()))[0]
            age = rng.uniform(600, 2 * 365 * 86400)
            t.added_on = int(now - age)
            t.creation_date = int(t.added_on - rng.uniform(0, 86400 * 30))
            t.time_active_base = age * rng.uniform(0.05, 0.95)
            if state in _COMPLETE_STATES:
                t.completed = t.size
                t.completion_on = int(t.added_on + rng.uniform(60, age / 2))
                t.downloaded = 0 if rng.random() < 0.3 else int(t.size * rng.uniform(1.0, 1.05))
                t.seeding_base = max(0.0, t.time_active_base - (t.completion_on - t.added_on) / 4)
                t.uploaded = int(t.size * rng.lognormvariate(0.0, 1.2))
                if t.total_size < 100_000:
                    t.uploaded = t.total_size * rng.randrange(20_000, 50_000)
                t.last_transfer = now - rng.uniform(0, age) if rng.random() < 0.9 else None
            else:
                t.completed = int(t.size * rng.uniform(0.0, 0.98)) if state != "metaDL" else 0
                t.downloaded = int(t.completed * rng.uniform(1.0, 1.02))
                t.uploaded = int(t.downloaded * rng.uniform(0.0, 0.5))
                t.last_transfer = now - rng.uniform(0, age) if t.downloaded else None
            t.wasted = int(t.downloaded * rng.uniform(0, 0.002))
        else:
            state = rng.choice(("downloading", "metaDL", "queuedDL", "checkingResumeData", "stalledDL"))
            t.added_on = int(now)
            t.creation_date = int(now - rng.uniform(0, 86400 * 30))
        self._torrents[t.hash] = t
        self._torrent_list = None
        self._priorities = None
        self._set_state(t, state, now)
        return t

    def _remove(self, torrent_hash: str) -> None:
        self._torrents.pop(torrent_hash)
        self._active.discard(torrent_hash)
        self._transient.discard(torrent_hash)
        self._torrent_list = None
        self._priorities = None
        self._list_cache = None

    # --- request handling -----------------------------------------------------------------------
    def _take_failure(self, path: str) -> tuple[str, int] | None:
        with self._lock:
            for index, (prefix, kind, status) in enumerate(self._failures):
                if path.startswith(prefix):
                    del self._failures[index]
                    return kind, status
        return None

    def _count(self, path: str) -> None:
        parts = path.split("/")
        key = "/".join(parts[:3]) if len(parts) > 3 and parts[1] in ("query", "sync", "command") else path
        self.requests_by_path[key] += 1

    def _handle(self, request: _Request, failure: tuple[str, int] | None = None) -> _Response:
        """Answer one parsed request; serialised, with the simulated latency (under the lock).

        Compression happens here, inside the latency budget, so a big gzip'd list costs what the
        real server's answer costs and not Python's time on top of it."""
        with self._lock:
            started = time.monotonic()
            self._count(request.path)
            self._advance()
            response, latency = self._process(request)
            if failure is not None and failure[0] == "html":
                page = (
                    f"<html><head><title>{failure[1]} Error</title></head><body><h1>Error {failure[1]}"
                    "</h1><p>Something went wrong.</p></body></html>"
                ).encode()
                reason = _REASONS.get(failure[1], "Error")
                response = _Response(failure[1], reason, {"content-type": CT_HTML}, page)
            elif failure is not None and failure[0] == "truncated":
                response.body = response.body[: max(1, len(response.body) // 2)]
            if _accepts_gzip(request.headers.get("accept-encoding", "")):
                cache = self._list_cache
                if cache is not None and response.body is cache[1]:
                    packed = cache[2] if cache[2] is not None else _compress(response.body)
                    self._list_cache = (cache[0], cache[1], packed)
                else:
                    packed = _compress(response.body)
                if packed is not None:
                    response.body = packed
                    response.headers["content-encoding"] = "gzip"
            if self.config.latency:
                remaining = latency - (time.monotonic() - started)
                if remaining > 0:
                    time.sleep(remaining)
            return response

    def _process(self, req: _Request) -> tuple[_Response, float]:
        # 1. CSRF and Host-header checks (3.3.14+): 401 with an empty body
        if self._cross_site(req) or not self._host_ok(req):
            return _response(401), 0.001
        # 2. session lookup; 3. ban check, on every path
        session = self._session_for(req)
        banned_until = self._banned_until.get(req.client_ip)
        if banned_until is not None and self._clock() >= banned_until:
            del self._banned_until[req.client_ip]
            self._failed.pop(req.client_ip, None)
            banned_until = None
        if banned_until is not None:
            return _response(403, BAN_TEXT, CT_TEXT), 0.001
        # 4. routing
        segments = req.path.split("/")[1:]
        scope = segments[0] if segments else ""
        if scope in ("query", "sync", "command"):
            if session is None:
                return _response(403), 0.001
            return self._protected(req, session, segments)
        if scope == "version" and len(segments) == 2:
            value = {"api": API_VERSION, "api_min": API_VERSION_MIN, "qbittorrent": QBT_VERSION}.get(
                segments[1]
            )
            if value is not None:
                return _response(200, value.encode(), CT_TEXT), 0.001
            return _response(404), 0.001
        if req.path == "/login":
            return self._login(req, session), 0.001
        if req.path == "/logout":
            response = _response(200)
            if session is not None:
                del self._sessions[session.sid]
                expiry = time.strftime("%a, %d-%b-%Y %H:%M:%S GMT", time.gmtime(time.time() - 86400))
                response.headers["set-cookie"] = f"SID=; expires={expiry}; path=/"
            return response, 0.001
        if req.path in ("/", "/index.html"):
            page = _LOGIN_PAGE if session is None else _INDEX_PAGE
            return _response(200, page, CT_HTML), 0.001
        return _response(404), 0.001

    def _cross_site(self, req: _Request) -> bool:
        origin = req.headers.get("origin", "")
        referer = req.headers.get("referer", "")
        if not origin and not referer:
            return False
        target = req.headers.get("x-forwarded-host", req.headers.get("host", ""))
        return _host_port(target) != _host_port(origin or referer)

    def _host_ok(self, req: _Request) -> bool:
        _, port = _host_port(req.headers.get("host", ""))
        return port in (-1, req.local_port)

    def _session_for(self, req: _Request) -> _Session | None:
        sid = None
        for part in req.headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "SID":
                sid = value
        if sid is None or sid not in self._sessions:
            return None
        session = self._sessions[sid]
        now = self._clock()
        if now - session.last_seen > self.config.session_timeout:
            del self._sessions[sid]
            return None
        session.last_seen = now
        return session

    def _login(self, req: _Request, session: _Session | None) -> _Response:
        if session is not None:
            return _response(200, b"Ok.", CT_TEXT)  # 3.3.14+: credentials not even checked
        user_ok = req.posts.get("username", "") == self.config.username
        password_ok = req.posts.get("password", "") == self.config.password
        if user_ok and password_ok and self.config.username:
            sid = base64.b64encode(self._sid_rng.randbytes(24)).decode()
            self._sessions[sid] = _Session(sid, self._clock())
            self.logins_ok += 1
            response = _response(200, b"Ok.", CT_TEXT)
            response.headers["set-cookie"] = f"SID={sid}; HttpOnly; path=/"
            return response
        self.logins_failed += 1
        count = self._failed.get(req.client_ip, 0) + 1
        self._failed[req.client_ip] = count
        if count >= MAX_FAILED_LOGINS and req.client_ip not in self._banned_until:
            self._banned_until[req.client_ip] = self._clock() + self.config.ban_duration
            self.bans += 1
        return _response(200, b"Fails.", CT_TEXT)

    def _protected(self, req: _Request, session: _Session, segments: list[str]) -> tuple[_Response, float]:
        scope, action = segments[0], segments[1] if len(segments) > 1 else ""
        args = segments[2:]
        now = self._tick_time()
        if scope == "query" and not args:
            if action == "torrents":
                return self._query_torrents(req, now), 0.0002 * len(self._torrents)
            if action == "transferInfo":
                return _response(200, _json(self._transfer_info()), CT_JSON), 0.001
            if action == "preferences":
                return _response(200, _json(self._preferences(req.local_port)), CT_JSON), 0.001
        if scope == "query" and len(args) == 1:
            handlers: dict[str, Callable[[_Torrent], Any]] = {
                "propertiesGeneral": lambda t: t.properties(now),
                "propertiesTrackers": lambda t: t.tracker_items(),
                "propertiesFiles": lambda t: self._files(t),
                "propertiesWebSeeds": lambda t: [],
            }
            handler = handlers.get(action)
            if handler is not None:
                empty: Any = {} if action == "propertiesGeneral" else []
                body = self._cached_for_hash(action, args[0], handler, empty)
                return _response(200, body, CT_JSON), 0.0014 if action == "propertiesGeneral" else 0.001
        if scope == "sync" and action == "maindata" and not args:
            return _response(200, _json(self._maindata(req, session, now)), CT_JSON), 0.001
        if scope == "command" and not args:
            return self._command(action, req), 0.001
        return _response(404), 0.001

    def _cached_for_hash(
        self, action: str, torrent_hash: str, build: Callable[[_Torrent], Any], empty: Any
    ) -> bytes:
        """CACHED_VARIABLE_FOR_HASH: one slot per endpoint, 1.5 s from the first request; an
        unknown hash leaves an empty container in the slot, so a quick repeat answers ``{}``/``[]``."""
        now = time.monotonic()
        slot = self._prop_cache.get(action)
        if slot is not None and slot[0] == torrent_hash and now - slot[1] <= CACHE_DURATION:
            return slot[2]
        torrent = self._torrents.get(torrent_hash)
        if torrent is None:
            self._prop_cache[action] = (torrent_hash, now, _json(empty))
            return b""
        body = _json(build(torrent))
        self._prop_cache[action] = (torrent_hash, now, body)
        return body

    def _files(self, t: _Torrent) -> list[dict[str, Any]]:
        pieces = t.pieces_num()
        return [
            {
                "is_seed": t.is_complete,
                "name": t.name,
                "piece_range": [0, max(0, pieces - 1)],
                "priority": 1,
                "progress": t.progress(),
                "size": t.size,
            }
        ]

    def _items(self, now: float) -> Iterable[dict[str, Any]]:
        priorities = self._priority_map()
        for t in self._torrents.values():
            yield t.list_item(now, priorities.get(t.hash, 0))

    def _query_torrents(self, req: _Request, now: float) -> _Response:
        q = req.query
        plain = not any(k in q for k in ("filter", "category", "sort", "limit", "offset"))
        if plain:
            if self._list_cache is None or self._list_cache[0] != self._tick:
                encode = _ENCODER.encode
                text = "[" + ",".join(encode(item) for item in self._items(now)) + "]"
                body = text.encode("utf-8")
                self._list_cache = (self._tick, body, None)
            return _response(200, self._list_cache[1], CT_JSON)
        wanted = _FILTERS.get(q.get("filter", "all"), _FILTERS["all"])
        items = [
            item
            for t, item in zip(self._torrents.values(), self._items(now), strict=True)
            if wanted(t) and ("category" not in q or t.category == q["category"])
        ]
        key = q.get("sort")
        if key and items and key in items[0]:
            items.sort(key=lambda item: _sort_key(item.get(key)), reverse=q.get("reverse") == "true")
        offset, limit = _to_int(q.get("offset")), _to_int(q.get("limit"))
        size = len(items)
        if offset < 0:
            offset = size + offset
        if offset >= size or offset < 0:
            offset = 0
        if limit > 0 or offset > 0:
            items = items[offset : offset + limit] if limit > 0 else items[offset:]
        return _response(200, _json(items), CT_JSON)

    def _transfer_info(self) -> dict[str, Any]:
        dl_speed = sum(self._torrents[h].dlspeed for h in self._active)
        up_speed = sum(self._torrents[h].upspeed for h in self._active)
        if self._alltime_dl and self._alltime_ul:
            ratio = f"{math.floor(self._alltime_ul / self._alltime_dl * 100) / 100:.2f}"
        else:
            ratio = "-"
        return {
            "alltime_dl": self._alltime_dl,
            "alltime_ul": self._alltime_ul,
            "average_time_queue": 0,
            "connection_status": "connected",
            "dht_nodes": self._dht_nodes + (self._tick % 7),
            "dl_info_data": self._session_dl,
            "dl_info_speed": dl_speed,
            "dl_rate_limit": 0,
            "global_ratio": ratio,
            "queued_io_jobs": 0,
            "read_cache_hits": "-",
            "read_cache_overload": "0",
            "total_buffers_size": 0,
            "total_peer_connections": sum(t.num_seeds + t.num_leechs for t in self._torrents.values()),
            "total_queued_size": 0,
            "total_wasted_session": self._session_wasted,
            "up_info_data": self._session_ul,
            "up_info_speed": up_speed,
            "up_rate_limit": 0,
            "write_cache_overload": "0",
        }

    def _maindata(self, req: _Request, session: _Session, now: float) -> dict[str, Any]:
        """Full update unless ``rid`` is this session's last one; then only what changed."""
        try:
            asked = int(req.query.get("rid", "0"))
        except ValueError:
            asked = 0
        state = self._transfer_info()
        state.update({"queueing": True, "refresh_interval": 1500, "use_alt_speed_limits": False})
        priorities = self._priority_map()
        torrents = {
            t.hash: _json(t.list_item(now, priorities.get(t.hash, 0), with_hash=False))
            for t in self._torrents.values()
        }
        categories = sorted(self._categories)
        full = asked == 0 or asked != session.rid or session.sync_torrents is None
        session.rid = session.rid % 1_000_000 + 1
        data: dict[str, Any] = {"rid": session.rid}
        if full:
            data.update(
                full_update=True,
                categories=categories,
                server_state=state,
                torrents={h: _Raw(body) for h, body in torrents.items()},
            )
        else:
            old = session.sync_torrents or {}
            changed: dict[str, Any] = {}
            for h, body in torrents.items():
                if h not in old:
                    changed[h] = _Raw(body)
                elif old[h] != body:
                    before, after = json.loads(old[h]), json.loads(body)
                    changed[h] = {k: v for k, v in after.items() if before.get(k) != v}
            if changed:
                data["torrents"] = changed
            removed = [h for h in old if h not in torrents]
            if removed:
                data["torrents_removed"] = removed
            old_state = session.sync_state or {}
            diff = {k: v for k, v in state.items() if old_state.get(k) != v}
            if diff:
                data["server_state"] = diff
            old_categories = session.sync_categories or []
            added = [c for c in categories if c not in old_categories]
            gone = [c for c in old_categories if c not in categories]
            if added:
                data["categories"] = added
            if gone:
                data["categories_removed"] = gone
        session.sync_torrents, session.sync_state, session.sync_categories = torrents, state, categories
        return data

    def _command(self, action: str, req: _Request) -> _Response:
        if action in ("getGlobalDlLimit", "getGlobalUpLimit", "alternativeSpeedLimitsEnabled"):
            return _response(200, b"0", CT_TEXT)
        if action == "getSavePath":
            return _response(200, b"/downloads/", CT_HTML)
        if action in ("pause", "resume"):
            if set(req.posts) != {"hash"}:
                return _response(400)  # CHECK_PARAMETERS
            t = self._torrents.get(req.posts["hash"])
            if t is not None:
                if action == "pause" and t.state not in _PAUSED_STATES:
                    self._set_state(t, "pausedUP" if t.is_complete else "pausedDL", self._tick_time())
                elif action == "resume" and t.state in _PAUSED_STATES:
                    self._set_state(t, "stalledUP" if t.is_complete else "stalledDL", self._tick_time())
            return _response(200)
        return _response(404)

    def _preferences(self, port: int) -> dict[str, Any]:
        prefs = dict(_PREFERENCES)
        prefs["web_ui_port"] = port
        prefs["web_ui_username"] = self.config.username
        prefs["web_ui_password"] = hashlib.md5(self.config.password.encode()).hexdigest()
        return prefs


def _to_int(value: str | None) -> int:
    """QString::toInt: anything unparsable is 0."""
    try:
        return int(value or "0")
    except ValueError:
        return 0


def _sort_key(value: Any) -> Any:
    return (0, value) if isinstance(value, (int, float, bool)) else (1, str(value))


def _is_active(t: _Torrent) -> bool:
    """TorrentHandle::isActive of 4.0.4."""
    if t.state == "stalledDL":
        return t.upspeed > 0
    return t.state in ("metaDL", "downloading", "forcedDL", "uploading", "forcedUP")


_FILTERS: dict[str, Callable[[_Torrent], bool]] = {
    "all": lambda t: True,
    "downloading": lambda t: t.state in _DOWNLOADING_STATES,
    "seeding": lambda t: t.state in _SEEDING_STATES,
    "completed": lambda t: t.state in _COMPLETE_STATES,
    "paused": lambda t: t.state in _PAUSED_STATES,
    "resumed": lambda t: t.state not in _PAUSED_STATES,
    "active": _is_active,
    "inactive": lambda t: not _is_active(t),
    "errored": lambda t: t.state in ("error", "missingFiles"),
}

_LOGIN_PAGE = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="UTF-8" /><title>qBittorrent Web UI</title>'
    b'</head><body><h1>qBittorrent Web UI</h1><form id="loginform" action="">'
    b'<input type="text" id="username" name="username" /><input type="password" id="password" '
    b'name="password" /><input type="submit" id="login" value="Login" /></form></body></html>\n'
)
_INDEX_PAGE = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="UTF-8" /><title>qBittorrent Web UI</title>'
    b"</head><body><p>qBittorrent v4.0.4 (simulated)</p></body></html>\n"
)
_PREFERENCES: dict[str, Any] = json.loads(
    '{"add_trackers":"","add_trackers_enabled":false,"alt_dl_limit":10240,"alt_up_limit":10240,'
    '"anonymous_mode":false,"autorun_enabled":false,"autorun_program":"","banned_IPs":"",'
    '"bittorrent_protocol":0,"bypass_auth_subnet_whitelist":"","bypass_auth_subnet_whitelist_enabled":false,'
    '"bypass_local_auth":false,"dht":true,"dl_limit":0,"dont_count_slow_torrents":false,'
    '"encryption":0,"export_dir":"","export_dir_fin":"","incomplete_files_ext":false,'
    '"ip_filter_enabled":false,"limit_tcp_overhead":false,"limit_utp_rate":true,"listen_port":8999,'
    '"locale":"en","lsd":true,"max_active_downloads":3,"max_active_torrents":5,"max_active_uploads":3,'
    '"max_connec":500,"max_connec_per_torrent":100,"max_ratio":-1,"max_ratio_act":0,'
    '"max_ratio_enabled":false,"max_seeding_time":-1,"max_seeding_time_enabled":false,"max_uploads":-1,'
    '"max_uploads_per_torrent":-1,"pex":true,"preallocate_all":false,"queueing_enabled":true,'
    '"random_port":false,"save_path":"/downloads/","scan_dirs":{},"temp_path":"/downloads/temp/",'
    '"temp_path_enabled":false,"up_limit":0,"upnp":false,"use_https":false,"web_ui_address":"127.0.0.1",'
    '"web_ui_domain_list":"*","web_ui_password":"","web_ui_port":8080,"web_ui_upnp":false,'
    '"web_ui_username":"admin"}'
)


class _Server(socketserver.ThreadingTCPServer):
    """One thread per connection (so a hung request does not stall others); the simulator's lock
    serialises the actual work, like the real single-threaded server."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128
    simulator: Simulator


def _bad_request() -> bytes:
    """Parser-level 400 of 4.0.4: no security headers (rec 86-raw-garbage)."""
    return _serialise(_Response(400, "Bad Request", {}), head=False)


class _Handler(socketserver.BaseRequestHandler):
    """Reads exactly one request, answers it (or fails as told), then the server closes the socket."""

    server: _Server

    def handle(self) -> None:
        conn: socket.socket = self.request
        sim = self.server.simulator
        conn.settimeout(IDLE_CONNECTION_TIMEOUT)
        try:
            raw = self._read(conn)
        except (TimeoutError, OSError):
            return
        if raw is None:
            return
        if isinstance(raw, bytes):
            conn.sendall(raw)
            return
        method, target, headers, body = raw
        split = urllib.parse.urlsplit(target)
        path = split.path or "/"
        content_type = headers.get("content-type", "")
        posts: dict[str, str] = {}
        if body:
            if content_type.startswith("application/x-www-form-urlencoded"):
                posts = _parse_pairs(body.decode("utf-8", "replace"))
            elif content_type.startswith("multipart/form-data"):
                posts = _parse_multipart(body, content_type)
            else:
                conn.sendall(_bad_request())
                return
        failure = sim._take_failure(path)
        if failure is not None and failure[0] in ("hang", "close"):
            with sim._lock:
                sim._count(path)
            if failure[0] == "hang":
                self._hang(conn, sim)
            return
        request = _Request(
            method=method,
            target=target,
            path=path,
            query=_parse_pairs(split.query),
            headers=headers,
            posts=posts,
            client_ip=self.client_address[0],
            local_port=conn.getsockname()[1],
        )
        response = sim._handle(request, failure)
        try:
            conn.sendall(_serialise(response, head=method == "HEAD"))
        except OSError:
            return

    @staticmethod
    def _hang(conn: socket.socket, sim: Simulator) -> None:
        """Never answer; give up only when the client closes or the simulator stops."""
        while not sim._stop.is_set():
            readable, _, _ = select.select([conn], [], [], 0.2)
            if readable:
                try:
                    if not conn.recv(4096, socket.MSG_PEEK):
                        return
                    conn.recv(4096)
                except OSError:
                    return

    @staticmethod
    def _read(conn: socket.socket) -> tuple[str, str, dict[str, str], bytes] | bytes | None:
        """One request: headers up to CRLF CRLF (bare LF never completes), body by Content-Length
        only (chunked bodies are ignored, as in 4.0.4). Returns raw bytes for a parser error."""
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buffer += chunk
            if len(buffer) > MAX_CONTENT_LENGTH:
                return _bad_request()
        head, _, rest = buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        match = _REQUEST_LINE.match(lines[0])
        if not match:
            return _bad_request()
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                return _bad_request()
            headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
        length = _to_int(headers.get("content-length"))
        if length < 0 or length > MAX_CONTENT_LENGTH:
            return _bad_request()
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            rest += chunk
        return match.group(1).decode(), match.group(2).decode("latin-1"), headers, rest[:length]


def main(argv: list[str] | None = None) -> int:
    """Run a simulator in the foreground until interrupted (manual runs and benchmarks)."""
    parser = argparse.ArgumentParser(
        prog="python -m qbt_exporter.simulator", description="Simulated qBittorrent 4.0.4 (WebUI API 17)."
    )
    parser.add_argument("--torrents", type=int, default=50, help="number of torrents (default 50)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind, 0 = any free (default 8080)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="adminadmin")
    parser.add_argument("--latency", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--churn", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    config = SimulatorConfig(
        torrents=args.torrents,
        username=args.username,
        password=args.password,
        seed=args.seed,
        latency=args.latency,
        churn=args.churn,
        time_scale=args.time_scale,
    )
    with Simulator(config, host=args.host, port=args.port) as sim:
        print(f"simulated qBittorrent 4.0.4 with {args.torrents} torrents on {sim.url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
