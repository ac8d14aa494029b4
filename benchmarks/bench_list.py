"""Reading the torrent list, from the reply's bytes to Torrents: this checkout against an older
commit's code, in one process, alternately.

Run: ``python -m benchmarks.bench_list [--torrents 10000] [--repeat 7] [--baseline REF]``

Why this shape: the machine is shared and noisy, so the two codes are timed turn about on the same
bodies (thread CPU time, medians), never against a figure from another run. The older commit's
``qbt_exporter`` is extracted with ``git archive`` and imported under another package name, so both
live in this process. Bodies are real simulator replies of the two APIs, two scrapes 15 simulated
seconds apart (read alternately, as consecutive scrapes would be), so whatever a reader remembers
between scrapes is exercised as in steady state. Where msgspec is installed, this checkout's
stdlib path (the reader made as where it is not) is timed too. Memory is the Python allocations'
peak above the start of one read (tracemalloc, in separate runs so that tracing does not slow the
timed ones): the reply's bytes are already held, the Torrents it returns are counted.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

from benchmarks.common import get_retried, simulator_session
from qbt_exporter.qbittorrent.flavours import listdecoder
from qbt_exporter.qbittorrent.flavours.torrentlist import TorrentReader
from qbt_exporter.simulator import Simulator, SimulatorConfig

# The last commit before the list was read element by element (the default baseline).
BASELINE = "cc8d80f"
ALIAS = "qbt_exporter_baseline"
MIB = 1024 * 1024


def baseline_package(ref: str, into: Path) -> str:
    """Extract ``ref``'s qbt_exporter into ``into`` as package ALIAS; returns its import name."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "archive", ref, "qbt_exporter"], cwd=root, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    (into / "qbt_exporter").rename(into / ALIAS)
    for path in (into / ALIAS).rglob("*.py"):
        path.write_text(re.sub(r"\bqbt_exporter\b", ALIAS, path.read_text()))
    sys.path.insert(0, str(into))
    return ALIAS


def bodies(torrents: int, api: str) -> list[bytes]:
    """Two list replies of a simulated server, 15 simulated seconds apart (torrents move, some
    are added and removed)."""
    config = SimulatorConfig(torrents=torrents, api=api, latency=False, churn=True, time_scale=15)
    with Simulator(config) as sim:
        session = simulator_session(sim)
        url = f"{sim.url}/query/torrents" if api == "legacy" else f"{sim.url}/api/v2/sync/maindata?rid=0"
        first = get_retried(session, url)
        time.sleep(1.0)
        second = get_retried(session, url)
    return [first, second]


def old_reader(package: str, api: str) -> Callable[[bytes], Any]:
    """The baseline's path from bytes to Torrents: its ``TorrentReader`` where it has one (the list
    read element by element); before that, ``Client.get_json``'s decoding, the flavour's shape
    check, ``parse_torrents``."""
    try:
        reader = import_module(f"{package}.qbittorrent.flavours.torrentlist").TorrentReader()
        return reader.read_array if api == "legacy" else reader.read_maindata  # type: ignore[no-any-return]
    except ModuleNotFoundError:
        pass
    jsonbody = import_module(f"{package}.qbittorrent.jsonbody")
    common = import_module(f"{package}.qbittorrent.flavours.common")
    if api == "legacy":
        shaped = common.shaped(list, "array", "torrents")

        def read(body: bytes) -> Any:
            text = jsonbody.text(body)
            items = shaped(jsonbody.parse(text))
            del text
            return common.parse_torrents((o.get("hash") if isinstance(o, dict) else None, o) for o in items)

        return read
    parts = import_module(f"{package}.qbittorrent.flavours.v2")._maindata_parts

    def read_v2(body: bytes) -> Any:
        text = jsonbody.text(body)
        _, items = parts(jsonbody.parse(text))
        del text
        return common.parse_torrents(items.items())

    return read_v2


def values(torrent: Any) -> tuple[Any, ...]:
    """A Torrent's values in field order, whichever class the code at hand makes it of."""
    if isinstance(torrent, tuple):
        return tuple(torrent)
    return tuple(getattr(torrent, field.name) for field in dataclasses.fields(torrent))


def new_reader(api: str, *, msgspec: bool = True) -> Callable[[bytes], Any]:
    """This checkout's reader; without ``msgspec``, as where msgspec is not installed (the decoder
    is chosen when the reader is made)."""
    installed = listdecoder.msgspec
    if not msgspec:
        listdecoder.msgspec = None
    try:
        reader = TorrentReader()  # one per flavour, kept across scrapes
    finally:
        listdecoder.msgspec = installed
    return reader.read_array if api == "legacy" else reader.read_maindata


def cpu(read: Callable[[bytes], Any], body: bytes) -> float:
    started = time.thread_time()
    result = read(body)
    elapsed = time.thread_time() - started
    del result
    return elapsed


def peak(read: Callable[[bytes], Any], body: bytes) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = read(body)
        top = tracemalloc.get_traced_memory()[1] - before
        del result
        return top
    finally:
        tracemalloc.stop()


def compare(api: str, torrents: int, repeat: int, package: str) -> None:
    replies = bodies(torrents, api)
    readers = {"old": old_reader(package, api), "new": new_reader(api)}
    if listdecoder.msgspec is not None:  # this checkout's stdlib path too, as where msgspec is not installed
        readers["new, stdlib"] = new_reader(api, msgspec=False)
    reference = [readers["old"](body) for body in replies]
    for name in readers.keys() - {"old"}:
        for index, body in enumerate(replies):  # the same Torrents, value by value, as the baseline's
            listed, invalid = readers[name](body)[-2:]
            assert [values(t) for t in listed] == [values(t) for t in reference[index][-2]]
            assert invalid == reference[index][-1]
    times: dict[str, list[float]] = {name: [] for name in readers}
    peaks: dict[str, list[int]] = {name: [] for name in readers}
    for run in range(repeat):
        body = replies[run % 2]
        for name in list(readers) if run % 2 else reversed(readers):
            times[name].append(cpu(readers[name], body))
    for run in range(3):
        body = replies[run % 2]
        for name in readers:
            peaks[name].append(peak(readers[name], body))
    print(
        f"{api:<6} {torrents:>6} torrents, {len(replies[0]) / 1e6:5.1f} MB reply, median of {repeat} "
        f"(thread CPU) / max of 3 (tracemalloc peak):"
    )
    old, old_peak = statistics.median(times["old"]), max(peaks["old"])
    for name in readers:
        median, top = statistics.median(times[name]), max(peaks[name])
        ratios = f"   ({median / old:.2f} x the CPU, {top / old_peak:.2f} x the peak)"
        print(f"  {name:<11} {median:6.3f} s  peak {top / MIB:6.1f} MiB{ratios if name != 'old' else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torrents", type=int, nargs="+", default=[10000])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--api", choices=["legacy", "v2"], nargs="+", default=["legacy", "v2"])
    parser.add_argument("--baseline", default=BASELINE, help=f"commit of the old code (default {BASELINE})")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"bench_list: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f}, baseline {args.baseline}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        package = baseline_package(args.baseline, Path(tmp))
        for api in args.api:
            for torrents in args.torrents:
                compare(api, torrents, args.repeat, package)


if __name__ == "__main__":
    main()
