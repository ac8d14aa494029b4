"""A bounded soak: 2,000 scrapes while qBittorrent is killed, restarted, paused and faulted.

The simulator runs as its own process (``python -m qbt_exporter.simulator``) so it can really be
killed (SIGKILL), restarted on the same port and frozen (SIGSTOP/SIGCONT); the fault proxy sits in
front of it; the exporter runs in this process and is scraped over a real socket, back to back.
On a fixed schedule, the test checks that ``qbittorrent_up`` follows on the first scrape after each
change (and on every scrape until the next one), that a scrape during a freeze answers 0 within its
budget, and that the exporter's RSS, open file descriptors and threads end within a small bound of
where they were after the warm-up. The figures are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import http.client
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from qbt_exporter.cli import build
from qbt_exporter.config import parse
from qbt_exporter.simulator.faults import Drip, FaultProxy, GzipBomb, Hang, Oversize, Replace, Reset
from qbt_exporter.web import serve

SCRAPES = 2000
WARM_UP = 450
# The header Prometheus would send: while qBittorrent is frozen or a reply hangs, a 1 s budget (after
# the default 0.5 s offset), so that those scrapes cost little; otherwise a generous one, so that a
# healthy scrape on a loaded machine (or the first one after a restart: log in again, detect the
# API) is never cut short by the machine's load rather than by the fault.
SHORT_SCRAPE_TIMEOUT = 1.5
SHORT_BUDGET = 1.0
SCRAPE_TIMEOUT = 5.0
TIMING_OUT = frozenset({"freeze", "hang torrents", "stall torrents body", "drip torrents"})
SLACK = 10.0  # only a hang fails the test
UP_LINE = re.compile(r"^qbittorrent_up (\S+)$", re.MULTILINE)
RSS_BOUND_KB = 16 * 1024
FD_BOUND = 4
THREAD_BOUND = 2


class SimulatorProcess:
    """The simulator in a child process, on one port for its whole life (restarts included)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qbt_exporter.simulator",
                "--port",
                str(self.port),
                "--torrents",
                "5",
                "--no-latency",
                "--no-churn",
                "--time-scale",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        assert f":{self.port}" in line, f"simulator did not start: {line!r}"  # printed once listening

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            self.proc = None

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signum)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Figures:
    rss_kb: int
    fds: int
    threads: int

    @classmethod
    def now(cls) -> Figures:
        with open("/proc/self/status") as status:
            rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        return cls(rss, len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task")))


def settled(baseline: Figures, proxy: FaultProxy) -> Figures:
    """The figures once the proxy's connections and the HTTP server's request threads have ended
    (a request thread may still be closing its socket when the scrape's answer has arrived)."""
    assert proxy.wait_idle(30)
    deadline = time.monotonic() + 10
    figures = Figures.now()
    while figures.threads > baseline.threads and time.monotonic() < deadline:
        time.sleep(0.01)
        figures = Figures.now()
    return figures


@contextmanager
def exporter_url(proxy: FaultProxy) -> Iterator[str]:
    config = parse(
        [
            "--qbittorrent.url",
            proxy.url,
            "--qbittorrent.timeout",
            "1s",
            "--qbittorrent.max-reply-size",
            "1MB",
            "--no-collector.torrent-properties",
        ],
        environ={"QBITTORRENT_PASSWORD": "adminadmin"},
    )
    client, app = build(config)
    server = serve(app, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop()
        client.logout()
        client.close()


def scrape(address: str, *, full: bool = True, scrape_timeout: float = SCRAPE_TIMEOUT) -> tuple[float, float]:
    """``qbittorrent_up`` and the seconds the answer took; fails on anything but 200 + valid text.

    ``full`` parses the whole exposition with prometheus_client's parser, which costs more than the
    scrape itself; otherwise only the ``qbittorrent_up`` line is read."""
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=scrape_timeout + SLACK)
    started = time.monotonic()
    try:
        conn.request("GET", "/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": str(scrape_timeout)})
        reply = conn.getresponse()
        body = reply.read()
    finally:
        conn.close()
    took = time.monotonic() - started
    assert reply.status == 200
    text = body.decode("utf-8")
    if full:
        ups = [
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "qbittorrent_up"
        ]
    else:
        ups = [float(v) for v in UP_LINE.findall(text)]
    assert len(ups) == 1
    return ups[0], took


@dataclass
class Step:
    """At scrape ``at``, do ``action``; from then on every scrape must report ``up``."""

    at: int
    name: str
    action: Callable[[], None]
    up: int


