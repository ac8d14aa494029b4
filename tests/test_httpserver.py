"""The HTTP server under hostile clients, over real sockets on 127.0.0.1 (issue 8, defects 1 and 11).

Timeouts are set small per test; the bounds on answers are generous (ANSWER_WITHIN): what they
catch is a hang, and the machine may be loaded.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import requests

from qbt_exporter.httpserver import HTTPServer, Limits
from qbt_exporter.web import Answer, tls_context
from tests.fakes import FakeFlavour, torrent
from tests.webtools import (
    ANSWER_WITHIN,
    RecordingCollector,
    closed_by_server,
    connect,
    exchange,
    read_reply,
    request_bytes,
    running,
    self_signed,
)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


def _client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def _http_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "http-conn"]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_stalled_handshakes_and_idle_tls_connections_leave_metrics_answering(
    certificate: tuple[Path, Path],
) -> None:
    """Defect 1: the old server ran the handshake in accept(); one silent client took it dark."""
    cert, key = certificate
    collector = RecordingCollector(FakeFlavour(torrents=[torrent(1)]))
    with running(collector, tls=tls_context(str(cert), str(key))) as server, ExitStack() as clients:
        for _ in range(50):  # TCP connected, no ClientHello
            clients.enter_context(connect(server.port))
        for _ in range(50):  # handshake done, then silence
            tcp = clients.enter_context(connect(server.port))
            clients.enter_context(_client_context(cert).wrap_socket(tcp, server_hostname="127.0.0.1"))
        base = f"https://127.0.0.1:{server.port}"
        health = requests.get(f"{base}/healthz", verify=str(cert), timeout=ANSWER_WITHIN)
        metrics = requests.get(f"{base}/metrics", verify=str(cert), timeout=ANSWER_WITHIN)
        assert health.status_code == 200 and health.text == "ok\n"
        assert metrics.status_code == 200 and "qbittorrent_up 1.0" in metrics.text


def test_a_stalled_handshake_is_closed_after_the_read_timeout(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with (
        running(tls=tls_context(str(cert), str(key)), read_timeout=0.3) as server,
        connect(server.port) as sock,
    ):
        assert closed_by_server(sock) == b""


def test_an_idle_plain_connection_is_closed_after_the_read_timeout() -> None:
    """The old server held a thread and an fd for a silent client forever."""
    with running(read_timeout=0.3) as server, connect(server.port) as sock:
        assert closed_by_server(sock) == b""


def test_a_kept_alive_connection_is_closed_after_the_idle_timeout() -> None:
    with running(idle_timeout=0.3) as server, connect(server.port) as sock:
        sock.sendall(request_bytes("GET", "/healthz"))
        assert read_reply(sock).status == 200
        sock.sendall(request_bytes("GET", "/healthz"))  # kept alive: a second request is served
        assert read_reply(sock).status == 200
        assert closed_by_server(sock) == b""


def test_slowloris_is_cut_by_the_read_timeout_though_every_byte_comes_in_time() -> None:
    """Headers dripped a byte every 0.1 s: each read is quick, the whole head never ends. The
    read timeout bounds the head, not each read, so the server answers 408 and hangs up."""
    with running(read_timeout=1.0) as server, connect(server.port) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Drip: ")
        answer: bytes | None = None  # None: still open
        for _ in range(300):  # 30 s of dripping at most; the cut comes after about 1 s
            readable, _, _ = select.select([sock], [], [], 0.1)
            try:
                if readable:
                    answer = closed_by_server(sock)
                    break
                sock.sendall(b"a")
            except OSError:  # closed between two drips
                answer = b""
                break
        assert answer is not None, "the dripping client was never cut off"
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer


def test_oversized_headers_are_refused_while_reading() -> None:
    """99 headers of 60 KB (each under any per-line limit; the old server accepted them all)
    are refused with 431 once the head passes the cap, without waiting for the rest."""
    collector = RecordingCollector()
    with running(collector, max_header_bytes=64 * 1024) as server, connect(server.port) as sock:
        header = b"X-Big: " + b"a" * 60_000 + b"\r\n"
        sent = 0

        def send_all() -> None:
            nonlocal sent
            try:
                sock.sendall(b"GET /metrics HTTP/1.1\r\n")
                for _ in range(99):
                    sock.sendall(header)
                    sent += len(header)
                sock.sendall(b"\r\n")
            except OSError:
                pass  # the server hung up on us: expected

        sender = threading.Thread(target=send_all)
        sender.start()
        reply = read_reply(sock)
        sender.join(ANSWER_WITHIN)
        assert reply.status == 431
        assert reply.headers["connection"] == "close"
        assert collector.budgets == []  # no scrape for a refused request


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "FOO"])
def test_methods_other_than_get_and_head_get_405(method: str) -> None:
    collector = RecordingCollector()
    with running(collector) as server:
        reply = exchange(server.port, request_bytes(method, "/metrics"))
    assert reply.status == 405 and reply.headers["allow"] == "GET, HEAD"
    assert collector.budgets == []  # the old server answered full metrics, from a scrape


def test_a_post_with_a_large_body_still_reads_its_405() -> None:
    """The body is never read; the server drains a little before closing, so that closing with
    unread input (a reset) cannot swallow the answer."""
    collector = RecordingCollector()
    body = b"x" * 2_000_000
    with running(collector) as server, connect(server.port) as sock:
        head = request_bytes("POST", "/metrics", f"Content-Length: {len(body)}")

        def send() -> None:
            with suppress(OSError):
                sock.sendall(head + body)

        sender = threading.Thread(target=send)
        sender.start()
        reply = read_reply(sock)
        sender.join(ANSWER_WITHIN)
    assert reply.status == 405 and reply.headers["connection"] == "close"
    assert collector.budgets == []


def test_head_has_headers_only_and_calls_no_qbittorrent() -> None:
    collector = RecordingCollector(FakeFlavour(torrents=[torrent(1)]))
    with running(collector) as server, connect(server.port) as sock:
        sock.sendall(request_bytes("HEAD", "/metrics", "Accept-Encoding: gzip"))
        head = read_reply(sock, head_only=True)
        # A body after the HEAD answer would be read here as the next status line.
        sock.sendall(request_bytes("GET", "/healthz"))
        after = read_reply(sock)
    assert head.status == 200 and head.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert head.headers["content-encoding"] == "gzip"
    assert after.status == 200 and after.body == b"ok\n"
    assert collector.budgets == []


def test_head_of_other_paths_has_no_body() -> None:
    with running() as server, connect(server.port) as sock:
        sock.sendall(request_bytes("HEAD", "/"))
        head = read_reply(sock, head_only=True)
        sock.sendall(request_bytes("GET", "/healthz"))
        assert read_reply(sock).body == b"ok\n"
    assert head.status == 200 and int(head.headers["content-length"]) > 0


@pytest.fixture
def held() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_connections_over_the_cap_are_refused_and_capacity_returns(
    held: ExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), running(max_connections=4) as server:
        inside = [held.enter_context(connect(server.port)) for _ in range(4)]
        for sock in inside:  # answered, and kept alive: each holds its place
            sock.sendall(request_bytes("GET", "/healthz"))
            assert read_reply(sock).status == 200
        for _ in range(2):
            with connect(server.port) as extra:
                with suppress(OSError):
                    extra.sendall(request_bytes("GET", "/healthz"))
                refused = closed_by_server(extra)  # never a hang: refused at once
            assert refused == b"" or refused.startswith(b"HTTP/1.1 503 "), refused
        for sock in inside:  # the ones under the cap are still served
            sock.sendall(request_bytes("GET", "/metrics"))
            assert read_reply(sock).status == 200
        held.close()
        assert server.wait_idle(ANSWER_WITHIN)
        assert exchange(server.port, request_bytes("GET", "/healthz")).status == 200
    assert [r.getMessage() for r in caplog.records if "refusing" in r.getMessage()] == [
        "refusing connections: 4 open, the most --web.max-connections allows"
    ]


def test_threads_and_fds_return_to_their_baseline_after_clients_leave() -> None:
    with running(read_timeout=5.0) as server:
        assert exchange(server.port, request_bytes("GET", "/healthz")).status == 200
        assert server.wait_idle(ANSWER_WITHIN)
        for thread in _http_threads():
            thread.join(ANSWER_WITHIN)
        threads, fds = threading.active_count(), _open_fds()
        with ExitStack() as clients:
            socks = [clients.enter_context(connect(server.port)) for _ in range(30)]
            for sock in socks[:10]:
                sock.sendall(request_bytes("GET", "/metrics"))
                assert read_reply(sock).status == 200
            for sock in socks[10:20]:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Half: ")  # half a request, then gone
        # Connections are accepted in order: once this one is answered, all the above were taken.
        assert exchange(server.port, request_bytes("GET", "/healthz")).status == 200
        assert server.wait_idle(ANSWER_WITHIN)
        for thread in _http_threads():
            thread.join(ANSWER_WITHIN)
        assert threading.active_count() == threads
        assert _open_fds() == fds


@contextmanager
def _asked_and_never_read(port: int) -> Iterator[socket.socket]:
    """A client that sends a GET and never reads the answer, with a receive buffer kept small."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(ANSWER_WITHIN)
        sock.connect(("127.0.0.1", port))
        sock.sendall(request_bytes("GET", "/"))
        yield sock


