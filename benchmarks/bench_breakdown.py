"""Where one scrape of N torrents spends its time inside the exporter, phase by phase.

Run: ``python -m benchmarks.bench_breakdown [--torrents 10000] [--repeat 5]``

Every phase works on the same real reply of the simulated qBittorrent 4.0.4 (latency off, so the
HTTP phase is the transfer alone), and each is timed over ``--repeat`` runs (median). The two
renderers are timed on the same families, so their ratio holds whatever the machine's noise.
Only the families built from the list are here (no properties pass, no trackers reading):
``benchmarks.bench_render`` times every collector's, against a baseline commit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from prometheus_client.exposition import generate_latest

from benchmarks.common import get_retried, simulator_session
from qbt_exporter import web
from qbt_exporter.collectors import Collectors
from qbt_exporter.exposition import AsRegistry, render_text
from qbt_exporter.qbittorrent.flavours.common import parse_torrents, parse_transfer
from qbt_exporter.qbittorrent.model import ServerInfo, Snapshot
from qbt_exporter.scraper import ScrapeResult
from qbt_exporter.simulator import Simulator, SimulatorConfig
from qbt_exporter.stats import Stats


def median_seconds(
    work: Callable[[], Any], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> tuple[float, Any]:
    """The median time of ``repeat`` runs of ``work`` on ``clock``, and the last run's result."""
    times, result = [], None
    for _ in range(repeat):
        started = clock()
        result = work()
        times.append(clock() - started)
    return statistics.median(times), result


def _gzip_text(text: bytes) -> bytes:
    compressor = web._compressor()
    return compressor.compress(text) + compressor.flush()


def run(torrents: int, repeat: int) -> None:
    config = SimulatorConfig(torrents=torrents, latency=False, churn=False, time_scale=0)
    with Simulator(config) as sim:
        session = simulator_session(sim)
        transfer_body = get_retried(session, f"{sim.url}/query/transferInfo")
        http, body = median_seconds(lambda: get_retried(session, f"{sim.url}/query/torrents"), repeat)
    decode, items = median_seconds(lambda: json.loads(body), repeat)
    parse, (parsed, _) = median_seconds(
        lambda: parse_torrents((obj.get("hash"), obj) for obj in items), repeat
    )
    transfer, _ = parse_transfer(json.loads(transfer_body))
    snapshot = Snapshot(ServerInfo("v4.0.4", "legacy", "17"), transfer, parsed)
    stats = Stats()
    collectors = Collectors(None, stats)  # type: ignore[arg-type]  # families() never scrapes
    build, families = median_seconds(lambda: collectors.families(ScrapeResult(snapshot)), repeat)
    fast, text = median_seconds(lambda: render_text(families), repeat)
    gzip, _ = median_seconds(lambda: _gzip_text(text), repeat)
    registry = AsRegistry(families)
    slow, reference = median_seconds(lambda: generate_latest(registry), repeat)  # type: ignore[arg-type]
    assert text == reference, "the fast renderer must match prometheus_client byte for byte"
    series = sum(1 for line in text.splitlines() if not line.startswith(b"#"))
    total = http + decode + parse + build + fast + gzip
    print(
        f"\n{torrents} torrents, {series} series, {len(body) / 1e6:.1f} MB of JSON, "
        f"{len(text) / 1e6:.1f} MB of exposition (median of {repeat})"
    )
    rows = [
        ("HTTP transfer of /query/torrents", http),
        ("json.loads", decode),
        ("wire -> model (flavour)", parse),
        ("model -> metric families", build),
        ("render text (ours)", fast),
        ("gzip it (web's compressor)", gzip),
    ]
    for name, seconds in rows:
        print(f"  {name:<34} {seconds:7.3f} s  {seconds / total:6.1%}")
    print(f"  {'total':<34} {total:7.3f} s")
    print(f"  render with prometheus_client's generate_latest: {slow:.3f} s = {slow / fast:.1f}x ours")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torrents", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for n in args.torrents:
        run(n, args.repeat)


if __name__ == "__main__":
    main()
