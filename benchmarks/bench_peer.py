"""Our exporter against ``prometheus-qbittorrent-exporter==1.7.0`` on one real qBittorrent 4.5.2.

``python -m benchmarks.bench_peer [--torrents 1000] [--scrapes 11] [--interval 5]``

Why it is built this way:

* One real ``qbittorrent-nox`` (Debian's 4.5.2, started by the end-to-end harness with a fresh
  profile on loopback) is loaded with ``--torrents`` small generated torrents (skip_checking, so
  they seed; every fifth one paused; a few categories and tags), and both exporters scrape that
  same instance in the same run: the comparison is never against a figure from another run.
* The peer exporter is installed from PyPI into its own venv under
  ``~/.cache/qbt-exporter-bench/peer-venv`` (once; reused afterwards) so that its dependencies
  never mix with ours, and is configured through its own environment variables (read from its
  source, ``qbittorrent_exporter/exporter.py``): ``QBITTORRENT_HOST``, ``QBITTORRENT_PORT``,
  ``QBITTORRENT_USER``, ``QBITTORRENT_PASS``, ``EXPORTER_ADDRESS``, ``EXPORTER_PORT``,
  ``EXPORT_METRICS_BY_TORRENT=True``.
* After a warm-up of each, scrapes alternate (ours then peer, then peer then ours, ...) so that the
  machine's noise hits both alike. Each scrape sends the headers Prometheus 2.42 sends, and is
  measured for wall time, the CPU of the scraped exporter's process and of qBittorrent's process
  (the load each exporter puts on qBittorrent), and the series it exports.
* In each round the benchmark also times qBittorrent's own ``torrents/info`` (what the peer reads)
  and ``sync/maindata`` (what ours reads) with a logged-in session, wall time and qBittorrent's CPU
  for each: the upstream's cost in the same run. Both are asked with the ``Accept-Encoding`` our
  exporter sends this qBittorrent (plain replies on loopback), so that the floor is the list as we
  get it; ``sync/maindata`` is also timed asked for gzip (as most clients, the peer too, ask), for
  information.
* The load we put on qBittorrent is judged against what one ``sync/maindata`` costs it in the same
  run, not as absolute seconds: its CPU for that one call differs by machine and load (0.11 s when
  issue 13 was filed, 0.19–0.20 s alone on the same kind of machine at 2026-12-01 22:00 UTC), and a
  scrape of ours cannot cost it less than the list it must read once.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from benchmarks.common import (
    OwnMetrics,
    Scrape,
    Target,
    check_exit,
    counter_delta,
    cpu_seconds,
    fmt_mib,
    fmt_s,
    mean,
    median,
    peak_rss_bytes,
    poll,
    prometheus_headers,
    sigterm_as_interrupt,
    sleep_until,
    table,
    timed_scrape,
)
from harness.exporter import Exporter
from harness.processes import ManagedProcess, free_port
from harness.qbittorrent import ADMIN_PASSWORD, ADMIN_USER, QBittorrent, add_mix
from harness.torrents import CLOSED_ANNOUNCE_URL, TorrentSpec
from qbt_exporter.qbittorrent import replybody

PEER_PACKAGE = "prometheus-qbittorrent-exporter"
PEER_VERSION = "1.7.0"
SCRAPE_TIMEOUT = 10.0
# Targets of the performance issue (13), each a ratio or figure of this one run.
TARGET_RATIO = 0.25  # our scrape latency ÷ the peer's
TARGET_FLOOR_RATIO = 1.25  # our scrape latency ÷ qBittorrent's own sync/maindata (what we read)
TARGET_QBT_CPU_RATIO = 1.25  # qBittorrent's CPU per scrape of ours ÷ its CPU for one sync/maindata
# states a freshly added torrent passes through before it settles
UNSETTLED = frozenset(
    {"checkingUP", "checkingDL", "checkingResumeData", "queuedForChecking", "metaDL", "allocating", "moving"}
)
CATEGORIES = ("", "", "linux", "movies", "tv")
TAGS: tuple[tuple[str, ...], ...] = ((), (), ("hd",), ("seed", "private"))


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qbt-exporter-bench"


def ensure_peer_venv() -> Path:
    """The peer's venv with ``prometheus-qbittorrent-exporter==1.7.0``; created and filled only once."""
    venv = cache_dir() / "peer-venv"
    program = venv / "bin" / "qbittorrent-exporter"
    marker = venv / f".installed-{PEER_VERSION}"
    if program.exists() and marker.exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    print(f"installing {PEER_PACKAGE}=={PEER_VERSION} into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{PEER_PACKAGE}=={PEER_VERSION}"],
        check=True,
    )
    marker.write_text(f"{PEER_PACKAGE}=={PEER_VERSION}\n")
    return venv


