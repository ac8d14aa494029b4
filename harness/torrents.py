"""Torrents without a network: a small bencoder, deterministic data, a loopback tracker, and the
description of one torrent to add (``TorrentSpec``).

The passkey in the announce path must never leak into the exposition (the exporter exports the
tracker host only). Torrents announce either to the harness's FakeTracker (so that qBittorrent has a
working tracker to report) or to a closed loopback port (a tracker that never answers).
"""

from __future__ import annotations

import hashlib
import http.server
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSKEY = "passkey123"
CLOSED_ANNOUNCE_URL = f"http://127.0.0.1:9/{PASSKEY}/announce"

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
    """A minimal HTTP BitTorrent tracker on loopback, so qBittorrent has a *working* tracker (or,
    with ``failure_reason``, one that rejects every torrent the way private trackers do).

    qBittorrent reports a torrent's ``tracker`` only once an announce succeeded; with a closed port
    the field stays empty and the exporter's tracker label could not be checked. Every announce gets
    the same answer: no peers, and fixed swarm counts (``complete``/``incomplete``) that show up as
    the torrents' swarm seeds and leechers; or, with ``failure_reason`` ("Unregistered torrent"),
    the bencoded ``d14:failure reason20:Unregistered torrente`` a tracker sends for a torrent it does
    not know.
    """

    COMPLETE = 3
    INCOMPLETE = 2

    def __init__(self, failure_reason: str | None = None) -> None:
        self.announces = 0
        self.failure_reason = failure_reason
        tracker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                tracker.announces += 1
                body = bencode(
                    {"failure reason": tracker.failure_reason}
                    if tracker.failure_reason is not None
                    else {
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
    # announce to the rejecting FakeTracker instead ("Unregistered torrent" to every announce)
    rejected: bool = False
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
