"""Real processes for the end-to-end tests: qbittorrent-nox, the exporter and Prometheus.

Everything here starts real programs on 127.0.0.1 with free ports and keeps each program's output in
a log file, so a failing test can show what the program said. Nothing here touches the network
beyond loopback: the torrents are made by a small bencoder below and announce to a closed port.

Every qBittorrent runs from a profile written here: WebUI and BitTorrent on 127.0.0.1 only, DHT,
PeX, LSD, UPnP/NAT-PMP and peer-country resolution (which downloads a geolocation database) off,
and a WebUI password of the harness's own (``ADMIN_PASSWORD``, stored as PBKDF2 the way 4.2+ stores
it), since 4.6.1+ has no default password and prints a random one instead. The same harness drives
4.x and 5.x: where their APIs differ (``ServerTraits``), it asks the server which one it is.

The module is usable without pytest (``python -m tests.e2e.harness`` starts the whole setup once and
prints what qBittorrent reports), which is how the harness was checked before the exporter existed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import requests
from prometheus_client.samples import Sample

from qbt_exporter.qbittorrent.model import normalise_state
from tests.tools import QbtServer, find_tool, qbittorrent_server

T = TypeVar("T")

QBITTORRENT_NOX = "qbittorrent-nox"
PROMETHEUS = "prometheus"
PROMTOOL = "promtool"

# The WebUI login the harness writes into every profile (not qBittorrent's old default "adminadmin",
# which 4.6.1+ no longer accepts, so a server that ignored the profile's password would fail at once).
ADMIN_USER = "admin"
ADMIN_PASSWORD = "e2e-Adm1n-pass"

# The passkey in the announce path must never leak into the exposition (the exporter exports the
# tracker host only). Torrents announce either to the harness's FakeTracker (so that qBittorrent
# has a working tracker to report) or to a closed loopback port (a tracker that never answers).
PASSKEY = "passkey123"
CLOSED_ANNOUNCE_URL = f"http://127.0.0.1:9/{PASSKEY}/announce"

# The one torrent name that exercises label escaping: quotes, a backslash, Unicode.
TRICKY_NAME = 'He said "hi" \\ Ünïcødé 日本語'

REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
    on_timeout: Callable[[], str] | None = None,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """Call ``probe`` until it returns something truthy; its last exception is kept for the message.

    Polling (not sleeping a fixed time) keeps the suite fast on a quick machine and patient on a
    slow one. Exceptions outside ``retry_on`` are not waited out: they propagate at once.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
            if result:
                return result
        except retry_on as exc:  # the probe's failures are expected while waiting
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            extra = f"\n{on_timeout()}" if on_timeout else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}{extra}")
        time.sleep(interval)


class ManagedProcess:
    """One child process with its output in a log file; stopped for sure by ``stop``.

    Each child gets its own session (process group) so that stopping it never signals the test
    runner. Every process ever started is listed in ``ManagedProcess.started`` so that a failing
    test can show the logs of the programs it talked to.
    """

    started: ClassVar[list[ManagedProcess]] = []

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        extra_logs: list[Path] | None = None,
    ) -> None:
        self.name = name
        self.extra_logs = extra_logs or []  # log files the program writes itself
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        if self not in ManagedProcess.started:
            ManagedProcess.started.append(self)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """Terminate, wait, then kill: a test must never leave a program running."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=10)
        self.proc = None
        return proc.returncode

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the program's output (and of its own log files), for failure messages."""
        parts = []
        for path in [self.log_path, *self.extra_logs]:
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            parts.append(f"--- {self.name}: {path} ---\n{text[-chars:]}")
        return "\n".join(parts) or f"[no log at {self.log_path}]"

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}\n{self.log_tail()}")


# --------------------------------------------------------------------------------------------------
# torrents without a network
# --------------------------------------------------------------------------------------------------