def peer_versions(venv: Path) -> str:
    """The versions the peer actually runs with (its own, its qBittorrent client, prometheus_client)."""
    code = (
        "import importlib.metadata as m, sys;"
        f"print(', '.join(f'{{n}} {{m.version(n)}}' for n in ('{PEER_PACKAGE}', 'qbittorrent-api',"
        " 'prometheus-client')), '| Python', sys.version.split()[0])"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def bench_specs(count: int) -> list[TorrentSpec]:
    """``count`` small single-file torrents: seeding (data present, skip_checking), every fifth paused."""
    specs = []
    for i in range(count):
        paused = i % 5 == 0
        specs.append(
            TorrentSpec(
                key=f"bench-{i:05d}",
                name=f"bench-{i:05d}.bin",
                size=4096 * (1 + i % 8),
                expected_state="pausedUP" if paused else "stalledUP",
                category=CATEGORIES[i % len(CATEGORIES)],
                tags=TAGS[i % len(TAGS)],
                paused=paused,
                skip_checking=True,
                working_tracker=False,
            )
        )
    return specs


class PeerExporter:
    """The peer, run from its venv on a free port in front of one qBittorrent."""

    def __init__(self, root: Path, venv: Path, qbt: QBittorrent) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root),
            "QBITTORRENT_HOST": "127.0.0.1",
            "QBITTORRENT_PORT": str(qbt.web_port),
            "QBITTORRENT_USER": ADMIN_USER,
            "QBITTORRENT_PASS": ADMIN_PASSWORD,
            "EXPORTER_ADDRESS": "127.0.0.1",
            "EXPORTER_PORT": str(self.port),
            "EXPORT_METRICS_BY_TORRENT": "True",
            "PYTHONUNBUFFERED": "1",
        }
        self.process = ManagedProcess(
            "peer-exporter", [str(venv / "bin" / "qbittorrent-exporter")], root / "peer-exporter.log", env=env
        )

    def start(self) -> None:
        self.process.start()

        def listening() -> bool:
            self.process.check_alive()
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True

        poll(listening, 30, f"the peer exporter on {self.url}")

    def stop(self) -> None:
        self.process.stop()


@dataclass
class Side:
    """What one exporter's scrapes cost."""

    name: str
    url: str
    pid: int
    warmups: list[Scrape] = field(default_factory=list)
    scrapes: list[Scrape] = field(default_factory=list)
    qbt_pid: int = 0
    peak_rss: int = 0

    @property
    def latency(self) -> float:
        return median([s.wall for s in self.scrapes])

    @property
    def cpu(self) -> list[float]:
        return [s.cpu[self.pid] for s in self.scrapes]

    @property
    def qbt_cpu(self) -> list[float]:
        return [s.cpu[self.qbt_pid] for s in self.scrapes]

    @property
    def series(self) -> int:
        return self.scrapes[-1].series

    @property
    def data_series(self) -> int:
        """Series named ``qbittorrent_*``: what the exporter says about qBittorrent, not about itself."""
        return self.scrapes[-1].series_with_prefix("qbittorrent_") - self.scrapes[-1].series_with_prefix(
            "qbittorrent_exporter_"
        )


