"""What only the end-to-end tests need: the fixed torrent mix, the two-instance world, Prometheus,
and reading an exposition.

The real programs themselves (a qbittorrent-nox from a safe loopback-only profile with a PBKDF2
password, the exporter, child processes, torrents made by a small bencoder) live in the top-level
``harness`` package, which the benchmarks share. Nothing here touches the network beyond loopback.

The module is usable without pytest (``python -m tests.e2e.harness`` starts the whole setup once and
prints what qBittorrent reports), which is how the harness was checked before the exporter existed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from prometheus_client.samples import Sample

from harness.processes import ManagedProcess, free_port, wait_until
from harness.qbittorrent import QBittorrent, add_mix, wait_for_states
from harness.servers import QbtServer, find_tool, qbittorrent_server
from harness.torrents import AddedTorrent, FakeTracker, TorrentSpec

T = TypeVar("T")

PROMETHEUS = "prometheus"
PROMTOOL = "promtool"

# The one torrent name that exercises label escaping: quotes, a backslash, Unicode.
TRICKY_NAME = 'He said "hi" \\ Ünïcødé 日本語'


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
    # Tracker health: a torrent its tracker says it does not know (the rejecting FakeTracker answers
    # "Unregistered torrent"), and a running one whose tracker is a closed loopback port.
    TorrentSpec("unregistered", "unregistered-on-tracker.bin", 12 * 1024, "stalledUP", rejected=True),
    TorrentSpec("unreachable", "tracker-unreachable.bin", 8 * 1024, "stalledUP", working_tracker=False),
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


@dataclass
class TorrentWorld:
    """The watched qBittorrent, its helper peer and tracker, and the torrents on them."""

    qbt: QBittorrent
    peer: QBittorrent | None
    tracker: FakeTracker
    rejecting: FakeTracker  # answers every announce with "Unregistered torrent"
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
        self.rejecting.stop()


def build_world(root: Path, with_peer: bool = True, server: QbtServer | None = None) -> TorrentWorld:
    """Start the watched qBittorrent (and a peer), add the fixed mix, and wait for its states.

    On failure everything started is stopped before the error propagates; on success the caller
    owns the world and calls ``world.stop()``.
    """
    tracker = FakeTracker()
    tracker.start()
    rejecting = FakeTracker(failure_reason="Unregistered torrent")
    rejecting.start()
    suffix = f"-{server.key}" if server is not None else ""
    qbt = QBittorrent(root / "watched", f"qbittorrent{suffix}", server=server)
    peer = QBittorrent(root / "peer", f"qbittorrent-peer{suffix}", server=server) if with_peer else None
    world = TorrentWorld(qbt, peer, tracker, rejecting)
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
        # The mix runs more torrents at once than qBittorrent's default queue lets run (5 active,
        # 3 uploads): without room, the seeding ones would sit in queuedUP.
        qbt.api.set_preferences(
            {"max_active_torrents": 20, "max_active_uploads": 20, "max_active_downloads": 20}
        )
        world.torrents = add_mix(
            qbt, STATIC_MIX, root / "watched", tracker.announce_url, rejecting.announce_url
        )
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
        failing = [world.torrents[key].hash for key in ("unregistered", "unreachable")]
        wait_until(
            lambda: all(_tracker_failed(qbt, torrent_hash) for torrent_hash in failing),
            30,
            what="a tracker failure on the unregistered and unreachable torrents",
            on_timeout=lambda: str({h: qbt.api.trackers(h) for h in failing}),
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
        if t.spec.working_tracker
        and not t.spec.rejected
        and not t.spec.paused
        and t.spec.expected_state != "missingFiles"
    }


def _tracker_failed(qbt: QBittorrent, torrent_hash: str) -> bool:
    """Whether qBittorrent reports the torrent's real tracker as failed (not working, 5.0+'s tracker
    error or unreachable) with a message, after its first announce."""
    real = [t for t in qbt.api.trackers(torrent_hash) if not str(t["url"]).startswith("** [")]
    return bool(real) and all(t["status"] in (4, 5, 6) and t["msg"] for t in real)


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
        # which qbittorrent-nox: "system" (default) or "chroot" (harness/servers.py)
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
