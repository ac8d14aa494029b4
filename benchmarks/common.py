"""What both benchmarks share: per-process meters, timed scrapes, reading the exporter's own series.

Why these shapes:

* Every program under measurement (simulator, qBittorrent, each exporter) runs as its own process,
  so that ``/proc/<pid>/stat`` gives each one's CPU time without the others mixed in, and
  ``VmHWM`` in ``/proc/<pid>/status`` gives its peak resident memory as the kernel saw it.
* Scrapes are sent with the headers a real Prometheus 2.42 sends (its ``Accept`` list, gzip, and
  ``X-Prometheus-Scrape-Timeout-Seconds``), so each exporter picks the format and the time budget
  it would pick in production.
* The machine is shared and noisy: nothing here compares with a figure from another run. Every
  ratio is taken against a baseline measured in the same run, interleaved with the scrapes.

Processes are started and stopped with the end-to-end harness's ``ManagedProcess`` (own process
group, log file, terminate-then-kill), never copied here.

Run as ``python -m benchmarks.common simulator --torrents N --port P --stats-port Q`` this module is
also the simulator wrapper of ``bench_simulator``: a simulated qBittorrent 4.0.4 in its own process
that additionally serves its request counters as JSON on a second port, so the requests of each
scrape are counted by the server itself and not only by the exporter's own counter.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from qbt_exporter.simulator import Simulator

# The Accept header of Prometheus 2.42 (the Debian version the design names): OpenMetrics first,
# the classic text format as a fallback. Each exporter negotiates from it as it would in production.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def prometheus_headers(timeout_seconds: float) -> dict[str, str]:
    """The headers Prometheus sends with a scrape whose ``scrape_timeout`` is ``timeout_seconds``."""
    return {
        "Accept": PROMETHEUS_ACCEPT,
        "Accept-Encoding": "gzip",
        "User-Agent": "Prometheus/2.42.0",
        "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout_seconds:g}",
    }


def simulator_session(sim: Simulator) -> requests.Session:
    """A session logged in to an in-process simulator (either API, its own credentials), one
    connection per request: the simulator closes each after its reply, and a pooled one it has
    just closed fails the next request on a loaded machine."""
    session = requests.Session()
    session.headers["Connection"] = "close"
    login = "/login" if sim.config.api == "legacy" else "/api/v2/auth/login"
    credentials = {"username": sim.config.username, "password": sim.config.password}
    session.post(f"{sim.url}{login}", data=credentials, timeout=30)
    return session


def get_retried(session: requests.Session, url: str) -> bytes:
    """A GET, tried three times: on a loaded machine the simulator now and then closes a connection
    without an answer (seen on a fresh connection too); one benchmark run should not die of it."""
    for attempt in range(3):
        try:
            return session.get(url, timeout=60).content
        except requests.ConnectionError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------------
# per-process meters
# --------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the whole process (all threads, live and exited) so far.

    ``/proc/<pid>/stat`` counts in clock ticks (10 ms here): a single scrape's figure is quantised,
    which is why the benchmarks also report the mean over all measured scrapes.
    """
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    # the command name in field 2 may contain spaces: split after its closing parenthesis
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size (``VmHWM``), in bytes."""
    return _status_kib(pid, "VmHWM") * 1024


def rss_bytes(pid: int) -> int:
    """The process's current resident set size (``VmRSS``), in bytes."""
    return _status_kib(pid, "VmRSS") * 1024


# --------------------------------------------------------------------------------------------------
# scrapes
# --------------------------------------------------------------------------------------------------


@dataclass
class Scrape:
    """One scrape of one exporter: wall time, CPU spent by the metered processes, and the body."""

    wall: float
    cpu: dict[int, float]  # pid -> CPU seconds spent during the scrape
    status: int
    text: str
    body_bytes: int  # as sent on the wire (compressed when the exporter gzips)
    content_type: str

    @property
    def series(self) -> int:
        """Samples in the exposition: lines that are neither comments nor blank (``# EOF`` too)."""
        return count_series(self.text)

    def series_with_prefix(self, prefix: str) -> int:
        return sum(1 for line in self.text.splitlines() if line.startswith(prefix))


def count_series(text: str) -> int:
    """Lines not starting with ``#`` and not blank: one per series Prometheus ingests."""
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def timed_scrape(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    pids: Sequence[int],
    timeout: float = 180.0,
) -> Scrape:
    """GET ``url`` and measure its wall time and the CPU each of ``pids`` spent meanwhile.

    The body is read in full (and decompressed) inside the timed window, as Prometheus does.
    """
    before = {pid: cpu_seconds(pid) for pid in pids}
    started = time.perf_counter()
    reply = session.get(url, headers=headers, timeout=timeout)
    text = reply.text
    wall = time.perf_counter() - started
    after = {pid: cpu_seconds(pid) for pid in pids}
    wire = int(reply.headers.get("Content-Length", len(reply.content)))
    return Scrape(
        wall=wall,
        cpu={pid: after[pid] - before[pid] for pid in pids},
        status=reply.status_code,
        text=text,
        body_bytes=wire,
        content_type=reply.headers.get("Content-Type", ""),
    )