def test_a_client_that_does_not_read_its_answer_is_dropped_after_the_write_timeout() -> None:
    big = b"x" * 32_000_000  # far more than the socket buffers hold
    called = threading.Event()

    def app(environ: object, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        called.set()
        return [big]

    server = HTTPServer(app, "127.0.0.1", 0, limits=Limits(write_timeout=0.5)).start()
    try:
        with _asked_and_never_read(server.port):
            assert called.wait(ANSWER_WITHIN)
            # Never read: the server's thread must give up on its own, not wait for us forever.
            assert server.wait_idle(ANSWER_WITHIN * 2)
    finally:
        server.stop()


def test_stop_closes_open_connections_and_frees_the_port() -> None:
    with running() as server, connect(server.port) as idle:
        port = server.port
        server.stop()
        assert closed_by_server(idle) == b""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN).close()


def test_an_exception_in_the_app_is_a_500_not_a_dead_connection() -> None:
    def broken(environ: object, start_response: object) -> list[bytes]:
        raise RuntimeError("bug")

    server = HTTPServer(broken, "127.0.0.1", 0).start()
    try:
        assert exchange(server.port, request_bytes("GET", "/")).status == 500
    finally:
        server.stop()


def test_bad_request_lines_get_400() -> None:
    with running() as server:
        assert exchange(server.port, b"NONSENSE\r\n\r\n").status == 400
        assert exchange(server.port, b"GET / HTTP/2.0\r\n\r\n").status == 505