def bencode(value: Any) -> bytes:
    """Bencode ints, bytes, str, lists and dicts (keys sorted as raw bytes, as BEP 3 requires)."""
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list | tuple):
        return b"l" + b"".join(bencode(item) for item in value) + b"e"
    if isinstance(value, dict):
        items = sorted(((k.encode("utf-8") if isinstance(k, str) else k), v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def make_torrent(
    name: str,
    data: bytes,
    piece_length: int = 16384,
    announce: str = CLOSED_ANNOUNCE_URL,
    private: bool = True,
) -> tuple[bytes, str]:
    """A single-file .torrent for ``data``; returns (torrent file bytes, v1 info hash in hex)."""
    pieces = b"".join(
        hashlib.sha1(data[offset : offset + piece_length]).digest()
        for offset in range(0, len(data), piece_length)
    )
    info: dict[str, Any] = {
        "name": name,
        "length": len(data),
        "piece length": piece_length,
        "pieces": pieces,
    }
    if private:
        info["private"] = 1
    torrent = {"announce": announce, "info": info, "created by": "qbt-exporter e2e"}
    return bencode(torrent), hashlib.sha1(bencode(info)).hexdigest()


def deterministic_bytes(seed: str, size: int) -> bytes:
    """Reproducible file content, different per torrent so every info hash differs."""
    return random.Random(seed).randbytes(size)


class FakeTracker:
    """A minimal HTTP BitTorrent tracker on loopback, so qBittorrent has a *working* tracker.

    qBittorrent reports a torrent's ``tracker`` only once an announce succeeded; with a closed port
    the field stays empty and the exporter's tracker label could not be checked. Every announce gets
    the same answer: no peers, and fixed swarm counts (``complete``/``incomplete``) that show up as
    the torrents' swarm seeds and leechers.
    """

    COMPLETE = 3
    INCOMPLETE = 2

    def __init__(self) -> None:
        self.announces = 0
        tracker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                tracker.announces += 1
                body = bencode(
                    {
                        "interval": 1800,
                        "min interval": 1800,
                        "complete": tracker.COMPLETE,
                        "incomplete": tracker.INCOMPLETE,
                        "peers": b"",
                    }
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.announce_url = f"http://127.0.0.1:{self.port}/{PASSKEY}/announce"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-tracker", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class TorrentSpec:
    """One torrent of the fixed mix and the state qBittorrent should settle in (its own words)."""

    key: str
    name: str  # the name inside the .torrent (and of the data file)
    size: int
    expected_state: str  # as the exporter names it (stoppedUP for 4.x's pausedUP: ServerTraits.raw_state)
    category: str = ""
    tags: tuple[str, ...] = ()
    data_present: bool = True
    paused: bool = False
    skip_checking: bool = True
    piece_length: int = 16384
    # the name qBittorrent shows, when it differs from ``name`` (torrents/add ``rename``)
    rename: str | None = None
    # announce to the FakeTracker (True) or to a closed port (False)
    working_tracker: bool = True
    # per-torrent limits in bytes/s (0 = none); used for the slow transfers with the peer instance
    dl_limit: int = 0
    up_limit: int = 0

    @property
    def display_name(self) -> str:
        return self.rename if self.rename is not None else self.name


@dataclass
class AddedTorrent:
    spec: TorrentSpec
    hash: str
    torrent_bytes: bytes
    save_path: Path


# The fixed mix on the qBittorrent the exporter watches. Categories include none (""), tags include
# none and an unsorted multi-tag set (the exporter sorts them: "alpha,zeta").
STATIC_MIX: tuple[TorrentSpec, ...] = (
    TorrentSpec(
        "seeding",
        "seeding-plain.iso",
        48 * 1024,
        "stalledUP",
        category="linux-isos",
        tags=("zeta", "alpha"),
    ),
    # qBittorrent (4.5 and later) strips a backslash from the name inside a .torrent (it sanitises
    # it as a file name), so the tricky name is given with ``rename``, which it keeps verbatim.
    TorrentSpec("tricky", "tricky-name.bin", 20 * 1024, "stalledUP", rename=TRICKY_NAME),
    TorrentSpec(
        "paused_up",
        "paused-complete.mkv",
        32 * 1024,
        "stoppedUP",
        category="movies",
        tags=("hd",),
        paused=True,
    ),
    TorrentSpec(
        "paused_dl",
        "paused-incomplete.mkv",
        40 * 1024,
        "stoppedDL",
        category="movies",
        data_present=False,
        paused=True,
        skip_checking=False,
        working_tracker=False,
    ),
    # skip_checking=true on a save path without the data: qBittorrent finds the file missing when
    # the torrent starts and reports missingFiles at once (no recheck or resume needed).
    TorrentSpec(
        "missing",
        "missing-data.iso",
        24 * 1024,
        "missingFiles",
        category="linux-isos",
        tags=("hd",),
        data_present=False,
    ),
)

# Two slow transfers with a second qBittorrent ("peer") so that speeds, ETAs, peers and session
# byte counters are real and non-zero: the watched instance downloads one and uploads the other.
# The limits keep both going for far longer than the suite runs (16 MiB at 16 KiB/s: ~17 minutes).
TRANSFER_RATE = 16 * 1024
TRANSFER_SIZE = 16 * 1024 * 1024
GLOBAL_LIMIT = 10 * 1024 * 1024  # bytes/s, on the watched instance
LEECH = TorrentSpec(
    "leeching",
    "leeching-from-peer.bin",
    TRANSFER_SIZE,
    "downloading",
    tags=("peer",),
    data_present=False,
    skip_checking=False,
    piece_length=64 * 1024,
    dl_limit=TRANSFER_RATE,
)
UPLOAD = TorrentSpec(
    "uploading",
    "uploading-to-peer.bin",
    TRANSFER_SIZE,
    "uploading",
    category="linux-isos",
    tags=("peer", "alpha"),
    piece_length=64 * 1024,
    up_limit=TRANSFER_RATE,
)

# --------------------------------------------------------------------------------------------------
# qBittorrent
# --------------------------------------------------------------------------------------------------


def pbkdf2_password(password: str, salt: bytes | None = None) -> str:
    """``WebUI\\Password_PBKDF2`` for ``password``, as qBittorrent 4.2+ writes and reads it.

    ``@ByteArray(<base64 salt>:<base64 key>)``: PBKDF2-HMAC-SHA512, 100,000 iterations, a 16-byte
    salt and a 64-byte key (base/utils/password.cpp). 4.5 and 5.1 both read it; writing it is the
    only way to know the password of a fresh 4.6.1+, which otherwise prints a random one.
    """
    salt = salt if salt is not None else os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, 100_000, dklen=64)
    return f"@ByteArray({base64.b64encode(salt).decode()}:{base64.b64encode(key).decode()})"


@dataclass(frozen=True)
class ServerTraits:
    """What a /api/v2 server's own version says about how to drive it and what it will report.

    Decided from ``app/webapiVersion`` (never from a pinned version string), with the differences
    qbittorrent-api.md documents: 5.0.0 (webapi 2.11) renamed "paused" to "stopped" in states,
    the add form and the actions, wrote -1 for unset dates, and added fields to torrents/info.
    """

    version: str  # app/version, "v" and three numbers
    webapi: str  # app/webapiVersion, dotted numbers

    # torrents/info fields 5.0.0 added (qbittorrent-api.md 8.2); none of them is a metric
    LIST_FIELDS_5_0: ClassVar[frozenset[str]] = frozenset(
        {"comment", "has_metadata", "popularity", "private", "reannounce", "root_path"}
    )

    @property
    def webapi_tuple(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.webapi.split("."))

    @property
    def stopped_words(self) -> bool:
        """5.0.0+: stoppedUP/stoppedDL, the add form's ``stopped``, torrents/start and /stop."""
        return self.webapi_tuple >= (2, 11)

    def raw_state(self, state: str) -> str:
        """The wire state this server sends for the exporter's (normalised) ``state``."""
        if not self.stopped_words and state in ("stoppedUP", "stoppedDL"):
            return "paused" + state.removeprefix("stopped")
        return state

    @property
    def add_stopped_field(self) -> str:
        return "stopped" if self.stopped_words else "paused"

    @property
    def start_action(self) -> str:
        return "torrents/start" if self.stopped_words else "torrents/resume"

    def is_never(self, date: int) -> bool:
        """Whether a torrents/info date such as completion_on is this server's "never".

        5.0.0+ writes -1; 4.2-4.6 write the epoch seconds of an invalid date, 0 in this harness's
        UTC environment (a small offset elsewhere).
        """
        return date == -1 if self.stopped_words else date <= 0

    @property
    def names_tracker_before_announce(self) -> bool:
        """Whether torrents/info's ``tracker`` names a tracker no announce has reached yet.

        4.x says "" until an announce worked; 5.x names the first tracker from the start (seen on
        5.1.0 for stopped torrents and for a tracker that never answers; qbittorrent-api.md
        documents only the 4.x rule).
        """
        return self.stopped_words

    @property
    def list_additions(self) -> frozenset[str]:
        return self.LIST_FIELDS_5_0 if self.stopped_words else frozenset()


# Lines of a qBittorrent's own log that show it reaching, or trying to reach, beyond loopback.
OUTBOUND_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"geolocation", re.IGNORECASE),  # peer-country resolution downloads a database
    re.compile(r"host name was not found|could not resolve|couldn't download|failed to download", re.I),
    re.compile(r"(DHT|Local Peer Discovery|Peer Exchange|PeX|UPnP|NAT-PMP)[^:]*support: ON", re.I),
)
_LISTENING = re.compile(r'listening on (?:IP\. IP: "|IP: )([^":,\s]+)', re.IGNORECASE)