@dataclass
class OwnMetrics:
    """The exporter's own series from one exposition (``qbittorrent_up``, ``qbittorrent_exporter_*``)."""

    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> OwnMetrics:
        """Parse only the exporter's own lines: parsing 100,000 per-torrent lines would cost seconds."""
        wanted = ("qbittorrent_exporter_", "qbittorrent_up ")
        lines = [
            line
            for line in text.splitlines()
            if line.startswith(wanted)
            or (line.startswith(("# HELP ", "# TYPE ")) and line[7:].startswith(wanted))
        ]
        found: list[tuple[str, dict[str, str], float]] = []
        for family in text_string_to_metric_families("\n".join(lines) + "\n"):
            found.extend((s.name, dict(s.labels), float(s.value)) for s in family.samples)
        return cls(found)

    def value(self, name: str, default: float = float("nan"), **labels: str) -> float:
        for sample_name, sample_labels, value in self.samples:
            if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items()):
                return value
        return default

    def total(self, name: str, **labels: str) -> float:
        """Sum of every sample of ``name`` whose labels include ``labels`` (0 when none)."""
        return sum(
            value
            for sample_name, sample_labels, value in self.samples
            if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items())
        )

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """``{label value: sum}`` over the samples of ``name``."""
        out: dict[str, float] = {}
        for sample_name, sample_labels, value in self.samples:
            if sample_name == name:
                key = sample_labels.get(label, "")
                out[key] = out.get(key, 0.0) + value
        return out


def counter_delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """Per-key increase between two readings of a labelled counter; keys that did not move drop out."""
    keys = set(after) | set(before)
    return {
        k: after.get(k, 0.0) - before.get(k, 0.0)
        for k in sorted(keys)
        if after.get(k, 0.0) != before.get(k, 0.0)
    }


# --------------------------------------------------------------------------------------------------
# figures and tables
# --------------------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def fmt_s(seconds: float) -> str:
    """Seconds with three decimals (or milliseconds below 0.1 s, where three decimals say little)."""
    if seconds != seconds:  # NaN
        return "n/a"
    return f"{seconds * 1000:.1f} ms" if abs(seconds) < 0.1 else f"{seconds:.3f} s"


def fmt_mib(n_bytes: float) -> str:
    return f"{n_bytes / MIB:.1f} MiB ({n_bytes / 1e6:.1f} MB)"


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


@dataclass(frozen=True)
class Target:
    """One target of the performance issue: what is measured, its limit, and whether it is met
    (a missed one says by how much, in its own unit and in per cent)."""

    what: str
    measured: float
    limit: float
    unit: str = ""

    @property
    def met(self) -> bool:
        return self.measured <= self.limit

    def line(self) -> str:
        unit = self.unit
        text = f"  {self.what} ≤ {self.limit:g}{unit}: {self.measured:.3g}{unit} -> {verdict(self.met)}"
        if not self.met:
            text += f" by {self.measured - self.limit:.3g}{self.unit} ({self.measured / self.limit - 1:.0%})"
        return text


def check_exit(targets: Sequence[Target], check: bool) -> int:
    """The exit status of a benchmark: 1 under ``--check`` when a target is missed (or none was
    judged), else 0; printed so that a log says why it failed."""
    if not check:
        return 0
    if not targets:
        print("--check: no target was judged (the judged size was not run)")
        return 1
    missed = [t.what for t in targets if not t.met]
    print(
        f"--check: {len(targets) - len(missed)} of {len(targets)} targets met"
        + (f"; missed: {', '.join(missed)}" if missed else "")
    )
    return 1 if missed else 0


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table (numbers right-aligned), readable in a terminal and in Markdown."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(row):
            numeric = cell[:1].isdigit() or (cell[:1] in "-+." and cell[1:2].isdigit())
            parts.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


# --------------------------------------------------------------------------------------------------
# lifecycle
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so ``finally`` blocks stop every child process."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def sleep_until(moment: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``moment`` (at once if it has)."""
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def poll(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Call ``probe`` until it returns something truthy; exceptions count as "not yet"."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except Exception as exc:  # the probed program is still starting
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last!r})")


# --------------------------------------------------------------------------------------------------
# the simulator wrapper with a counter side channel
# --------------------------------------------------------------------------------------------------


def serve_simulator(argv: Sequence[str]) -> int:
    """Run a simulated qBittorrent 4.0.4 and serve its request counters as JSON on ``--stats-port``.

    The counters are the simulator's own ``requests_by_path`` (per path prefix), so the requests a
    scrape costs are counted at the server, independently of the exporter's own counter.
    """
    from qbt_exporter.simulator import Simulator, SimulatorConfig

    parser = argparse.ArgumentParser(prog="python -m benchmarks.common simulator")
    parser.add_argument("--torrents", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stats-port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = SimulatorConfig(torrents=args.torrents, seed=args.seed, latency=True, churn=True, time_scale=1.0)
    simulator = Simulator(config, host="127.0.0.1", port=args.port)

    class StatsHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            for _ in range(5):  # the simulator's threads may add a key while we copy
                try:
                    counts = dict(simulator.requests_by_path)
                    break
                except RuntimeError:
                    time.sleep(0.01)
            body = json.dumps({"requests_by_path": counts, "logins_ok": simulator.logins_ok}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    stats_server = http.server.ThreadingHTTPServer(("127.0.0.1", args.stats_port), StatsHandler)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with simulator:
        threading.Thread(target=stats_server.serve_forever, name="stats", daemon=True).start()
        print(
            f"simulator with {args.torrents} torrents on {simulator.url}, stats on {args.stats_port}",
            flush=True,
        )
        stop.wait()
        stats_server.shutdown()
        stats_server.server_close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["simulator"]:
        return serve_simulator(args[1:])
    print(
        "usage: python -m benchmarks.common simulator --torrents N --port P --stats-port Q", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
