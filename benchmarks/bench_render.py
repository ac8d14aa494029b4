"""The exporter's CPU from the model to the bytes on the wire, this code against a baseline commit.

Run: ``python -m benchmarks.bench_render [--torrents 10000] [--repeat 9] [--baseline main]``

What a real scrape does after its calls, on the same model for both versions: build every metric
family (every collector on: transfer, groups, torrents, exporter, properties, trackers, with the
values a properties pass fills in and a trackers reading for every torrent), render the text format
and gzip it as ``web`` does when Prometheus asks for gzip (it always does). Why it is built this way:

* The baseline is the package as committed at ``--baseline`` (``git archive``), imported beside the
  working tree's under another name, so both run in one process on one model, and the runs are
  interleaved (baseline, this code, baseline, ...): the machine's noise falls on both alike.
* Each phase is timed in thread CPU seconds (``time.thread_time``), median of ``--repeat``: the
  machine is shared, and wall time would count the other processes' turns.
* Both versions must write the same text, byte for byte, and it must be ``generate_latest``'s:
  checked before anything is timed (collector durations come from a fixed clock, so they agree).
* Then each version's memory for one build + render + gzip, traced by tracemalloc (peak above the
  model), and what this code keeps from one scrape to the next (nothing, if it says 0).

The model is the simulated qBittorrent 4.0.4's torrent list (decoded once, no HTTP timed here),
completed as a properties pass would complete it (wasted bytes, seeding time, connections).
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from prometheus_client.exposition import generate_latest

from benchmarks.common import get_retried, simulator_session
from qbt_exporter.exposition import AsRegistry
from qbt_exporter.qbittorrent.flavours.common import parse_torrents, parse_transfer
from qbt_exporter.qbittorrent.model import ServerInfo, Snapshot, TorrentProperties
from qbt_exporter.simulator import Simulator, SimulatorConfig

BASELINE_PACKAGE = "qbt_exporter_baseline"
TRACKER_STATUSES = ("working",) * 80 + ("not_contacted",) * 8 + ("updating",) * 4 + ("unregistered",) * 4
TRACKER_STATUSES += ("unreachable", "auth", "other", "no_tracker")


def load_baseline(ref: str, into: Path) -> str:
    """The package at ``ref`` as ``qbt_exporter_baseline`` under ``into``; returns the commit."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], check=True, capture_output=True, text=True
    ).stdout.strip()
    archive = subprocess.run(["git", "archive", ref, "qbt_exporter"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / BASELINE_PACKAGE
    (into / "qbt_exporter").rename(package)
    for source in package.rglob("*.py"):
        text = source.read_text()
        text = text.replace("from qbt_exporter", f"from {BASELINE_PACKAGE}")
        text = text.replace("import qbt_exporter", f"import {BASELINE_PACKAGE}")
        source.write_text(text)
    sys.path.insert(0, str(into))
    return commit


class Version:
    """One version of the code under test: its collectors and its web layer's render + gzip."""

    def __init__(self, label: str, package: str) -> None:
        self.label = label
        registry = importlib.import_module(f"{package}.collectors.registry")
        self.scraper = importlib.import_module(f"{package}.scraper")
        self.exposition = importlib.import_module(f"{package}.exposition")
        self.web = importlib.import_module(f"{package}.web")
        self.model = importlib.import_module(f"{package}.qbittorrent.model")
        stats = importlib.import_module(f"{package}.stats").Stats()
        self.collectors = registry.Collectors(None, stats, clock=lambda: 0.0)

    def families(self, result: Any) -> list[Any]:
        return self.collectors.families(result)  # type: ignore[no-any-return]

    def render(self, families: list[Any]) -> bytes:
        return self.exposition.render_text(families)  # type: ignore[no-any-return]

    def render_gzip(self, families: list[Any]) -> list[bytes]:
        """What ``web`` does for a gzip-accepting Prometheus: render family by family into gzip."""
        return self.web._encode(self.web._render(families, ""), True)  # type: ignore[no-any-return]


def scrape_result(version: Version, snapshot: Snapshot, selected: list[Any], trackers: dict[str, Any]) -> Any:
    """A full ScrapeResult of ``version``'s own classes over the shared model."""
    pertorrent = importlib.import_module(f"{version.scraper.__name__.rsplit('.', 1)[0]}.pertorrent")
    tracking = importlib.import_module(f"{version.scraper.__name__.rsplit('.', 1)[0]}.trackers")
    selection = importlib.import_module(f"{version.scraper.__name__.rsplit('.', 1)[0]}.selection")
    summaries = {h: tracking.TorrentTrackers(status, hosts) for h, (status, hosts) in trackers.items()}
    reading = tracking.TrackersReading(summaries, pertorrent.PassReport(skipped=0, max_age=912.5))
    return version.scraper.ScrapeResult(
        snapshot,
        duration=0.25,
        properties=pertorrent.PassReport(skipped=0, max_age=12.5),
        selected=selected,
        selection=selection.SelectionReport(),
        trackers=reading,
    )


def model(torrents: int) -> tuple[Snapshot, list[Any], dict[str, Any]]:
    """The simulator's list as the flavour parses it, the torrents completed from properties, and
    a trackers reading for each (mostly working, a few failing, one or two hosts)."""
    config = SimulatorConfig(torrents=torrents, latency=False, churn=False, time_scale=0)
    with Simulator(config) as sim:
        session = simulator_session(sim)
        transfer_body = get_retried(session, f"{sim.url}/query/transferInfo")
        body = get_retried(session, f"{sim.url}/query/torrents")
    parsed, _ = parse_torrents((obj.get("hash"), obj) for obj in json.loads(body))
    transfer, _ = parse_transfer(json.loads(transfer_body))
    snapshot = Snapshot(ServerInfo("v4.0.4", "legacy", "17"), transfer, parsed)
    rng = random.Random(13)
    selected = [
        t.with_properties(
            TorrentProperties(
                wasted=rng.choice((0, 0, 0, rng.randrange(1 << 24))),
                seeding_seconds=rng.randrange(1 << 24) if t.progress == 1 else 0,
                connections=rng.randrange(0, 60) if t.state in ("downloading", "uploading") else 0,
            )
        )
        for t in parsed
        if t.identified
    ]
    trackers = {}
    for t in selected:
        status = rng.choice(TRACKER_STATUSES)
        hosts = () if status == "no_tracker" else ((t.tracker or "tracker.example.org", status),)
        trackers[t.hash] = (status, hosts)
    return snapshot, selected, trackers


def thread_seconds(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.thread_time()
    out = work()
    return time.thread_time() - started, out


def traced_peak(work: Callable[[], Any]) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = work()
    peak = tracemalloc.get_traced_memory()[1] - base
    del out
    tracemalloc.stop()
    return peak


def run(
    torrents: int,
    repeat: int,
    versions: list[Version],
    data: tuple[Snapshot, list[Any], dict],
    list_only: bool = False,
) -> None:
    snapshot, selected, trackers = data
    if list_only:  # the families bench_breakdown builds: from the list alone, no per-torrent passes
        results = {v.label: v.scraper.ScrapeResult(snapshot) for v in versions}
    else:
        results = {v.label: scrape_result(v, snapshot, selected, trackers) for v in versions}
    texts = {}
    for v in versions:
        families = v.families(results[v.label])
        texts[v.label] = v.render(families)
        assert zlib.decompress(b"".join(v.render_gzip(families)), 16 + zlib.MAX_WBITS) == texts[v.label]
    reference = generate_latest(AsRegistry(versions[-1].families(results[versions[-1].label])))  # type: ignore[arg-type]
    assert all(text == reference for text in texts.values()), (
        "every version must write generate_latest's text"
    )
    text = reference
    series = sum(1 for line in text.splitlines() if not line.startswith(b"#"))

    times: dict[str, dict[str, list[float]]] = {v.label: {} for v in versions}
    sizes: dict[str, int] = {}
    for _ in range(repeat):
        for v in versions:
            result = results[v.label]
            build, families = thread_seconds(lambda: v.families(result))  # noqa: B023
            render, _ = thread_seconds(lambda: v.render(families))  # noqa: B023
            both, body = thread_seconds(lambda: v.render_gzip(families))  # noqa: B023
            sizes[v.label] = sum(map(len, body))
            for phase, seconds in (("families", build), ("render", render), ("render+gzip", both)):
                times[v.label].setdefault(phase, []).append(seconds)
            times[v.label].setdefault("families+render+gzip", []).append(build + both)

    print(
        f"\n{torrents} torrents, {series} series, {len(text) / 1e6:.1f} MB of text; "
        f"{'the list alone (no properties, no trackers)' if list_only else 'every collector on'}; "
        f"thread CPU, median of {repeat}, interleaved"
    )
    print(f"  {'phase':<24}" + "".join(f"{v.label:>16}" for v in versions) + "      ratio")
    for phase in ("families", "render", "render+gzip", "families+render+gzip"):
        medians = [statistics.median(times[v.label][phase]) for v in versions]
        ratio = f"{medians[0] / medians[-1]:9.1f}x" if len(versions) == 2 else ""
        print(f"  {phase:<24}" + "".join(f"{m:14.3f} s" for m in medians) + ratio)
    print(f"  {'gzip body':<24}" + "".join(f"{sizes[v.label] / 1e6:13.2f} MB" for v in versions))
    for v in versions:
        result = results[v.label]
        peak = traced_peak(lambda: v.render_gzip(v.families(result)))  # noqa: B023
        print(f"  {v.label}: traced peak of families + render + gzip above the model: {peak / 2**20:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torrents", type=int, nargs="+", default=[10000])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--baseline", default="main", help="git ref to compare with ('' for none)")
    parser.add_argument(
        "--list-only", action="store_true", help="only the families built from the list (as bench_breakdown)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        versions = []
        if args.baseline:
            commit = load_baseline(args.baseline, Path(tmp))
            versions.append(
                Version(
                    commit if commit.startswith(args.baseline) else f"{args.baseline} {commit}",
                    BASELINE_PACKAGE,
                )
            )
        versions.append(Version("this code", "qbt_exporter"))
        print(f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
        for n in args.torrents:
            run(n, args.repeat, versions, model(n), args.list_only)


if __name__ == "__main__":
    main()