def outbound_attempts(log: str) -> list[str]:
    """The log lines that show traffic or a listener outside 127.0.0.1 (empty: all loopback)."""
    found = []
    for line in log.splitlines():
        listening = _LISTENING.search(line)
        off_loopback = listening is not None and listening.group(1) != "127.0.0.1"
        if off_loopback or any(p.search(line) for p in OUTBOUND_PATTERNS):
            found.append(line)
    return found


class QbtApi:
    """A small admin client for qBittorrent's /api/v2, for setting up and checking the tests.

    Deliberately independent of the exporter's own client: the tests compare the exporter's output
    with what qBittorrent says through this one.
    """

    def __init__(self, base_url: str, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.session = requests.Session()
        self._traits: ServerTraits | None = None

    def login(self) -> None:
        self.session.cookies.clear()
        reply = self.session.post(
            f"{self.base_url}/api/v2/auth/login",
            data={"username": self.username, "password": self.password},
            timeout=10,
        )
        reply.raise_for_status()
        if reply.text.strip() != "Ok.":
            raise RuntimeError(f"qBittorrent refused the login: {reply.status_code} {reply.text!r}")

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call; logs in when there is no session yet or qBittorrent forgot it (403)."""
        kwargs.setdefault("timeout", 15)
        url = f"{self.base_url}/api/v2/{path}"
        if not self.session.cookies:
            self.login()
        reply = self.session.request(method, url, **kwargs)
        if reply.status_code == 403:
            self.login()
            reply = self.session.request(method, url, **kwargs)
        reply.raise_for_status()
        return reply

    def get(self, path: str, **params: Any) -> Any:
        reply = self._request("GET", path, params=params)
        ctype = reply.headers.get("content-type", "")
        return reply.json() if "json" in ctype else reply.text

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> str:
        return self._request("POST", path, data=data, **kwargs).text

    # --- reads ---------------------------------------------------------------------------------

    def app_version(self) -> str:
        return str(self.get("app/version"))

    def webapi_version(self) -> str:
        return str(self.get("app/webapiVersion"))

    def traits(self) -> ServerTraits:
        """What this server's own version implies (asked once; a restart is the same binary)."""
        if self._traits is None:
            self._traits = ServerTraits(self.app_version(), self.webapi_version())
        return self._traits

    def torrents_info(self, **params: Any) -> list[dict[str, Any]]:
        return list(self.get("torrents/info", **params))

    def maindata(self) -> dict[str, Any]:
        return dict(self.get("sync/maindata", rid=0))

    def transfer_info(self) -> dict[str, Any]:
        return dict(self.get("transfer/info"))

    def properties(self, torrent_hash: str) -> dict[str, Any]:
        return dict(self.get("torrents/properties", hash=torrent_hash))

    def trackers(self, torrent_hash: str) -> list[dict[str, Any]]:
        return list(self.get("torrents/trackers", hash=torrent_hash))

    def preferences(self) -> dict[str, Any]:
        return dict(self.get("app/preferences"))

    # --- writes --------------------------------------------------------------------------------

    def create_category(self, name: str) -> None:
        reply = self.session.post(
            f"{self.base_url}/api/v2/torrents/createCategory",
            data={"category": name, "savePath": ""},
            timeout=10,
        )
        if reply.status_code == 403:
            self.login()
            return self.create_category(name)
        if reply.status_code not in (200, 409):  # 409: it exists already
            reply.raise_for_status()

    def add_torrent(
        self,
        torrent_bytes: bytes,
        save_path: Path,
        *,
        category: str = "",
        tags: Iterable[str] = (),
        paused: bool = False,
        skip_checking: bool = False,
        rename: str | None = None,
        dl_limit: int = 0,
        up_limit: int = 0,
    ) -> None:
        data: dict[str, str] = {
            "savepath": str(save_path),
            self.traits().add_stopped_field: "true" if paused else "false",
            "skip_checking": "true" if skip_checking else "false",
            "autoTMM": "false",
        }
        if category:
            data["category"] = category
        tag_list = list(tags)
        if tag_list:
            data["tags"] = ",".join(tag_list)
        if rename is not None:
            data["rename"] = rename
        if dl_limit:
            data["dlLimit"] = str(dl_limit)
        if up_limit:
            data["upLimit"] = str(up_limit)
        files = {"torrents": ("t.torrent", torrent_bytes, "application/x-bittorrent")}
        text = self.post("torrents/add", data=data, files=files)
        if text.strip() != "Ok.":
            raise RuntimeError(f"torrents/add refused the torrent: {text!r}")

    def add_peers(self, hashes: Iterable[str], peers: Iterable[str]) -> None:
        self.post("torrents/addPeers", data={"hashes": "|".join(hashes), "peers": "|".join(peers)})

    def recheck(self, hashes: Iterable[str]) -> None:
        self.post("torrents/recheck", data={"hashes": "|".join(hashes)})

    def resume(self, hashes: Iterable[str]) -> None:
        """Start stopped torrents (torrents/resume before 5.0, torrents/start since)."""
        self.post(self.traits().start_action, data={"hashes": "|".join(hashes)})

    def set_preferences(self, prefs: dict[str, Any]) -> None:
        import json

        self.post("app/setPreferences", data={"json": json.dumps(prefs)})


class QBittorrent:
    """A real qbittorrent-nox with its own profile, HOME and ports under ``root``.

    The profile survives ``stop``/``start``, so a restart is the same qBittorrent (same torrents,
    same WebUI port) that has forgotten every session, as after a real restart. ``server`` says
    which qbittorrent-nox (tests.tools.QbtServer: this machine's, or the chroot's); without one it
    is this machine's. A chroot server sees ``root`` at the same path, so ``root`` must be under
    /tmp (pytest's tmp_path is).
    """

    def __init__(
        self,
        root: Path,
        name: str = "qbittorrent",
        extra_preferences: dict[str, str] | None = None,
        server: QbtServer | None = None,
    ):
        self.root = root
        self.name = name
        self.profile = root / "profile"
        self.home = root / "home"
        self.web_port = free_port()
        self.listen_port = free_port()
        self.extra_preferences = extra_preferences or {}
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.server = server
        self.own_log = self.profile / "qBittorrent" / "data" / "logs" / "qbittorrent.log"
        if server is not None:
            argv = server.command(f"--profile={self.profile}")
        else:
            argv = [find_tool(QBITTORRENT_NOX) or QBITTORRENT_NOX, f"--profile={self.profile}"]
        self.process = ManagedProcess(
            name, argv, root / f"{name}.log", env=self._env(), cwd=root, extra_logs=[self.own_log]
        )
        self.api = QbtApi(self.url)

    def _env(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local/share"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            "QT_QPA_PLATFORM": "offscreen",
            # its single-instance socket goes to the temp dir: one per instance, never stale
            "TMPDIR": str(self.root / "tmp"),
        }
        return env

    def write_config(self) -> None:
        """The settings that make a headless qbittorrent-nox start quietly and stay on loopback.

        Written in the sections 4.5 and 5.1 both read: [BitTorrent] for the session (interface,
        port, DHT/PeX/LSD), [Network] for UPnP/NAT-PMP, [Preferences] for the WebUI and for
        peer-country resolution, whose default (on) makes qBittorrent download a geolocation
        database at start-up: a DNS query leaving the machine on every run.
        """
        config_dir = self.profile / "qBittorrent" / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        # The default save path must exist, or 4.5 reports free_space_on_disk -1 for ever (it
        # measures that directory, once per WebUI session and then every 30 s).
        (self.profile / "qBittorrent" / "downloads").mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        sections: dict[str, dict[str, str]] = {
            "LegalNotice": {"Accepted": "true"},
            "BitTorrent": {
                "Session\\Interface": "lo",
                "Session\\InterfaceName": "lo",
                "Session\\InterfaceAddress": "127.0.0.1",
                "Session\\Port": str(self.listen_port),
                "Session\\DHTEnabled": "false",
                "Session\\PeXEnabled": "false",
                "Session\\LSDEnabled": "false",
            },
            "Network": {"PortForwardingEnabled": "false"},
            "Preferences": {
                "WebUI\\Port": str(self.web_port),
                "WebUI\\Address": "127.0.0.1",
                "WebUI\\Username": ADMIN_USER,
                "WebUI\\Password_PBKDF2": f'"{pbkdf2_password(ADMIN_PASSWORD)}"',
                "WebUI\\LocalHostAuth": "true",
                "WebUI\\CSRFProtection": "true",
                "WebUI\\HostHeaderValidation": "true",
                "WebUI\\UseUPnP": "false",
                "Connection\\ResolvePeerCountries": "false",
                "Connection\\UPnP": "false",
                "General\\Locale": "en",
                **self.extra_preferences,
            },
        }
        lines = []
        for section, values in sections.items():
            lines += [f"[{section}]", *(f"{key}={value}" for key, value in values.items()), ""]
        (config_dir / "qBittorrent.conf").write_text("\n".join(lines))

    def start(self, timeout: float = 30.0) -> None:
        if not (self.profile / "qBittorrent" / "config" / "qBittorrent.conf").exists():
            self.write_config()
        self.process.start()
        self.api = QbtApi(self.url)

        def answers() -> bool:
            self.process.check_alive()
            reply = requests.post(
                f"{self.url}/api/v2/auth/login",
                data={"username": ADMIN_USER, "password": ADMIN_PASSWORD},
                timeout=2,
            )
            return reply.status_code == 200 and reply.text.strip() == "Ok."

        wait_until(
            answers, timeout, what=f"{self.name} WebUI on {self.url}", on_timeout=self.process.log_tail
        )

    def stop(self) -> None:
        self.process.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self) -> str:
        return self.process.log_tail()

    def own_log_text(self) -> str:
        """qBittorrent's own log (<profile>/qBittorrent/data/logs/qbittorrent.log), "" before it exists."""
        try:
            return self.own_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def add_mix(
    qbt: QBittorrent, specs: Iterable[TorrentSpec], base: Path, announce_url: str = CLOSED_ANNOUNCE_URL
) -> dict[str, AddedTorrent]:
    """Add torrents to ``qbt``: data under ``base/data`` where present, ``base/nowhere`` otherwise."""
    specs = list(specs)
    added: dict[str, AddedTorrent] = {}
    for category in sorted({spec.category for spec in specs if spec.category}):
        qbt.api.create_category(category)
    for spec in specs:
        data = deterministic_bytes(spec.key, spec.size)
        announce = announce_url if spec.working_tracker else CLOSED_ANNOUNCE_URL
        torrent_bytes, info_hash = make_torrent(spec.name, data, spec.piece_length, announce)
        if spec.data_present:
            save_path = base / "data"
            save_path.mkdir(parents=True, exist_ok=True)
            (save_path / spec.name).write_bytes(data)
        else:
            save_path = base / "nowhere" / spec.key
        qbt.api.add_torrent(
            torrent_bytes,
            save_path,
            category=spec.category,
            tags=spec.tags,
            paused=spec.paused,
            skip_checking=spec.skip_checking,
            rename=spec.rename,
            dl_limit=spec.dl_limit,
            up_limit=spec.up_limit,
        )
        added[spec.key] = AddedTorrent(spec, info_hash, torrent_bytes, save_path)
    return added


