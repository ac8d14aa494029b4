"""Gzipped list replies: what compressing them costs qBittorrent, and inflating them costs us
(ISA-L's inflater against zlib's), in one process.

Run: ``python -m benchmarks.bench_inflate [--repeat 9]``

Why this shape: the exporter asks qBittorrent for gzip, so every scrape inflates the whole list
reply before reading it (``replybody.read_capped``). The bodies are real simulator replies (1,000
torrents' ``sync/maindata``, 10,000 torrents' legacy ``/query/torrents``), gzipped at level 6 as
qBittorrent 3.3.13+ gzips them, then inflated turn about by the two inflaters ``replybody`` can use,
through ``read_capped`` itself (64 KiB pieces, the cap checked, as in a scrape). Thread CPU time,
medians; the two must give the same bytes. The compression itself is timed too: zlib at level 6 is
what qBittorrent runs on each reply when the client accepts gzip, which is why the exporter asks a
qBittorrent on loopback for plain replies (``replybody.accept_encoding``).
"""

from __future__ import annotations

import argparse
import statistics
import time
import zlib

from benchmarks.bench_list import bodies
from qbt_exporter.qbittorrent import replybody

SIZES = ((1000, "v2"), (10000, "legacy"))


def inflate(packed: bytes, limit: int) -> bytes:
    position = 0

    def read(n: int) -> bytes:
        nonlocal position
        piece = packed[position : position + n]
        position += len(piece)
        return piece

    return replybody.read_capped(
        read,
        limit=limit,
        content_encoding="gzip",
        content_length=str(len(packed)),
        before_each_read=lambda: None,
        what="GET /list",
    )


def timed(packed: bytes, limit: int) -> tuple[float, bytes]:
    started = time.thread_time()
    out = inflate(packed, limit)
    return time.thread_time() - started, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_inflate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)
    isal = replybody.isal_zlib
    if isal is None:
        print("isal is not installed here: nothing to compare")
        return 1
    print(f"bench_inflate: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    for torrents, api in SIZES:
        body = bodies(torrents, api)[0]
        packing: list[float] = []
        for _ in range(args.repeat):
            started = time.thread_time()
            packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            packed = packer.compress(body) + packer.flush()
            packing.append(time.thread_time() - started)
        limit = 2 * len(body)
        seconds: dict[str, list[float]] = {"zlib": [], "isal": []}
        for _ in range(args.repeat):
            for name in seconds:
                replybody.isal_zlib = isal if name == "isal" else None
                took, out = timed(packed, limit)
                assert out == body, f"{name} inflated other bytes"
                seconds[name].append(took)
        replybody.isal_zlib = isal
        z, i = statistics.median(seconds["zlib"]), statistics.median(seconds["isal"])
        print(
            f"{torrents:,} torrents ({api}): body {len(body) / 1e6:.2f} MB, "
            f"gzipped {len(packed) / 1e6:.2f} MB (zlib level 6, as qBittorrent: median "
            f"{statistics.median(packing) * 1000:.1f} ms); "
            f"inflate median zlib {z * 1000:.1f} ms, ISA-L {i * 1000:.1f} ms: ISA-L / zlib = {i / z:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