def schedule(sim: SimulatorProcess, proxy: FaultProxy) -> list[Step]:
    """Cycles of kill → restart, freeze → thaw, and faults on and off (a hang, a stall after the
    headers, resets, an HTML page, a drip, a reply over the 1 MB cap, a gzip bomb), spread over
    the scrapes after the warm-up (the first cycle also runs inside the warm-up, so that whatever
    the first failure of each kind allocates once is in the baseline)."""
    cycle: list[tuple[str, Callable[[], None], int, int]] = [
        ("kill", sim.kill, 0, 10),
        ("restart", sim.start, 1, 40),
        ("freeze", lambda: sim.signal(signal.SIGSTOP), 0, 1),
        ("thaw", lambda: sim.signal(signal.SIGCONT), 1, 40),
        ("hang torrents", lambda: proxy.set_fault("^/query/torrents$", Hang()), 0, 1),
        ("clear", proxy.clear, 1, 40),
        ("reset transferInfo", lambda: proxy.set_fault("^/query/transferInfo$", Reset()), 0, 5),
        ("clear", proxy.clear, 1, 40),
        ("stall torrents body", lambda: proxy.set_fault("^/query/torrents$", Hang(after_headers=True)), 0, 1),
        ("clear", proxy.clear, 1, 40),
        ("html torrents", lambda: proxy.set_fault("torrents", Replace(b"<html>502</html>", 502)), 0, 5),
        ("clear", proxy.clear, 1, 40),
        ("drip torrents", lambda: proxy.set_fault("torrents", Drip(per_interval=1, interval=0.05)), 0, 1),
        ("clear", proxy.clear, 1, 40),
        ("oversize torrents", lambda: proxy.set_fault("torrents", Oversize(4 * 1024 * 1024)), 0, 3),
        ("clear", proxy.clear, 1, 40),
        ("gzip bomb torrents", lambda: proxy.set_fault("torrents", GzipBomb(inflated_mb=300)), 0, 3),
        ("clear", proxy.clear, 1, 40),
    ]
    steps: list[Step] = []
    at = 50
    while True:
        for name, action, up, length in cycle:
            if at + length >= SCRAPES:
                return steps
            steps.append(Step(at, name, action, up))
            at += length
        at += 150


def test_two_thousand_scrapes_through_kills_freezes_and_faults() -> None:
    port = free_port()
    sim = SimulatorProcess(port)
    sim.start()
    started = time.monotonic()
    try:
        with FaultProxy(f"http://127.0.0.1:{port}", timeout=5) as proxy, exporter_url(proxy) as address:
            steps = {step.at: step for step in schedule(sim, proxy)}
            current = "start"
            expected = 1
            baseline: Figures | None = None
            changes = 0
            spent: dict[str, float] = {}
            for n in range(SCRAPES):
                if n == WARM_UP:
                    baseline = settled(Figures.now(), proxy)
                step = steps.get(n)
                if step is not None:
                    step.action()
                    current, expected = step.name, step.up
                    changes += 1
                short = current in TIMING_OUT
                up, took = scrape(
                    address,
                    full=step is not None or n % 50 == 0,
                    scrape_timeout=SHORT_SCRAPE_TIMEOUT if short else SCRAPE_TIMEOUT,
                )
                spent[current] = spent.get(current, 0.0) + took
                context = f"scrape {n}, {'after ' + current if step else 'no change'}"
                assert up == expected, f"{context}: qbittorrent_up {up}, expected {expected}"
                if short:
                    assert took < SHORT_BUDGET + SLACK, f"{context}: answered in {took:.1f} s"
            assert baseline is not None
            end = settled(baseline, proxy)
            wall = time.monotonic() - started
            print(
                f"\nsoak: {SCRAPES} scrapes, {changes} changes, {wall:.1f} s wall; "
                f"after warm-up (scrape {WARM_UP}) RSS {baseline.rss_kb / 1024:.1f} MB, "
                f"{baseline.fds} fds, {baseline.threads} threads; "
                f"end RSS {end.rss_kb / 1024:.1f} MB, {end.fds} fds, {end.threads} threads; "
                "seconds scraping by state: "
                + ", ".join(
                    f"{name} {secs:.1f}" for name, secs in sorted(spent.items(), key=lambda kv: -kv[1])
                )
            )
            assert end.rss_kb - baseline.rss_kb < RSS_BOUND_KB
            assert end.fds - baseline.fds <= FD_BOUND
            assert end.threads - baseline.threads <= THREAD_BOUND
            assert not [t for t in threading.enumerate() if t.name == "fault-proxy-conn"]
    finally:
        if sim.proc is not None:
            sim.signal(signal.SIGCONT)
        sim.kill()