def _serving(answer: Any, **limits: float) -> HTTPServer:
    def app(environ: object, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return answer

    return HTTPServer(app, "127.0.0.1", 0, limits=Limits(**limits)).start()


def test_the_answer_is_closed_once_its_last_byte_is_sent() -> None:
    """WSGI's ``close`` comes after the sending: the exporter starts its work between scrapes there
    (``web.Answer``), and a close before it would hold the answer until the close returned."""
    body = b"x" * 4_000_000  # sent in many pieces
    received, closed = threading.Event(), threading.Event()
    sent_first: list[bool] = []

    def on_close() -> None:
        sent_first.append(received.wait(ANSWER_WITHIN))  # only the whole answer read sets it
        closed.set()

    server = _serving(Answer([body], on_close))
    try:
        reply = exchange(server.port, request_bytes("GET", "/"))
        received.set()
        assert reply.status == 200 and reply.body == body
        assert closed.wait(ANSWER_WITHIN)
        assert sent_first == [True]
    finally:
        server.stop()


def test_the_answer_is_closed_when_its_client_never_takes_it() -> None:
    closed = threading.Event()
    server = _serving(Answer([b"x" * 32_000_000], closed.set), write_timeout=0.5)
    try:
        with _asked_and_never_read(server.port):
            assert closed.wait(ANSWER_WITHIN * 2)  # never read: the write gave up, then the close
    finally:
        server.stop()


class _Failing:
    """An answer whose iteration fails, and which says whether it was closed."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        raise RuntimeError("bug while rendering")

    def close(self) -> None:
        self.closed.set()


def test_an_answer_that_fails_while_read_is_still_closed_and_the_client_gets_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer = _Failing()
    server = _serving(answer)
    try:
        with caplog.at_level(logging.ERROR, logger="qbt_exporter.httpserver"):
            assert exchange(server.port, request_bytes("GET", "/")).status == 500
        assert answer.closed.wait(ANSWER_WITHIN)
    finally:
        server.stop()


def test_a_failing_close_is_logged_and_the_connection_serves_on(caplog: pytest.LogCaptureFixture) -> None:
    def on_close() -> None:
        raise RuntimeError("close failed")

    server = _serving(Answer([b"ok\n"], on_close))
    try:
        with caplog.at_level(logging.ERROR, logger="qbt_exporter.httpserver"), connect(server.port) as sock:
            for _ in range(2):  # kept alive: the second request on the same connection
                sock.sendall(request_bytes("GET", "/"))
                assert read_reply(sock).body == b"ok\n"
        assert "error closing the answer to GET /" in caplog.text
    finally:
        server.stop()
