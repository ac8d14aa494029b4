"""A real qbittorrent-nox for tests and benchmarks, from a profile written here.

WebUI and BitTorrent on 127.0.0.1 only, DHT, PeX, LSD, UPnP/NAT-PMP and peer-country resolution
(which downloads a geolocation database) off, and a WebUI password of the harness's own
(``ADMIN_PASSWORD``, stored as PBKDF2 the way 4.2+ stores it), since 4.6.1+ has no default password
and prints a random one instead. The same code drives 4.x and 5.x: where their APIs differ
(``ServerTraits``), it asks the server which one it is.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests

from harness.processes import ManagedProcess, free_port, wait_until
from harness.servers import QbtServer, find_tool
from harness.torrents import CLOSED_ANNOUNCE_URL, AddedTorrent, TorrentSpec, deterministic_bytes, make_torrent
from qbt_exporter.qbittorrent.flavours.common import normalise_state

QBITTORRENT_NOX = "qbittorrent-nox"

# The WebUI login the harness writes into every profile (not qBittorrent's old default "adminadmin",
# which 4.6.1+ no longer accepts, so a server that ignored the profile's password would fail at once).
ADMIN_USER = "admin"
ADMIN_PASSWORD = "e2e-Adm1n-pass"

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
    which qbittorrent-nox (harness.servers.QbtServer: this machine's, or the chroot's); without one it
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
    qbt: QBittorrent,
    specs: Iterable[TorrentSpec],
    base: Path,
    announce_url: str = CLOSED_ANNOUNCE_URL,
    rejecting_url: str = CLOSED_ANNOUNCE_URL,
) -> dict[str, AddedTorrent]:
    """Add torrents to ``qbt``: data under ``base/data`` where present, ``base/nowhere`` otherwise.
    Each announces to ``announce_url``, to a closed port (``working_tracker=False``) or to
    ``rejecting_url`` (``rejected=True``)."""
    specs = list(specs)
    added: dict[str, AddedTorrent] = {}
    for category in sorted({spec.category for spec in specs if spec.category}):
        qbt.api.create_category(category)
    for spec in specs:
        data = deterministic_bytes(spec.key, spec.size)
        announce = announce_url if spec.working_tracker else CLOSED_ANNOUNCE_URL
        if spec.rejected:
            announce = rejecting_url
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