class Upstream:
    """A logged-in session on qBittorrent to time its own list calls."""

    def __init__(self, qbt: QBittorrent) -> None:
        self.api = qbt.api
        self.api.login()
        assert qbt.process.pid is not None
        self.qbt_pid = qbt.process.pid
        # what our exporter asks this qBittorrent for (plain replies on loopback): the floor is
        # the list as we get it
        self.accept_encoding = replybody.accept_encoding(qbt.url)

    def time_get(self, path: str, encoding: str | None = None, **params: str) -> tuple[float, float]:
        """Wall seconds of one call, body read, and qBittorrent's CPU seconds for it; asked with
        our exporter's ``Accept-Encoding`` unless ``encoding`` says otherwise."""
        headers = {"Accept-Encoding": encoding or self.accept_encoding}
        cpu_started = cpu_seconds(self.qbt_pid)
        started = time.perf_counter()
        reply = self.api.session.get(
            f"{self.api.base_url}/api/v2/{path}", params=params, headers=headers, timeout=30
        )
        _ = reply.content
        elapsed = time.perf_counter() - started
        reply.raise_for_status()
        return elapsed, cpu_seconds(self.qbt_pid) - cpu_started


@dataclass
class PeerResult:
    torrents: int
    qbt_version: str
    peer_versions: str
    add_seconds: float
    states: dict[str, int]
    ours: Side
    peer: Side
    torrents_info: list[float] = field(default_factory=list)
    maindata: list[float] = field(default_factory=list)
    maindata_qbt_cpu: list[float] = field(default_factory=list)
    maindata_gzip: list[float] = field(default_factory=list)  # for information: as most clients ask
    maindata_gzip_qbt_cpu: list[float] = field(default_factory=list)
    upstream_encoding: str = ""


def run(torrents: int, scrapes: int, interval: float, root: Path) -> PeerResult:
    venv = ensure_peer_venv()
    versions = peer_versions(venv)
    qbt = QBittorrent(root / "qbt", "qbittorrent")
    ours_proc: Exporter | None = None
    peer_proc: PeerExporter | None = None
    try:
        qbt.start()
        qbt_version = qbt.api.app_version()
        started = time.monotonic()
        add_mix(qbt, bench_specs(torrents), root / "qbt", CLOSED_ANNOUNCE_URL)

        def settled() -> dict[str, int] | None:
            info = qbt.api.torrents_info()
            states: dict[str, int] = {}
            for t in info:
                states[t["state"]] = states.get(t["state"], 0) + 1
            if len(info) == torrents and not UNSETTLED & set(states):
                return states
            return None

        states = poll(settled, 180, f"{torrents} settled torrents", interval=1.0)
        add_seconds = time.monotonic() - started
        assert qbt.process.pid is not None
        ours_proc = Exporter(root, qbt.url, name="ours")
        ours_proc.start()
        peer_proc = PeerExporter(root, venv, qbt)
        peer_proc.start()
        assert ours_proc.process.pid is not None and peer_proc.process.pid is not None
        ours = Side("ours", f"{ours_proc.url}/metrics", ours_proc.process.pid, qbt_pid=qbt.process.pid)
        peer = Side("peer 1.7.0", f"{peer_proc.url}/metrics", peer_proc.process.pid, qbt_pid=qbt.process.pid)
        result = PeerResult(torrents, qbt_version, versions, add_seconds, states, ours, peer)
        _measure(result, qbt, scrapes, interval)
        ours.peak_rss = peak_rss_bytes(ours.pid)
        peer.peak_rss = peak_rss_bytes(peer.pid)
        return result
    except BaseException:
        for proc in (ours_proc, peer_proc, qbt):
            if proc is not None:
                print(proc.process.log_tail(2000), file=sys.stderr)
        raise
    finally:
        for stop in (
            peer_proc.stop if peer_proc else None,
            ours_proc.stop if ours_proc else None,
            qbt.stop,
        ):
            if stop is not None:
                with contextlib.suppress(Exception):
                    stop()


