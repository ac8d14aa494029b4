"""The least a scrape of N simulated legacy torrents can cost, from parts measured in one run.

Run: ``python -m benchmarks.bench_floor [--torrents 10000] [--interval 15] [--calls 300]``

``bench_simulator`` measures the exporter; this measures what no exporter of ours could go below on
the same simulator, so that a missed target of issue 13 can be told apart from one that is out of
reach. Each part is the cheapest way to do a step the contract requires, timed here:

* the list: the simulator's own ``/query/torrents`` (the floor the targets divide by);
* decoding it: the fastest JSON decoder installed (msgspec or the stdlib's), into plain objects;
* the exposition: the families built from the list alone (no properties, no trackers) rendered and
  gzipped by the exporter's own renderer and compressor, which match prometheus_client byte for byte;
* a per-torrent call: a hand-written GET on a bare socket, as the simulator answers it, and as a real
  4.0.4 would (its 1.4 ms, the latency the simulator is told to charge, plus the bare client's CPU);
* how many calls the freshness promise needs per scrape, counted from two lists an interval apart:
  new torrents and changed states (fetched in the scrape that sees them), busy torrents (every
  scrape, within a fifth of the list's time), and the refreshes of the rest at the pace that keeps
  each value within the properties' max age (refreshed between scrapes at best).

Nothing here is the exporter's own overhead: model building, selection, caches and families of the
properties and trackers passes all come on top. So a target above a floor printed here is reachable
in principle, and one below it is not, on this machine, under this contract.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_breakdown import median_seconds
from benchmarks.bench_simulator import PASSWORD, TARGET_CPU, TARGET_RATIO, USERNAME, Upstream, _sim_counts
from benchmarks.common import fmt_s, poll
from harness.processes import REPO_ROOT, ManagedProcess, free_port
from qbt_exporter.collectors import Collectors
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import iter_chunks
from qbt_exporter.pertorrent import REFRESH_SHARE, refresh_age
from qbt_exporter.properties import DEFAULT_MAX_AGE, PLAN
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.flavours.legacy import LegacyFlavour
from qbt_exporter.qbittorrent.model import ServerInfo, Snapshot, Torrent
from qbt_exporter.scraper import ScrapeResult
from qbt_exporter.simulator.webui import PROPERTIES_LATENCY
from qbt_exporter.stats import Stats
from qbt_exporter.web import _gzip

try:
    import msgspec
except ImportError:  # pragma: no cover - msgspec is a dependency; the stdlib stands in without it
    msgspec = None


class BareCall:
    """A properties GET written and read by hand on a new socket (4.0.4 closes each): the least a
    Python client can do for one call."""

    def __init__(self, port: int, sid: str) -> None:
        self.address = ("127.0.0.1", port)
        self.head = (
            "GET /query/propertiesGeneral/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: SID=" + sid + "\r\n\r\n"
        )

    def __call__(self, torrent_hash: str) -> bytes:
        with socket.create_connection(self.address) as conn:
            conn.sendall(self.head.format(torrent_hash).encode())
            parts = []
            while chunk := conn.recv(65536):
                parts.append(chunk)
        reply = b"".join(parts)
        if not reply.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"the simulator refused a bare call: {reply[:60]!r}")
        return reply


def _per_call(calls: dict[str, Callable[[str], object]], hashes: list[str]) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per call of each way, in interleaved rounds over the same hashes."""
    rounds = 4
    size = max(1, len(hashes) // rounds)
    walls: dict[str, list[float]] = {name: [] for name in calls}
    cpus: dict[str, list[float]] = {name: [] for name in calls}
    for index in range(rounds):
        chunk = hashes[index * size : (index + 1) * size]
        order = list(calls.items()) if index % 2 == 0 else list(reversed(calls.items()))
        for name, call in order:
            wall, cpu = time.perf_counter(), time.thread_time()
            for torrent_hash in chunk:
                call(torrent_hash)
            walls[name].append((time.perf_counter() - wall) / len(chunk))
            cpus[name].append((time.thread_time() - cpu) / len(chunk))
    return {name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in calls}


def _calls_needed(
    before: list[Torrent], after: list[Torrent], interval: float, max_age: float
) -> dict[str, float]:
    """The properties calls one scrape needs under the freshness promise, by kind (see the module).

    Each torrent counts once, in the policy's order: new or changed, else busy, else proved
    unchanged by the list, else refreshed at the pace of its own refresh age (``refresh_age``)."""
    assert PLAN.busy is not None and PLAN.settled is not None
    listed_before = {torrent.hash: torrent for torrent in PLAN.wanted(before)}
    wanted = PLAN.wanted(after)
    counts = {"wanted": float(len(wanted)), "changed": 0.0, "busy": 0.0, "proved": 0.0, "aged": 0.0}
    for torrent in wanted:
        previous = listed_before.get(torrent.hash)
        mark = PLAN.settled(torrent)
        if previous is None or PLAN.key(torrent) != PLAN.key(previous):
            counts["changed"] += 1
        elif PLAN.busy(torrent):
            counts["busy"] += 1
        elif mark is not None and mark == PLAN.settled(previous):
            counts["proved"] += 1
        else:
            counts["aged"] += interval / refresh_age(torrent.hash, max_age)
    return counts


def run(torrents: int, interval: float, calls: int, settle: float, root: Path) -> int:
    sim_port, stats_port = free_port(), free_port()
    url = f"http://127.0.0.1:{sim_port}"
    simulator = ManagedProcess(
        f"simulator-{torrents}",
        [sys.executable, "-m", "benchmarks.common", "simulator", "--torrents", str(torrents),
         "--port", str(sim_port), "--stats-port", str(stats_port)],
        root / f"simulator-{torrents}.log",
        cwd=REPO_ROOT,
    )  # fmt: skip
    stats = Stats()
    client = Client(url, USERNAME, PASSWORD, stats=stats, timeout=120)  # logs in at its first call
    client.set_dialect("/login", "/logout")
    flavour = LegacyFlavour(client, stats, "17")
    try:
        simulator.start()
        poll(lambda: _sim_counts(f"http://127.0.0.1:{stats_port}/") is not None, 120, "the simulator")
        upstream = Upstream(url)
        upstream.login()
        upstream.time_list()  # builds the simulator's caches: not a sample
        # bench_simulator's steady scrapes come after its warm-up and settling: so do these parts
        # (the simulator's first minutes see more state changes than it settles to).
        time.sleep(settle)
        lists = [upstream.time_list() for _ in range(5)]
        list_wall = statistics.median(wall for wall, _, _ in lists)

        deadline = Deadline(600)
        body = upstream.session.get(
            f"{url}/query/torrents", headers={"Connection": "close"}, timeout=120
        ).content
        decoders: dict[str, Callable[[bytes], Any]] = {"json.loads": json.loads}
        if msgspec is not None:
            decoders["msgspec.json.decode"] = msgspec.json.decode
        decode_times = {
            name: median_seconds(lambda d=decode: d(body), 5, time.thread_time)[0]
            for name, decode in decoders.items()
        }
        decoder, decode_cpu = min(decode_times.items(), key=lambda item: item[1])

        before = flavour.snapshot(deadline)[1]
        list_started = time.monotonic()
        read_wall, read_cpu = time.perf_counter(), time.thread_time()
        transfer, listed = flavour.snapshot(deadline)
        read_wall, read_cpu = time.perf_counter() - read_wall, time.thread_time() - read_cpu
        snapshot = Snapshot(ServerInfo("v4.0.4", "legacy", "17"), transfer, listed)
        collectors = Collectors(None, stats)  # type: ignore[arg-type]  # families() never scrapes

        def exposition() -> int:
            families = collectors.families(ScrapeResult(snapshot))
            return sum(map(len, _gzip(iter_chunks(families))))

        render_cpu, gzipped = median_seconds(exposition, 3, time.thread_time)

        sid = upstream.session.cookies.get("SID")
        bare = BareCall(sim_port, sid)
        per_call = _per_call(
            {"bare socket": bare, "the exporter's client": lambda h: flavour.properties(h, deadline)},
            [torrent.hash for torrent in listed[:calls]],
        )
        time.sleep(max(0.0, list_started + interval - time.monotonic()))
        after = flavour.snapshot(deadline)[1]
        needed = _calls_needed(before, after, interval, DEFAULT_MAX_AGE)
    finally:
        client.close()
        simulator.stop()

    bare_cpu = per_call["bare socket"][1]
    real_call = PROPERTIES_LATENCY + bare_cpu
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    lines = [
        f"bench_floor: {when}, {torrents:,} simulated 4.0.4 torrents (latency and churn on, after "
        f"{settle:g} s), interval {interval:g} s, properties max age {DEFAULT_MAX_AGE:g} s",
        "",
        "parts (medians):",
        f"  the simulator's own /query/torrents, body read: {fmt_s(list_wall)} "
        f"({', '.join(fmt_s(wall) for wall, _, _ in lists)})",
        f"  decoding it, CPU: {fmt_s(decode_cpu)} with {decoder} "
        f"({', '.join(f'{name} {fmt_s(cpu)}' for name, cpu in decode_times.items())})",
        f"  for information, the exporter's own list read: {fmt_s(read_wall)} wall, {fmt_s(read_cpu)} CPU",
        f"  the families of the list rendered and gzipped, CPU: {fmt_s(render_cpu)} ({gzipped / 1e6:.1f} MB)",
    ]
    for name, (wall, cpu) in per_call.items():
        lines.append(f"  one properties call, {name}: {wall * 1e3:.2f} ms wall, {cpu * 1e3:.2f} ms CPU")
    lines.append(
        f"  one properties call as a real 4.0.4 would answer the bare client: "
        f"{PROPERTIES_LATENCY * 1e3:.1f} ms + {bare_cpu * 1e3:.2f} ms = {real_call * 1e3:.2f} ms"
    )
    busy_seconds = min(needed["busy"] * real_call, REFRESH_SHARE * list_wall)
    lines += [
        "",
        f"calls the freshness promise needs per scrape (two lists {interval:g} s apart, "
        f"{needed['wanted']:,.0f} torrents wanting properties):",
        f"  new or changed state {needed['changed']:,.0f}; busy {needed['busy']:,.0f} (within "
        f"{REFRESH_SHARE:.0%} of the list: {fmt_s(busy_seconds)}); proved unchanged by the list "
        f"{needed['proved']:,.0f}; refreshes at the pace of the max age {needed['aged']:,.1f}",
        "",
        "floors of a steady-state scrape (the list + parts), the calls answered as a real 4.0.4 would:",
    ]
    path = decode_cpu + render_cpu
    changed_seconds = needed["changed"] * real_call
    for name, extra in (
        ("the list, its decoding and the exposition alone", path),
        ("+ the calls of new and changed torrents", path + changed_seconds),
        ("+ the busy torrents' calls within their budget", path + changed_seconds + busy_seconds),
    ):
        ratio = (list_wall + extra) / list_wall
        side = "within" if ratio <= TARGET_RATIO else "above"
        lines.append(
            f"  {name:<50} {fmt_s(list_wall + extra)} = {ratio:.2f} × the list ({side} {TARGET_RATIO} ×)"
        )
    per_scrape = needed["changed"] + busy_seconds / real_call + needed["aged"]
    cpu_floor = path + per_scrape * bare_cpu
    lines += [
        "",
        f"floor of the exporter's CPU per scrape: decoding and exposition {fmt_s(path)} + {per_scrape:,.0f} "
        f"calls × {bare_cpu * 1e3:.2f} ms = {fmt_s(cpu_floor)} "
        f"({'within' if cpu_floor <= TARGET_CPU else 'above'} the {TARGET_CPU} s target)",
    ]
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torrents", type=int, default=10000)
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between the two lists")
    parser.add_argument("--calls", type=int, default=300, help="properties calls timed each way")
    parser.add_argument(
        "--settle", type=float, default=355.0, help="seconds the simulator runs before the parts are timed"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as root:
        return run(args.torrents, args.interval, args.calls, args.settle, Path(root))


if __name__ == "__main__":
    raise SystemExit(main())
