"""What the exporter's own HTTP client costs per request, against the simulator with latency off.

Run: ``python -m benchmarks.bench_client [--torrents 10000] [--calls 500] [--repeat 5] [--baseline main]``

Two figures, because a scrape of N torrents makes one big call and many small ones: the wall time of
``Client.get_json("/query/torrents")`` (the list of N torrents, JSON decoded) and the client's CPU
time per small call, measured with ``time.thread_time`` of the calling thread so that the
simulator's own work (another thread) is left out. The small calls are the per-torrent ones, made
as a scrape makes them (the flavour's ``properties`` and ``trackers``, value parsing included):
``propertiesGeneral`` and ``propertiesTrackers`` of the simulated 4.0.4, ``torrents/properties`` and
``torrents/trackers`` of its v2 WebUI.

With ``--baseline REF`` the package at REF is imported beside this code (``bench_render``'s
``load_baseline``) and both make the same calls against the same simulators, interleaved round by
round (baseline, this code, this code, baseline, ...), so the machine's noise falls on both alike;
each row then shows both medians and their ratio.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_render import BASELINE_PACKAGE, load_baseline
from qbt_exporter.simulator import Simulator, SimulatorConfig

KINDS = (("legacy", "properties"), ("legacy", "trackers"), ("v2", "properties"), ("v2", "trackers"))
WIRE_NAMES = {
    ("legacy", "properties"): "propertiesGeneral",
    ("legacy", "trackers"): "propertiesTrackers",
    ("v2", "properties"): "torrents/properties",
    ("v2", "trackers"): "torrents/trackers",
}


class Version:
    """One version of the client: a logged-in flavour per simulator, from package ``package``."""

    def __init__(self, label: str, package: str, sims: dict[str, tuple[Simulator, SimulatorConfig]]) -> None:
        self.label = label
        client_mod = importlib.import_module(f"{package}.qbittorrent.client")
        self.deadline = importlib.import_module(f"{package}.deadline").Deadline
        stats = importlib.import_module(f"{package}.stats").Stats()
        legacy = importlib.import_module(f"{package}.qbittorrent.flavours.legacy").LegacyFlavour
        v2 = importlib.import_module(f"{package}.qbittorrent.flavours.v2").V2Flavour
        self.clients: dict[str, Any] = {}
        self.flavours: dict[str, Any] = {}
        for api, (sim, config) in sims.items():
            client = client_mod.Client(sim.url, config.username, config.password, stats=stats, timeout=60)
            if api == "legacy":
                client.set_dialect("/login", "/logout")
                self.flavours[api] = legacy(client, stats, "17")
            else:
                self.flavours[api] = v2(client, stats, "2.9.3")
            self.clients[api] = client

    def cpu_per_call(self, api: str, kind: str, hashes: list[str]) -> float:
        """Thread CPU seconds per call of ``kind`` for each of ``hashes``."""
        fetch: Callable[[str, Any], Any] = getattr(self.flavours[api], kind)
        deadline = self.deadline(600)
        started = time.thread_time()
        for torrent_hash in hashes:
            if fetch(torrent_hash, deadline) is None:
                raise RuntimeError(f"{self.label}: {api} {kind} of {torrent_hash} found no torrent")
        return (time.thread_time() - started) / len(hashes)

    def list_seconds(self) -> tuple[float, int]:
        client = self.clients["legacy"]
        started = time.perf_counter()
        items = client.get_json("/query/torrents", endpoint="torrents", deadline=self.deadline(60))
        return time.perf_counter() - started, len(items)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def run(torrents: int, calls: int, repeat: int, baseline: str | None) -> None:
    configs = {
        api: SimulatorConfig(torrents=torrents, latency=False, churn=False, time_scale=0, api=api)
        for api in ("legacy", "v2")
    }
    with Simulator(configs["legacy"]) as legacy_sim, Simulator(configs["v2"]) as v2_sim:
        sims = {"legacy": (legacy_sim, configs["legacy"]), "v2": (v2_sim, configs["v2"])}
        hashes = legacy_sim.torrent_hashes()[:calls]
        with tempfile.TemporaryDirectory() as tmp:
            versions: list[Version] = []
            if baseline is not None:
                commit = load_baseline(baseline, Path(tmp))
                label = commit if commit.startswith(baseline) else f"{baseline} {commit}"
                versions.append(Version(label, BASELINE_PACKAGE, sims))
            versions.append(Version("this code", "qbt_exporter", sims))
            print(f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
            for version in versions:  # warm-up: log in, fill every cache once
                for api, kind in KINDS:
                    version.cpu_per_call(api, kind, hashes[:20])
            cpu: dict[tuple[str, str, str], list[float]] = {}
            lists: dict[str, list[float]] = {v.label: [] for v in versions}
            listed = 0
            for round_ in range(repeat):
                order = versions if round_ % 2 == 0 else versions[::-1]
                for version in order:
                    seconds, listed = version.list_seconds()
                    lists[version.label].append(seconds)
                    for api, kind in KINDS:
                        per_call = version.cpu_per_call(api, kind, hashes)
                        cpu.setdefault((version.label, api, kind), []).append(per_call)
            for version in versions:
                version.close()
    print(
        f"{torrents} torrents ({listed} listed), {len(hashes)} calls of each kind, median of {repeat} rounds"
    )
    for version in versions:
        wall = statistics.median(lists[version.label])
        print(f"  {version.label}: get_json(/query/torrents) {wall:.3f} s wall")
    for api, kind in KINDS:
        medians = [statistics.median(cpu[(v.label, api, kind)]) * 1e3 for v in versions]
        figures = ", ".join(f"{v.label} {m:.3f} ms" for v, m in zip(versions, medians, strict=True))
        ratio = f"; new/old {medians[-1] / medians[0]:.2f}" if len(versions) == 2 else ""
        print(f"  client CPU per {api} {WIRE_NAMES[(api, kind)]} call: {figures}{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torrents", type=int, default=10000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", help="git ref to compare with (e.g. main)")
    args = parser.parse_args()
    run(args.torrents, args.calls, args.repeat, args.baseline)


if __name__ == "__main__":
    main()
