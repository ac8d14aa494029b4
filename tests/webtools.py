"""Helpers for the tests of the HTTP side: a collector that counts scrapes, a running server, raw
HTTP over a socket (to send what no polite client would), and a throwaway TLS certificate."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qbt_exporter.collectors import Collectors
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import Family
from qbt_exporter.httpserver import HTTPServer, Limits
from qbt_exporter.scraper import Scraper
from qbt_exporter.stats import Stats
from qbt_exporter.web import ExporterApp, serve
from tests.fakes import FakeClient, FakeFlavour
from tests.tools import require_tool

ANSWER_WITHIN = 5.0  # generous: the failure these bounds catch is a hang, not slowness


class RecordingCollector(Collectors):
    """A real collector over a fake flavour that remembers the deadline of each scrape."""

    def __init__(self, flavour: FakeFlavour | None = None) -> None:
        stats = Stats()
        flavour = flavour or FakeFlavour()
        super().__init__(Scraper(FakeClient(), stats, detect=lambda *_: flavour), stats)  # type: ignore[arg-type]
        self.budgets: list[float] = []
        self.lock = threading.Lock()

    def collect_within(self, deadline: Deadline) -> list[Family]:
        with self.lock:
            self.budgets.append(deadline.remaining())
        return super().collect_within(deadline)


@contextmanager
def running(
    collector: Collectors | None = None, *, tls: ssl.SSLContext | None = None, **limits: float
) -> Iterator[HTTPServer]:
    """The exporter's app served on a free port of 127.0.0.1 until the block ends."""
    app = ExporterApp(collector or RecordingCollector(), timeout_offset=0.5)
    server = serve(app, "127.0.0.1", 0, tls=tls, limits=Limits(**limits))  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN)
    sock.settimeout(ANSWER_WITHIN)
    return sock


def request_bytes(method: str = "GET", path: str = "/metrics", *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def read_reply(sock: socket.socket, *, head_only: bool = False) -> Reply:
    """One HTTP answer read off ``sock``, body by Content-Length (none for a HEAD)."""
    buffered = b""
    while b"\r\n\r\n" not in buffered:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed after {buffered!r}")
        buffered += data
    head, _, body = buffered.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(body) < length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed in the body")
        body += data
    assert len(body) == length, "more bytes than Content-Length"
    return Reply(int(lines[0].split(" ")[1]), headers, body)


def exchange(port: int, raw: bytes) -> Reply:
    with connect(port) as sock:
        sock.sendall(raw)
        return read_reply(sock)


def closed_by_server(sock: socket.socket) -> bytes:
    """What the server sent before closing ``sock`` (waits up to the socket's timeout; a timeout
    here means the server kept the connection open)."""
    received = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by openssl (EC: instant)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            require_tool("openssl"),
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
