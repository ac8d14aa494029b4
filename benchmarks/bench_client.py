"""What the exporter's own HTTP client costs per request, against the simulator with latency off.

Run: ``python -m benchmarks.bench_client [--torrents 10000] [--calls 500] [--repeat 5]``

Two figures, because a scrape of N torrents makes one big call and many small ones: the wall time of
``Client.get_json("/query/torrents")`` (gzip, the list of N torrents, JSON decoded) and the client's
CPU time per small call (``propertiesGeneral``, one torrent each), measured with ``time.thread_time``
of the calling thread so that the simulator's own work (another thread) is left out.
"""

from __future__ import annotations

import argparse
import statistics
import time

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.simulator import Simulator, SimulatorConfig
from qbt_exporter.stats import Stats


def run(torrents: int, calls: int, repeat: int) -> None:
    config = SimulatorConfig(torrents=torrents, latency=False, churn=False, time_scale=0)
    with Simulator(config) as sim:
        client = Client(sim.url, config.username, config.password, stats=Stats(), timeout=60)
        client.set_dialect("/login", "/logout")
        hashes = sim.torrent_hashes()[:calls]
        big: list[float] = []
        small: list[float] = []
        for _ in range(repeat):
            started = time.perf_counter()
            items = client.get_json("/query/torrents", endpoint="torrents", deadline=Deadline(60))
            big.append(time.perf_counter() - started)
            cpu = time.thread_time()
            for torrent_hash in hashes:
                client.get_json(
                    f"/query/propertiesGeneral/{torrent_hash}", endpoint="properties", deadline=Deadline(60)
                )
            small.append((time.thread_time() - cpu) / len(hashes))
        client.close()
    print(
        f"{torrents} torrents ({len(items)} listed), median of {repeat}: "
        f"get_json(/query/torrents) {statistics.median(big):.3f} s wall; "
        f"client CPU per propertiesGeneral call {statistics.median(small) * 1e3:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torrents", type=int, default=10000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    run(args.torrents, args.calls, args.repeat)


if __name__ == "__main__":
    main()
