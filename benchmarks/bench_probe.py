"""What /probe targets cost in memory, and whether eviction gives it back.

One exporter (``python -m qbt_exporter --config.file``, its own process) probes N simulated
qBittorrent 4.0.4s in turn (each its own simulator on its own port, in this process), then leaves
them idle until ``--probe.target-idle-timeout`` evicts them all. The exporter's resident memory
(``VmRSS``) is read at start, after the probes, and after the eviction::

    python -m benchmarks.bench_probe                    # 200 targets of 20 torrents
    python -m benchmarks.bench_probe --targets 100 --torrents 200
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from harness.processes import REPO_ROOT, ManagedProcess, free_port, wait_until
from qbt_exporter.simulator import Simulator, SimulatorConfig

IDLE_TIMEOUT = 60  # seconds (the exporter sweeps every 15 s): longer than probing them all takes


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def gauge(url: str, name: str, **labels: str) -> float | None:
    """The value of the one sample ``name{labels}`` on the exporter's /metrics, None if absent."""
    text = requests.get(f"{url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--torrents", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        config = SimulatorConfig(torrents=args.torrents, latency=False, churn=False)
        simulators = [stack.enter_context(Simulator(config)) for _ in range(args.targets)]
        root = Path(tmp)
        (root / "password").write_text(config.password + "\n")
        (root / "modules.yml").write_text(
            f"modules:\n  default:\n    password_file: {root / 'password'}\n    targets: ['127.0.0.1']\n"
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QBITTORRENT_", "QBT_EXPORTER_"))}
        exporter = ManagedProcess(
            "exporter",
            [
                sys.executable,
                "-m",
                "qbt_exporter",
                "--config.file",
                str(root / "modules.yml"),
                "--web.listen-address",
                f"127.0.0.1:{port}",
                "--probe.target-idle-timeout",
                f"{IDLE_TIMEOUT}s",
                "--probe.max-targets",
                str(args.targets + 10),
            ],
            root / "exporter.log",
            env=env,
            cwd=REPO_ROOT,
        )
        exporter.start()
        stack.callback(exporter.stop)
        wait_until(lambda: requests.get(f"{url}/healthz", timeout=2).ok, 30, what="exporter")
        pid = exporter.pid
        assert pid is not None
        gauge(url, "qbittorrent_exporter_probe_targets")
        baseline = rss_kib(pid)
        print(f"targets: {args.targets} x {args.torrents} torrents; RSS at start: {baseline / 1024:.1f} MiB")

        def probe(simulator: Simulator) -> None:
            reply = requests.get(f"{url}/probe", params={"target": simulator.url}, timeout=60)
            assert reply.ok and "qbittorrent_up 1.0" in reply.text, reply.text[:300]

        for round_ in range(1, args.rounds + 1):
            started = time.monotonic()
            with ThreadPoolExecutor(8) as pool:  # as Prometheus does: several scrapes at once
                list(pool.map(probe, simulators))
            probe_seconds = time.monotonic() - started
            live = gauge(url, "qbittorrent_exporter_probe_targets")
            loaded = rss_kib(pid)
            wait_until(
                lambda: gauge(url, "qbittorrent_exporter_probe_targets") == 0,
                IDLE_TIMEOUT * 6,
                interval=1,
                what="every target evicted",
            )
            wait_until(  # the logouts run on a thread of their own after the eviction
                lambda expected=round_ * args.targets: (
                    sum(s.requests_by_path.get("/logout", 0) for s in simulators) == expected
                ),
                60,
                interval=1,
                what="every evicted target logged out of",
            )
            after = rss_kib(pid)
            evicted = gauge(url, "qbittorrent_exporter_probe_target_evictions_total", reason="idle")
            logins = sum(simulator.logins_ok for simulator in simulators)
            print(
                f"round {round_}: probed in {probe_seconds:.1f} s; live {live:.0f}; logins so far {logins}; "
                f"evicted (idle) so far {evicted:.0f}, each logged out of"
            )
            each = (loaded - baseline) / args.targets
            print(f"  RSS with all targets: {loaded / 1024:6.1f} MiB (+{each:.0f} KiB a target over start)")
            over = (after - baseline) / 1024
            print(f"  RSS after eviction:   {after / 1024:6.1f} MiB ({over:+.1f} MiB over start)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