def _scrape(session: requests.Session, side: Side) -> Scrape:
    scrape = timed_scrape(session, side.url, prometheus_headers(SCRAPE_TIMEOUT), [side.pid, side.qbt_pid], 60)
    if scrape.status != 200:
        raise RuntimeError(f"{side.name} answered {scrape.status}: {scrape.text[:500]}")
    return scrape


def _measure(result: PeerResult, qbt: QBittorrent, scrapes: int, interval: float) -> None:
    session = requests.Session()
    session.trust_env = False
    ours, peer = result.ours, result.peer
    # warm-up: ours reads every torrent's properties once; the second scrape is its first steady one
    for side in (ours, peer, ours, peer):
        side.warmups.append(_scrape(session, side))
        time.sleep(1.0)
    if "qbittorrent_up 1" not in ours.warmups[-1].text:
        raise RuntimeError("our exporter does not report qbittorrent_up 1 after its warm-up")
    upstream = Upstream(qbt)
    result.upstream_encoding = upstream.accept_encoding
    first = time.monotonic()
    for index in range(scrapes):
        sleep_until(first + index * interval)
        order = (ours, peer) if index % 2 == 0 else (peer, ours)
        for side in order:
            side.scrapes.append(_scrape(session, side))
            time.sleep(0.5)
        # Each upstream call after a pause: right after a big reply qBittorrent is still busy for
        # a while (sync/maindata straight after torrents/info measured ~2x slower), which would
        # bias whichever call comes second. The order alternates too.
        calls = [
            ("torrents/info", None, result.torrents_info, [], {}),
            ("sync/maindata", None, result.maindata, result.maindata_qbt_cpu, {"rid": "0"}),
            ("sync/maindata", "gzip", result.maindata_gzip, result.maindata_gzip_qbt_cpu, {"rid": "0"}),
        ]
        for path, encoding, walls, cpus, params in calls if index % 2 == 0 else calls[::-1]:
            # qBittorrent's CPU is read from /proc on both sides of the call: the pause before it
            # lets the previous reply's work finish, so none of it is counted here.
            wall, cpu = upstream.time_get(path, encoding, **params)
            walls.append(wall)
            cpus.append(cpu)
            time.sleep(0.5)


def our_requests(side: Side) -> list[dict[str, float]]:
    """Our requests to qBittorrent in each steady scrape, by endpoint: the deltas of
    ``qbittorrent_exporter_requests_total`` from the scrape before (the last warm-up for the first)."""
    name = "qbittorrent_exporter_requests_total"
    counts = [OwnMetrics.parse(s.text).by_label(name, "endpoint") for s in [side.warmups[-1], *side.scrapes]]
    return [counter_delta(after, before) for before, after in itertools.pairwise(counts)]


