"""The whole scrape with the list decoded by msgspec, against the same code as where msgspec is not
installed, on one real qBittorrent 4.5.2, alternately in one process.

Run: ``python -m benchmarks.bench_decoder [--torrents 1000] [--scrapes 12]``

Why this shape: ``bench_list`` times the list read alone; this answers whether the whole scrape
gains (issue 13: "take it only if the whole scrape gains"). Two exporters of this checkout are
built in one process and their WSGI apps called directly (``bench_simulator.InProcess``, every
collector on): one reads the list with msgspec, the other's flavour was made while
``listdecoder.msgspec`` was None, as on a platform without msgspec's wheels. They scrape the same
qBittorrent (``bench_peer``'s torrents, settled) turn about, so the machine's noise hits both
alike; process CPU and wall time per scrape, medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_peer import UNSETTLED, bench_specs
from benchmarks.bench_simulator import InProcess
from benchmarks.common import poll
from harness.qbittorrent import ADMIN_PASSWORD, QBittorrent, add_mix
from harness.torrents import CLOSED_ANNOUNCE_URL
from qbt_exporter.cli import build
from qbt_exporter.config import parse
from qbt_exporter.qbittorrent.flavours import listdecoder

SCRAPE_TIMEOUT = 10.0


def exporter(url: str, *, msgspec: bool) -> InProcess:
    """An in-process exporter of ``url``, warmed up (its flavour is made at its first scrape)."""
    installed = listdecoder.msgspec
    if not msgspec:
        listdecoder.msgspec = None
    try:
        config = parse(
            ["--qbittorrent.url", url, "--log.level", "warning"],
            environ={"QBITTORRENT_PASSWORD": ADMIN_PASSWORD},
        )
        scraper = InProcess(*build(config))
        for _ in range(3):
            scraper.scrape(SCRAPE_TIMEOUT)
    finally:
        listdecoder.msgspec = installed
    return scraper


def compare(qbt: QBittorrent, scrapes: int) -> None:
    exporters = {"msgspec": exporter(qbt.url, msgspec=True), "stdlib": exporter(qbt.url, msgspec=False)}
    cpu: dict[str, list[float]] = {name: [] for name in exporters}
    wall: dict[str, list[float]] = {name: [] for name in exporters}
    try:
        for run in range(scrapes):
            for name in list(exporters) if run % 2 else reversed(exporters):
                started_cpu, started = time.process_time(), time.perf_counter()
                exporters[name].scrape(SCRAPE_TIMEOUT)
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - started_cpu)
                time.sleep(0.5)
    finally:
        for scraper in exporters.values():
            scraper.close()
    for name in exporters:
        print(
            f"  {name:<8} CPU/scrape median {statistics.median(cpu[name]):.4f} s  "
            f"wall median {statistics.median(wall[name]):.3f} s"
        )
    ratio_cpu = statistics.median(cpu["msgspec"]) / statistics.median(cpu["stdlib"])
    ratio_wall = statistics.median(wall["msgspec"]) / statistics.median(wall["stdlib"])
    print(f"  msgspec / stdlib: {ratio_cpu:.2f} x the CPU per scrape, {ratio_wall:.2f} x the wall time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torrents", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=12, help="scrapes of each exporter")
    args = parser.parse_args()
    if listdecoder.msgspec is None:
        sys.exit("bench_decoder: msgspec is not installed here, nothing to compare")
    print(
        f"bench_decoder: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
        f"real qBittorrent with {args.torrents} torrents, {args.scrapes} scrapes each, alternately"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        qbt = QBittorrent(root / "qbt", "qbittorrent")
        try:
            qbt.start()
            add_mix(qbt, bench_specs(args.torrents), root / "qbt", CLOSED_ANNOUNCE_URL)

            def settled() -> bool | None:
                info = qbt.api.torrents_info()
                return (len(info) == args.torrents and not UNSETTLED & {t["state"] for t in info}) or None

            poll(settled, 180, "torrents settled", interval=1.0)
            compare(qbt, args.scrapes)
        finally:
            qbt.stop()


if __name__ == "__main__":
    main()
