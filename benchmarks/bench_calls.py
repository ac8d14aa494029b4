"""How many per-torrent calls (properties, trackers) a steady scrape makes, old plans against new,
over the same simulated library with churn, in one process and on a simulated clock.

Run: ``python -m benchmarks.bench_calls [--torrents 10000] [--interval 15] [--minutes 30]``

Why in process: the calls a scrape makes are decided by the per-torrent policy alone
(``pertorrent.py``), from the torrent list and the clock. Here the simulator's world (4.0.4's
torrents, state changes about once per torrent per 30 minutes, torrents added and removed) is
advanced one scrape interval at a time on a simulated clock, its list is parsed by the exporter's
own parser, and both plans are run side by side on every list: no HTTP, no sleeping, so hours of
scrapes take minutes and both plans see exactly the same torrents at the same instants. "served"
is the fewest torrents of a scrape with a value to serve (fetched or proved within the max age).

"old" is each kind's plan as it was before the settled-torrent proof and the trackers' running
class (properties: due on any state change, idle ones refreshed once per max age; trackers: due on
any state change); "new" is the plan the exporter uses now. Both run through the same
``PerTorrentPolicy``; with no ``settled`` rule it plans exactly as before. A call costs
``--call-ms`` of simulated time (the simulator's 1.4 ms of 4.0.4 latency plus about 1 ms of the
exporter's own), so the refresh budget (a fifth of the list time, ``0.2 ms`` per torrent) binds as
it does for real. The first hour is the warm-up (every torrent fetched once, then the first
refresh ages pass), scraped every ``--warm-interval`` seconds to save time; calls are counted over
the ``--minutes`` of scrapes every ``--interval`` seconds after it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from collections.abc import Callable, Hashable

from qbt_exporter import properties, trackers
from qbt_exporter.deadline import Deadline
from qbt_exporter.pertorrent import PerTorrentPolicy, Plan
from qbt_exporter.qbittorrent.flavours.common import parse_torrents
from qbt_exporter.qbittorrent.model import Torrent, TorrentProperties
from qbt_exporter.simulator import SimulatorConfig
from qbt_exporter.simulator.documents import list_item
from qbt_exporter.simulator.world import World

LIST_SECONDS_PER_TORRENT = 0.0002  # the simulator's (and a real 4.0.4's) /query/torrents


def _tracker_key_before(torrent: Torrent) -> Hashable:
    return (torrent.state, torrent.tracker, torrent.tracker_error, torrent.tracker_warning)


OLD = {
    "properties": Plan(wants=properties.PLAN.wants, key=properties.PLAN.key, busy=properties.PLAN.busy),
    "trackers": Plan(wants=trackers.PLAN.wants, key=_tracker_key_before),
}
NEW = {"properties": properties.PLAN, "trackers": trackers.PLAN}
MAX_AGE = {"properties": 300.0, "trackers": 1800.0}  # the flags' defaults


def _counter(counter: Counter[str]) -> Callable[[str], None]:
    def count(reason: str) -> None:
        counter[reason] += 1

    return count


class SimClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _run(args: argparse.Namespace) -> None:
    config = SimulatorConfig(torrents=args.torrents, latency=False, churn=True, time_scale=0, seed=args.seed)
    world = World(config)
    clock = SimClock(world.tick_time())
    world._now = clock  # type: ignore[method-assign]  # the world follows the simulated clock
    counts: dict[tuple[str, str], Counter[str]] = {}
    per_scrape: dict[tuple[str, str], list[int]] = {}
    policies: dict[tuple[str, str], PerTorrentPolicy[object]] = {}
    for version, plans in (("old", OLD), ("new", NEW)):
        for kind, plan in plans.items():
            key = (version, kind)
            counts[key] = Counter()
            per_scrape[key] = []
            policies[key] = PerTorrentPolicy(MAX_AGE[kind], plan, _counter(counts[key]), clock)
    value = TorrentProperties(wasted=0)

    def fetch(torrent_hash: str, deadline: Deadline) -> object:
        clock.now += args.call_ms / 1000
        return value

    warm = int(3600 / args.warm_interval)
    scrapes = warm + int(args.minutes * 60 / args.interval)
    held_counts: list[int] = []
    served: dict[tuple[str, str], list[int]] = {key: [] for key in policies}
    for n in range(scrapes):
        world.advance()
        now = world.tick_time()
        items = [list_item(t, now, 0) for t in world.torrents.values()]
        items = json.loads(json.dumps(items))
        torrents, _ = parse_torrents((obj["hash"], obj) for obj in items)
        list_seconds = LIST_SECONDS_PER_TORRENT * len(torrents)
        started = clock.now
        for key, policy in policies.items():
            before = sum(counts[key].values())
            clock.now = started  # each plan sees the scrape start at the same instant
            done = policy.run(fetch, torrents, Deadline.never(), list_seconds)
            if n >= warm:
                per_scrape[key].append(sum(counts[key].values()) - before)
                served[key].append(len(done.values))
        if n == warm - 1:
            for counter in counts.values():
                counter.clear()
        if n >= warm:
            held_counts.append(
                sum(t.state in ("stoppedUP", "stoppedDL", "queuedUP", "queuedDL") for t in torrents)
            )
        clock.now = started + (args.interval if n >= warm - 1 else args.warm_interval)
    print(
        f"bench_calls: {args.torrents:,} simulated 4.0.4 torrents (churn on, seed {args.seed}), "
        f"a scrape every {args.interval:g} s for {args.minutes:g} min after an hour of warm-up, "
        f"{args.call_ms:g} ms per call; "
        f"counted over its {scrapes - warm} scrapes; stopped or queued torrents: median "
        f"{statistics.median(held_counts):,.0f}"
    )
    print(f"{'plan':<16} {'calls/scrape median':>20} {'mean':>8} {'max':>6} {'served, min':>12}  by reason")
    for kind in ("properties", "trackers"):
        for version in ("old", "new"):
            calls = per_scrape[(version, kind)]
            reasons = ", ".join(f"{r} {c}" for r, c in sorted(counts[(version, kind)].items()))
            name = f"{version} {kind}"
            median, mean = statistics.median(calls), statistics.mean(calls)
            fewest = min(served[(version, kind)])
            print(f"{name:<16} {median:>20.0f} {mean:>8.1f} {max(calls):>6} {fewest:>12,}  {reasons}")
    for version in ("old", "new"):
        pairs = zip(per_scrape[(version, "properties")], per_scrape[(version, "trackers")], strict=True)
        both = [a + b for a, b in pairs]
        median, mean = statistics.median(both), statistics.mean(both)
        print(f"{version} both: median {median:.0f}, mean {mean:.1f} calls per scrape")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torrents", type=int, default=10000)
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between scrapes")
    parser.add_argument(
        "--minutes", type=float, default=30.0, help="simulated minutes counted, after the warm-up"
    )
    parser.add_argument("--warm-interval", type=float, default=60.0, help="seconds between warm-up scrapes")
    parser.add_argument("--call-ms", type=float, default=2.4, help="simulated cost of one call")
    parser.add_argument("--seed", type=int, default=0)
    _run(parser.parse_args())


if __name__ == "__main__":
    main()