def wait_for_states(
    qbt: QBittorrent, expected: dict[str, str], timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Wait until every torrent (by hash) is in its expected state; returns torrents/info.

    States compare as the exporter normalises them, so "stoppedUP" is met by 4.x's "pausedUP".
    """

    def settled() -> list[dict[str, Any]] | None:
        info = qbt.api.torrents_info()
        states = {t["hash"]: normalise_state(t["state"]) for t in info}
        return info if all(states.get(h) == normalise_state(s) for h, s in expected.items()) else None

    def report() -> str:
        try:
            states = {t["hash"]: (t["name"], t["state"]) for t in qbt.api.torrents_info()}
        except Exception as exc:
            states = {"error": (repr(exc), "")}
        return f"expected {expected}\nqBittorrent reports {states}\n{qbt.log_tail()}"

    return wait_until(settled, timeout, interval=0.3, what="torrent states", on_timeout=report)


def tracker_host(url: str) -> str:
    """The host part of an announce URL, as the exporter's tracker label should show it."""
    return urlsplit(url).hostname or "" if url else ""


@dataclass
class TorrentWorld:
    """The watched qBittorrent, its helper peer and tracker, and the torrents on them."""

    qbt: QBittorrent
    peer: QBittorrent | None
    tracker: FakeTracker
    torrents: dict[str, AddedTorrent] = field(default_factory=dict)

    @property
    def hashes(self) -> dict[str, str]:
        return {key: t.hash for key, t in self.torrents.items()}

    def by_hash(self) -> dict[str, AddedTorrent]:
        return {t.hash: t for t in self.torrents.values()}

    def expected_states(self) -> dict[str, str]:
        return {t.hash: t.spec.expected_state for t in self.torrents.values()}

    def stop(self) -> None:
        """Stop everything that was started; safe to call on a half-built world."""
        for process in (self.qbt, self.peer):
            if process is not None:
                process.stop()
        self.tracker.stop()


def build_world(root: Path, with_peer: bool = True, server: QbtServer | None = None) -> TorrentWorld:
    """Start the watched qBittorrent (and a peer), add the fixed mix, and wait for its states.

    On failure everything started is stopped before the error propagates; on success the caller
    owns the world and calls ``world.stop()``.
    """
    tracker = FakeTracker()
    tracker.start()
    suffix = f"-{server.key}" if server is not None else ""
    qbt = QBittorrent(root / "watched", f"qbittorrent{suffix}", server=server)
    peer = QBittorrent(root / "peer", f"qbittorrent-peer{suffix}", server=server) if with_peer else None
    world = TorrentWorld(qbt, peer, tracker)
    try:
        for instance in (qbt, peer):
            if instance is not None:
                instance.start()
                # libtorrent refuses announces to localhost whose path is not exactly /announce
                # (SSRF mitigation); the passkey path needs it off.
                instance.api.set_preferences({"ssrf_mitigation": False})
        # Global limits far above the transfers' own, so that the limit gauges and the
        # dashboards' limit lines have a non-zero value to show.
        qbt.api.set_preferences({"dl_limit": GLOBAL_LIMIT, "up_limit": GLOBAL_LIMIT})
        world.torrents = add_mix(qbt, STATIC_MIX, root / "watched", tracker.announce_url)
        if peer is not None:
            _start_transfers(world, root)
        wait_for_states(qbt, world.expected_states(), timeout=45)
        announcing = _announcing(world)
        wait_until(
            lambda: all(t["tracker"] for t in qbt.api.torrents_info() if t["hash"] in announcing),
            20,
            what="a working tracker on every announcing torrent",
            on_timeout=lambda: str([(t["name"], t["tracker"]) for t in qbt.api.torrents_info()]),
        )
    except BaseException:
        world.stop()
        raise
    return world


def _announcing(world: TorrentWorld) -> set[str]:
    """Hashes of the torrents that announce to the FakeTracker (running, tracker reachable)."""
    return {
        t.hash
        for t in world.torrents.values()
        if t.spec.working_tracker and not t.spec.paused and t.spec.expected_state != "missingFiles"
    }


def _start_transfers(world: TorrentWorld, root: Path) -> None:
    """Slow transfers between the two instances: one download and one upload on the watched side."""
    assert world.peer is not None
    qbt, peer = world.qbt, world.peer
    announce = world.tracker.announce_url
    # The peer seeds what the watched instance downloads, and downloads what it seeds.
    peer_added = add_mix(
        peer,
        [
            TorrentSpec(LEECH.key, LEECH.name, LEECH.size, "stalledUP", piece_length=LEECH.piece_length),
            TorrentSpec(
                UPLOAD.key,
                UPLOAD.name,
                UPLOAD.size,
                "downloading",
                data_present=False,
                skip_checking=False,
                piece_length=UPLOAD.piece_length,
            ),
        ],
        root / "peer",
        announce,
    )
    world.torrents.update(add_mix(qbt, [LEECH, UPLOAD], root / "watched", announce))
    for key in ("leeching", "uploading"):
        assert peer_added[key].hash == world.torrents[key].hash
    hashes = [world.torrents["leeching"].hash, world.torrents["uploading"].hash]
    # The watched side connects to the peer for both torrents (the tracker hands out no peers).
    qbt.api.add_peers(hashes, [f"127.0.0.1:{peer.listen_port}"])


# --------------------------------------------------------------------------------------------------
# the exporter
# --------------------------------------------------------------------------------------------------


class Exporter:
    """``python -m qbt_exporter`` on a free port in front of one qBittorrent URL."""

    def __init__(
        self,
        root: Path,
        qbittorrent_url: str,
        password: str = ADMIN_PASSWORD,
        name: str = "exporter",
        extra_args: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # the caller's own exporter settings (QBITTORRENT_*, QBT_EXPORTER_*) must not leak in
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QBITTORRENT_", "QBT_EXPORTER_"))}
        env["QBITTORRENT_PASSWORD"] = password
        env["PYTHONUNBUFFERED"] = "1"
        argv = [
            sys.executable,
            "-m",
            "qbt_exporter",
            "--qbittorrent.url",
            qbittorrent_url,
            "--qbittorrent.username",
            ADMIN_USER,
            "--web.listen-address",
            f"127.0.0.1:{self.port}",
            *(extra_args or []),
        ]
        self.process = ManagedProcess(name, argv, root / f"{name}.log", env=env, cwd=REPO_ROOT)

    def start(self, timeout: float = 20.0) -> None:
        self.process.start()

        def healthy() -> bool:
            self.process.check_alive()
            return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200

        wait_until(
            healthy, timeout, what=f"exporter /healthz on {self.url}", on_timeout=self.process.log_tail
        )

    def scrape(self, timeout: float = 15.0, headers: dict[str, str] | None = None) -> requests.Response:
        return requests.get(f"{self.url}/metrics", timeout=timeout, headers=headers)

    def stop(self) -> None:
        self.process.stop()

    def log_tail(self) -> str:
        return self.process.log_tail()


def exporter_ready() -> tuple[bool, str]:
    """Whether ``python -m qbt_exporter --help`` works yet (the exporter is written in parallel)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "qbt_exporter", "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=REPO_ROOT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, repr(exc)
    return done.returncode == 0, (done.stdout + done.stderr)[-2000:]


# --------------------------------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------------------------------


class Prometheus:
    """A real Prometheus scraping one exporter, with an HTTP API helper for queries."""

    def __init__(
        self,
        root: Path,
        targets: list[str],
        rule_files: list[Path] | None = None,
        scrape_interval: str = "1s",
        scrape_timeout: str = "900ms",
        job: str = "qbittorrent",
    ) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.job = job
        self.config_path = root / "prometheus.yml"
        self.scrape_targets = targets
        self.rule_files = rule_files or []
        self.scrape_interval = scrape_interval
        self.scrape_timeout = scrape_timeout
        self.session = requests.Session()
        self.process = ManagedProcess(
            "prometheus",
            [
                find_tool(PROMETHEUS) or PROMETHEUS,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=info",
            ],
            root / "prometheus.log",
            cwd=root,
        )

    def write_config(self) -> None:
        # JSON is YAML: no YAML writer needed, and quoting is exact.
        import json

        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_timeout,
                "evaluation_interval": "1s",
            },
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [{"job_name": self.job, "static_configs": [{"targets": self.scrape_targets}]}],
        }
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    def start(self, timeout: float = 30.0) -> None:
        self.write_config()
        self.process.start()

        def ready() -> bool:
            self.process.check_alive()
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200

        wait_until(ready, timeout, what="Prometheus ready", on_timeout=self.process.log_tail)

    def stop(self) -> None:
        self.process.stop()

    def log_tail(self) -> str:
        return self.process.log_tail()

    def api(self, path: str, **params: Any) -> Any:
        """GET /api/v1/<path>; returns ``data`` or raises with Prometheus's own error text."""
        reply = self.session.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = reply.json()
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the result vector (or a one-element list for scalars)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Query ``expr`` until ``predicate(result)`` holds; the timeout message shows the last result."""
        last: list[Any] = []

        def probe() -> list[dict[str, Any]] | None:
            nonlocal last
            last = self.query(expr)
            return last if predicate(last) else None

        return wait_until(
            probe,
            timeout,
            interval=0.5,
            retry_on=(requests.RequestException,),
            what=f"Prometheus query {expr!r}",
            on_timeout=lambda: f"last result: {last}\n{self.log_tail(2000)}",
        )

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets")["activeTargets"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    def rules(self) -> list[dict[str, Any]]:
        return list(self.api("rules")["groups"])


class PrometheusQueryError(RuntimeError):
    """Prometheus answered a query with status "error" (bad syntax, bad type, ...)."""


def scalar(result: list[dict[str, Any]]) -> float:
    """The value of a one-sample query result."""
    if len(result) != 1:
        raise AssertionError(f"expected one sample, got {result}")
    return float(result[0]["value"][1])


# --------------------------------------------------------------------------------------------------
# stand-alone check of the harness
# --------------------------------------------------------------------------------------------------


def _main() -> int:
    import json
    import tempfile

    with tempfile.TemporaryDirectory(prefix="qbt-e2e-") as tmp:
        started = time.monotonic()
        root = Path(tmp)
        # which qbittorrent-nox: "system" (default) or "chroot" (tests/tools.py)
        server = qbittorrent_server(sys.argv[1]) if len(sys.argv) > 1 else None
        if server is not None and not server.usable:
            print(server.problem, file=sys.stderr)
            return 2
        world = build_world(root, server=server)
        try:
            print(f"world ready in {time.monotonic() - started:.1f}s")
            fields = ("name", "state", "category", "tags", "tracker", "eta", "dlspeed", "upspeed")
            for _ in range(int(os.environ.get("HARNESS_ROUNDS", "1"))):
                for t in world.qbt.api.torrents_info():
                    print(json.dumps({k: t[k] for k in fields}, ensure_ascii=False))
                print(json.dumps(world.qbt.api.maindata()["server_state"]))
                time.sleep(2)
            return 0
        finally:
            world.stop()


if __name__ == "__main__":
    raise SystemExit(_main())


# --------------------------------------------------------------------------------------------------
# reading an exposition
# --------------------------------------------------------------------------------------------------


@dataclass
class Exposition:
    """One scrape's text, parsed with prometheus_client's own parser, indexed by sample name."""

    text: str
    samples: list[Sample]
    family_names: set[str]

    def named(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name]

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the one sample with exactly these labels (None when absent)."""
        found = [s.value for s in self.named(name) if s.labels == labels]
        if len(found) > 1:
            raise AssertionError(f"{name}{labels} appears {len(found)} times")
        return found[0] if found else None

    def by_hash(self, name: str) -> dict[str, float]:
        """Per-torrent series as {hash: value}; fails on a duplicate hash."""
        values: dict[str, float] = {}
        for sample in self.named(name):
            torrent_hash = sample.labels["hash"]
            if torrent_hash in values:
                raise AssertionError(f"{name} has two series for hash {torrent_hash}")
            values[torrent_hash] = sample.value
        return values

    def names(self) -> set[str]:
        return {s.name for s in self.samples}


def parse_exposition(text: str) -> Exposition:
    from prometheus_client.parser import text_string_to_metric_families

    samples: list[Sample] = []
    family_names: set[str] = set()
    for family in text_string_to_metric_families(text):
        # the parser strips "_total" from counter family names; keep both spellings
        family_names.add(family.name)
        if family.type == "counter":
            family_names.add(family.name + "_total")
        samples.extend(family.samples)
    return Exposition(text, samples, family_names)
