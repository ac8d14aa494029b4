"""The simulator's command line: a simulator in the foreground until interrupted.

Why: manual runs, the benchmarks and the soak test run the simulator as its own process (so it can
be killed, frozen and restarted like a real qBittorrent). The line printed once listening names the
URL; callers wait for it.
"""

from __future__ import annotations

import argparse
import time

from qbt_exporter.simulator.app import Simulator
from qbt_exporter.simulator.config import SimulatorConfig

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run a simulator in the foreground until interrupted (manual runs and benchmarks)."""
    parser = argparse.ArgumentParser(
        prog="python -m qbt_exporter.simulator",
        description="Simulated qBittorrent 4.0.4 (WebUI API 17) or 4.6.7 (/api/v2).",
    )
    parser.add_argument("--torrents", type=int, default=50, help="number of torrents (default 50)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind, 0 = any free (default 8080)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="adminadmin")
    parser.add_argument("--latency", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--churn", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument(
        "--api", choices=("legacy", "v2"), default="legacy", help="legacy 4.0.4 (default) or /api/v2 4.6.7"
    )
    args = parser.parse_args(argv)
    config = SimulatorConfig(
        torrents=args.torrents,
        username=args.username,
        password=args.password,
        seed=args.seed,
        latency=args.latency,
        churn=args.churn,
        time_scale=args.time_scale,
        api=args.api,
    )
    with Simulator(config, host=args.host, port=args.port) as sim:
        version = "4.6.7 (/api/v2)" if args.api == "v2" else "4.0.4"
        print(f"simulated qBittorrent {version} with {args.torrents} torrents on {sim.url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0
