"""The exporter's CPU per steady-state scrape after qBittorrent's reply, this code against a baseline.

Run: ``python -m benchmarks.bench_bookkeeping [--torrents 1000] [--scrapes 15] [--baseline main]``

What a steady-state scrape of a real qBittorrent 4.5.2 costs the exporter once the ``sync/maindata``
reply is in, as the scraper and ``web`` do it: reading the list, the selection (no filters) and the
properties pass ("properties": which torrents are due, none in steady state, so no call is made;
then every torrent filled from the cache), the trackers pass, every collector's families (every
collector on), rendering and gzip.
Why it is built this way:

* The list is real: one ``qbittorrent-nox`` 4.5.2 (the end-to-end harness, as ``bench_peer``) with
  ``--torrents`` torrents (``bench_peer``'s mix: seeding, paused, categories, tags), settled, and
  three ``sync/maindata`` replies read from it a second apart; each scrape reads the next of them,
  so values move between scrapes as they do on a live server. ``--simulator``: the simulated
  server's v2 API instead (for 10,000 torrents, which the real one takes too long to be loaded with).
* The baseline is the package at ``--baseline`` imported under another name (``bench_render``'s
  ``load_baseline``), so both versions run in one process on the same bytes, interleaved (baseline,
  this code, this code, baseline, ...): the machine's noise falls on both alike.
* Each version has its own passes and a fake clock that moves 10 s a scrape; after two warm-up
  scrapes every torrent has its properties and trackers (the fetches return fixed values), so the
  timed scrapes are steady state: a fetch only for a torrent whose state differs between the
  replies (printed: calls per scrape, each version's, which must agree).
* Phases in thread CPU seconds (``time.thread_time``), median over ``--scrapes``; both versions
  must write the same text byte for byte, checked on every scrape. A full garbage collection (not
  timed) before each scrape: otherwise one version's cyclic collections land in the other's phases.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_peer import UNSETTLED, bench_specs
from benchmarks.bench_render import BASELINE_PACKAGE, load_baseline
from benchmarks.common import get_retried, poll, simulator_session
from harness.qbittorrent import QBittorrent, add_mix
from harness.torrents import CLOSED_ANNOUNCE_URL
from qbt_exporter.simulator import Simulator, SimulatorConfig

PHASES = ("list", "properties", "trackers", "families", "render+gzip")
STEP = 10.0  # fake seconds between scrapes


def simulated_bodies(torrents: int, count: int = 3) -> list[bytes]:
    """``count`` full ``sync/maindata`` replies of the simulator's v2 API, 15 simulated seconds apart
    (values move; no torrent is added or removed: a steady state)."""
    config = SimulatorConfig(torrents=torrents, api="v2", latency=False, churn=False, time_scale=15)
    with Simulator(config) as sim:
        session = simulator_session(sim)
        bodies = []
        for _ in range(count):
            bodies.append(get_retried(session, f"{sim.url}/api/v2/sync/maindata?rid=0"))
            time.sleep(1.0)
        return bodies


def maindata_bodies(torrents: int, root: Path, count: int = 3) -> list[bytes]:
    """``count`` full ``sync/maindata`` replies of a real 4.5.2 with ``torrents`` settled torrents."""
    qbt = QBittorrent(root / "qbt", "qbittorrent")
    try:
        qbt.start()
        add_mix(qbt, bench_specs(torrents), root / "qbt", CLOSED_ANNOUNCE_URL)

        def settled() -> bool | None:
            info = qbt.api.torrents_info()
            return (len(info) == torrents and not UNSETTLED & {t["state"] for t in info}) or None

        poll(settled, 180, f"{torrents} settled torrents", interval=1.0)
        qbt.api.login()
        bodies = []
        for _ in range(count):
            time.sleep(1.0)
            reply = qbt.api.session.get(f"{qbt.api.base_url}/api/v2/sync/maindata", params={"rid": 0})
            reply.raise_for_status()
            bodies.append(reply.content)
        return bodies
    finally:
        with contextlib.suppress(Exception):
            qbt.stop()


class Version:
    """One version's reader, passes, collectors and web glue, with its own fake clock."""

    def __init__(self, label: str, package: str) -> None:
        self.label = label

        def module(name: str) -> Any:
            return importlib.import_module(f"{package}.{name}")

        self.now = 1000.0
        clock: Callable[[], float] = lambda: self.now  # noqa: E731
        stats = module("stats").Stats()
        model = module("qbittorrent.model")
        self.reader = module("qbittorrent.flavours.torrentlist").TorrentReader()
        self.parse_transfer = module("qbittorrent.flavours.common").parse_transfer
        self.properties = module("properties").PropertiesPolicy(300.0, stats, clock)
        self.trackers = module("trackers").TrackersPolicy(1800.0, stats, clock)
        self.collectors = module("collectors.registry").Collectors(None, stats, clock=lambda: 0.0)
        self.scraper = module("scraper")
        self.selection = module("selection")
        self.deadline = module("deadline").Deadline
        self.web = module("web")
        self.snapshot_of = lambda transfer, torrents: model.Snapshot(
            model.ServerInfo("v4.5.2", "v2", "2.8.19"), transfer, torrents
        )
        props = model.TorrentProperties(wasted=0.0, seeding_seconds=1.0, connections=0)
        entries = [model.TrackerEntry("tracker.example.org", "working")]
        self.fetched = 0

        def fetch_properties(_hash: str, _deadline: Any) -> Any:
            self.fetched += 1
            return props

        def fetch_trackers(_hash: str, _deadline: Any) -> Any:
            self.fetched += 1
            return entries

        self.fetch_properties, self.fetch_trackers = fetch_properties, fetch_trackers

    def scrape(self, body: bytes) -> tuple[dict[str, float], bytes]:
        """One scrape's work after the reply; the seconds of each phase and the plain text."""
        self.now += STEP
        seconds: dict[str, float] = {}
        mark = time.thread_time()

        def lap(phase: str) -> None:
            nonlocal mark
            now = time.thread_time()
            seconds[phase] = now - mark
            mark = now

        server_state, torrents, _bad = self.reader.read_maindata(body)
        transfer, _ = self.parse_transfer(server_state)
        lap("list")
        deadline = self.deadline(60.0, clock=lambda: self.now)
        selected, selection = self.selection.Selection().choose(torrents)  # no filters, as by default
        done = self.properties.complete(self.fetch_properties, selected, deadline, 0.15)
        lap("properties")
        reading = self.trackers.read(self.fetch_trackers, done.torrents, deadline, 0.15)
        lap("trackers")
        result = self.scraper.ScrapeResult(
            self.snapshot_of(transfer, torrents),
            duration=0.25,
            properties=done.report,
            selected=done.torrents,
            selection=selection,
            trackers=reading,
        )
        families = self.collectors.families(result)
        lap("families")
        body_gz = self.web._encode(self.web._render(families, ""), True)
        lap("render+gzip")
        return seconds, zlib.decompress(b"".join(body_gz), 16 + zlib.MAX_WBITS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torrents", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=15)
    parser.add_argument("--baseline", default="main", help="git ref to compare with")
    parser.add_argument("--bodies", type=Path, help="reuse (or save) the maindata replies in this directory")
    parser.add_argument(
        "--simulator", action="store_true", help="the simulator's v2 replies instead of a real 4.5.2's"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.bodies and sorted(args.bodies.glob("maindata-*.json")):
            bodies = [p.read_bytes() for p in sorted(args.bodies.glob("maindata-*.json"))]
        else:
            bodies = (
                simulated_bodies(args.torrents)
                if args.simulator
                else maindata_bodies(args.torrents, Path(tmp))
            )
            if args.bodies:
                args.bodies.mkdir(parents=True, exist_ok=True)
                for n, body in enumerate(bodies):
                    (args.bodies / f"maindata-{n}.json").write_bytes(body)
        commit = load_baseline(args.baseline, Path(tmp))
        label = commit if commit.startswith(args.baseline) else f"{args.baseline} {commit}"
        versions = [Version(label, BASELINE_PACKAGE), Version("this code", "qbt_exporter")]
        for n in range(2):  # warm-up: every torrent's properties and trackers fetched once
            texts = {v.label: v.scrape(bodies[n % len(bodies)])[1] for v in versions}
        fetched = {v.label: v.fetched for v in versions}
        times: dict[str, dict[str, list[float]]] = {v.label: {p: [] for p in PHASES} for v in versions}
        for n in range(args.scrapes):
            body = bodies[n % len(bodies)]
            texts = {}
            for v in versions if n % 2 == 0 else versions[::-1]:
                gc.collect()  # each scrape starts with the same collector state, not the other's garbage
                seconds, texts[v.label] = v.scrape(body)
                for phase in PHASES:
                    times[v.label][phase].append(seconds[phase])
            assert texts[versions[0].label] == texts[versions[1].label], "both must write the same text"
        calls = " / ".join(f"{(v.fetched - fetched[v.label]) / args.scrapes:.2f}" for v in versions)
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        series = sum(1 for line in texts[versions[1].label].splitlines() if not line.startswith(b"#"))
        source = "the simulator (v2)" if args.simulator else "a real qBittorrent 4.5.2"
        print(
            f"{args.torrents} torrents of {source} "
            f"(sync/maindata, {len(bodies)} replies in turn), "
            f"{series} series; per-torrent calls per scrape: {calls}; "
            f"thread CPU per scrape, median of {args.scrapes}, interleaved; load average {load}"
        )
        print(f"  {'phase':<14}" + "".join(f"{v.label:>18}" for v in versions) + "     ratio")
        totals = {v.label: [sum(s) for s in zip(*times[v.label].values(), strict=True)] for v in versions}
        for phase in (*PHASES, "total"):
            medians = [
                statistics.median(totals[v.label] if phase == "total" else times[v.label][phase])
                for v in versions
            ]
            ratio = medians[1] / medians[0] if medians[0] else float("nan")
            print(f"  {phase:<14}" + "".join(f"{m * 1000:15.2f} ms" for m in medians) + f"  {ratio:7.2f}x")


if __name__ == "__main__":
    main()
