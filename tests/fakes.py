"""Small stand-ins for the client and a flavour, for tests of the parts above them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.errors import QbtError
from qbt_exporter.qbittorrent.model import ServerInfo, Torrent, TorrentProperties, TrackerEntry, Transfer
from tests.clocks import FakeClock


@dataclass
class FakeClient:
    base_url: str = "http://qbt.invalid"
    session_generation: int = 1
    backoff: float = 0.0

    def login_backoff_remaining(self) -> float:
        return self.backoff

    def login_suspended(self) -> dict[str, bool]:
        return {"rejected": False, "banned": False}


@dataclass
class FakeFlavour:
    """A flavour whose answers the test sets; counts calls like a server would.

    A property call "takes" ``property_delay`` seconds of ``clock`` (a fake clock the test also hands
    to the scraper and the deadline), so budgets are exercised without sleeping. ``hold``, when set,
    keeps the snapshot call waiting (after setting ``entered``) until the test sets it.
    """

    torrents: list[Torrent] = field(default_factory=list)
    transfer: Transfer = field(default_factory=lambda: Transfer(connection_status="connected", dht_nodes=5))
    props: dict[str, TorrentProperties | None] = field(default_factory=dict)
    fail: QbtError | None = None
    property_delay: float = 0.0
    clock: FakeClock = field(default_factory=FakeClock)
    hold: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)
    snapshot_calls: int = 0
    property_calls: list[str] = field(default_factory=list)
    trackers_of: dict[str, list[TrackerEntry] | None] = field(default_factory=dict)
    tracker_calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    api = "legacy"

    def server_info(self, deadline: Deadline) -> ServerInfo:
        return ServerInfo("v4.0.4", "legacy", "17")

    def snapshot(self, deadline: Deadline) -> tuple[Transfer, list[Torrent]]:
        with self.lock:
            self.snapshot_calls += 1
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(30), "the test never released the snapshot call"
        if self.fail is not None:
            raise self.fail
        return self.transfer, list(self.torrents)

    def properties(self, torrent_hash: str, deadline: Deadline) -> TorrentProperties | None:
        self.property_calls.append(torrent_hash)
        self.clock.advance(self.property_delay)
        return self.props.get(torrent_hash, TorrentProperties(wasted=1, seeding_seconds=2, connections=3))

    def trackers(self, torrent_hash: str, deadline: Deadline) -> list[TrackerEntry] | None:
        self.tracker_calls.append(torrent_hash)
        return self.trackers_of.get(torrent_hash, [TrackerEntry("tracker.example", "working")])


def torrent(n: int, state: str = "stalledUP", **fields: object) -> Torrent:
    """A torrent with a hash derived from ``n`` and list values but no property-only values."""
    base: dict[str, object] = {
        "hash": f"{n:040x}",
        "name": f"torrent {n}",
        "state": state,
        "size": 1000.0 * n,
        "downloaded": 10.0 * n,
        "uploaded": 5.0 * n,
        "active_seconds": 60.0,
    }
    base.update(fields)
    return Torrent(**base)  # type: ignore[arg-type]
