"""What a busy Python thread does to the sending of a large answer by the exporter's HTTP server.

Run: ``python -m benchmarks.bench_send [--rounds 8] [--mb 6.5]``

The work kept off a scrape's path (the per-torrent refresh between scrapes) runs on a thread of
the same interpreter. The server writes a 10,000-torrent answer (about 6.5 MB gzipped) in 64 KiB
pieces, and after each piece the sending thread needs the interpreter lock back: while another
thread runs Python, it waits for it up to the switch interval (5 ms). So the work must start once
the answer is sent (``web.Answer``, called by the server as WSGI's ``close``), not once it is
rendered. This times one answer fetched by a client in another process three ways, interleaved:
with no other thread, with a thread of pure Python work started when the answer is rendered
(before the sending: the exporter until 2026-12-02 06:00 UTC), and with the same thread started
by the answer's ``close`` (after the sending: now). With ``--io``, the thread waits 1.5 ms between
its bursts of 0.15 ms, like a per-torrent call waiting on qBittorrent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from qbt_exporter.httpserver import HTTPServer
from qbt_exporter.web import Answer

PIECE = 65536
WAYS = ("alone", "thread from the rendering", "thread from the close")

# The client: one GET, the whole body read, the wall time printed. Its own process, so that its
# reading never waits on this interpreter's lock.
CLIENT = """
import sys, time, urllib.request
started = time.perf_counter()
with urllib.request.urlopen(sys.argv[1]) as reply:
    while reply.read(1 << 20):
        pass
print(time.perf_counter() - started)
"""


def busy(seconds: float, io: bool) -> None:
    """Python work for ``seconds``: bursts of about 0.15 ms, each followed by a 1.5 ms wait with ``io``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        total = 0
        for i in range(2000):
            total += i * i
        if io:
            time.sleep(0.0015)


def run(rounds: int, megabytes: float, io: bool) -> dict[str, list[float]]:
    body = [os.urandom(PIECE) for _ in range(int(megabytes * 1e6 / PIECE))]
    way = {"now": WAYS[0]}
    threads: list[threading.Thread] = []

    def start() -> None:
        thread = threading.Thread(target=busy, args=(1.5, io))
        thread.start()
        threads.append(thread)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Answer:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        if way["now"] == WAYS[1]:
            start()
        return Answer(body, start if way["now"] == WAYS[2] else lambda: None)

    server = HTTPServer(app, "127.0.0.1", 0).start()
    seconds: dict[str, list[float]] = {name: [] for name in WAYS}
    try:
        for index in range(rounds):
            for name in WAYS if index % 2 == 0 else tuple(reversed(WAYS)):
                way["now"] = name
                url = f"http://127.0.0.1:{server.port}/"
                out = subprocess.run(
                    [sys.executable, "-c", CLIENT, url], capture_output=True, text=True, check=True
                )
                seconds[name].append(float(out.stdout))
                for thread in threads:
                    thread.join()
                threads.clear()
    finally:
        server.stop()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--mb", type=float, default=6.5, help="size of the answer")
    parser.add_argument("--io", action="store_true", help="the thread waits 1.5 ms between its bursts")
    args = parser.parse_args(argv)
    seconds = run(args.rounds, args.mb, args.io)
    print(
        f"bench_send: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, a {args.mb:g} MB answer, "
        f"{args.rounds} rounds, the thread's work {'with 1.5 ms waits' if args.io else 'pure Python'}; "
        "request to last byte, by a client in another process:"
    )
    for name, values in seconds.items():
        row = " ".join(f"{value * 1e3:.0f}" for value in values)
        print(f"  {name:<27} median {statistics.median(values) * 1e3:7.1f} ms  ({row})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