def report(result: PeerResult) -> str:
    ours, peer = result.ours, result.peer
    requests_of = our_requests(ours)
    out = [
        f"=== real qBittorrent {result.qbt_version} with {result.torrents:,} torrents: "
        f"ours vs {PEER_PACKAGE}=={PEER_VERSION} (EXPORT_METRICS_BY_TORRENT=True) ===",
        f"peer runs with: {result.peer_versions}",
        f"torrents added and settled in {result.add_seconds:.1f} s; states: "
        + ", ".join(f"{k}={v}" for k, v in sorted(result.states.items())),
        "",
        "warm-up: "
        + "; ".join(f"{side.name} {', '.join(fmt_s(s.wall) for s in side.warmups)}" for side in (ours, peer)),
        "",
        f"interleaved scrapes (X-Prometheus-Scrape-Timeout-Seconds: {SCRAPE_TIMEOUT:g}, Prometheus' Accept):",
    ]
    rows = []
    for index in range(len(ours.scrapes)):
        o, p = ours.scrapes[index], peer.scrapes[index]
        rows.append(
            [
                index + 1,
                "ours first" if index % 2 == 0 else "peer first",
                fmt_s(o.wall),
                f"{o.cpu[ours.pid]:.2f}",
                f"{o.cpu[ours.qbt_pid]:.2f}",
                f"{sum(requests_of[index].values()):.0f}",
                fmt_s(p.wall),
                f"{p.cpu[peer.pid]:.2f}",
                f"{p.cpu[peer.qbt_pid]:.2f}",
                fmt_s(result.torrents_info[index]),
                fmt_s(result.maindata[index]),
                f"{result.maindata_qbt_cpu[index]:.2f}",
            ]
        )
    out.append(
        table(
            [
                "#",
                "order",
                "ours wall",
                "ours CPU s",
                "qbt CPU s",
                "ours req",
                "peer wall",
                "peer CPU s",
                "qbt CPU s",
                "torrents/info",
                "sync/maindata",
                "its qbt CPU s",
            ],
            rows,
        )
    )
    ti = median(result.torrents_info)
    md = median(result.maindata)
    ratio = ours.latency / peer.latency
    cpu_ratio = median(ours.cpu) / median(peer.cpu) if median(peer.cpu) else float("nan")
    out += [
        "",
        "medians:",
        table(
            [
                "exporter",
                "scrape",
                "CPU s/scrape (median, mean)",
                "qBittorrent CPU s/scrape",
                "peak RSS",
                "series",
                "qbittorrent_* data series",
                "format",
            ],
            [
                [
                    side.name,
                    fmt_s(side.latency),
                    f"{median(side.cpu):.3f}, {mean(side.cpu):.3f}",
                    f"{median(side.qbt_cpu):.3f}",
                    fmt_mib(side.peak_rss),
                    f"{side.series:,}",
                    f"{side.data_series:,}",
                    side.scrapes[-1].content_type.split(";")[0],
                ]
                for side in (ours, peer)
            ],
        ),
        "",
        f"upstream, same run, asked with our Accept-Encoding ({result.upstream_encoding}): torrents/info "
        f"median {fmt_s(ti)}, sync/maindata median {fmt_s(md)} (qBittorrent CPU for it: median "
        f"{median(result.maindata_qbt_cpu):.3f} s); sync/maindata asked for gzip, for information: "
        f"median {fmt_s(median(result.maindata_gzip))} (qBittorrent CPU "
        f"{median(result.maindata_gzip_qbt_cpu):.3f} s)",
        "our requests to qBittorrent per steady scrape (qbittorrent_exporter_requests_total deltas): "
        + ", ".join(
            f"{endpoint} median {median([r.get(endpoint, 0.0) for r in requests_of]):g}"
            for endpoint in sorted({e for r in requests_of for e in r})
        ),
        f"ratio ours/peer: scrape latency {ratio:.2f}, exporter CPU {cpu_ratio:.2f}, "
        f"series {ours.series / peer.series:.1f}x as many",
        f"ours / torrents/info: {ours.latency / ti:.2f}; peer / torrents/info: {peer.latency / ti:.2f}",
        "",
        "targets:",
        *(target.line() for target in targets(result)),
    ]
    return "\n".join(out)


def targets(result: PeerResult) -> list[Target]:
    ours, peer = result.ours, result.peer
    return [
        Target("our scrape ÷ the peer's", ours.latency / peer.latency, TARGET_RATIO, " ×"),
        Target(
            "our scrape ÷ qBittorrent's own sync/maindata",
            ours.latency / median(result.maindata),
            TARGET_FLOOR_RATIO,
            " ×",
        ),
        Target(
            "qBittorrent CPU per scrape of ours ÷ its CPU for one sync/maindata",
            median(ours.qbt_cpu) / median(result.maindata_qbt_cpu),
            TARGET_QBT_CPU_RATIO,
            " ×",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_peer", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--torrents", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=11, help="scrapes of each exporter (at least 7)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between round starts")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.scrapes < 7:
        parser.error("--scrapes must be at least 7")
    print(
        f"bench_peer: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="qbt-bench-peer-") as tmp:
        result = run(args.torrents, args.scrapes, args.interval, Path(tmp))
    print(report(result))
    return check_exit(targets(result), args.check)


if __name__ == "__main__":
    raise SystemExit(main())
