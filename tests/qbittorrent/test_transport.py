"""The transport under hostile replies, over real sockets: dripping, endless, oversized, gzip bombs.

Each server here misbehaves in one way the issue found: a reply dripping a byte at a time (each
read well within the socket timeout, so only the deadline can stop it), headers that never end, an
endless chunked body, a body or a gzip stream far over ``max_reply_size``. The client must give up
by the deadline or at the cap, count the call under the right outcome, and drop the connection.
Time bounds are generous: the failure they catch is a reply that goes on for its full length.
"""

from __future__ import annotations

import gzip
import socket
import time
import tracemalloc
import zlib

import pytest

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.errors import BadResponse, TimedOut, TooLarge
from qbt_exporter.qbittorrent.transport import Transport
from qbt_exporter.stats import Stats
from tests import counters
from tests.qbittorrent.test_client import TinyServer

DRIP = 0.05  # seconds between two bytes: far below the 2 s socket timeout, so only the deadline can cut
BUDGET = 1.0
# A hang-guard, not a speed check: every drip below lasts 60 s (1,200 bytes), so a client that read
# on to the end, or for ever, fails; one cut at its deadline passes however loaded the machine is.
HANG_GUARD = 20.0
MIB = 1 << 20


def make(server: TinyServer, stats: Stats, **kwargs: object) -> Client:
    client = Client(server.url, "admin", "pw", stats=stats, timeout=2.0, **kwargs)  # type: ignore[arg-type]
    client.set_dialect("/login", "/logout")
    return client


def drip(conn: socket.socket, server: TinyServer, data: bytes) -> None:
    """Send ``data`` one byte every ``DRIP`` seconds, until done or the test ends."""
    for i in range(len(data)):
        if server.stopping.wait(DRIP):
            return
        conn.sendall(data[i : i + 1])


def timed_public_get(client: Client, deadline: Deadline) -> tuple[type[BaseException] | None, float]:
    started = time.monotonic()
    try:
        client.get_public("/version/api", endpoint="version_api", deadline=deadline)
    except Exception as exc:
        return type(exc), time.monotonic() - started
    finally:
        client.close()
    return None, time.monotonic() - started


# --- defect 3: the whole exchange ends by the deadline ------------------------------------------
def dripping_body(conn: socket.socket, server: TinyServer) -> None:
    """The reported case: a small body at one byte per tick (here 1,200 bytes: 60 s in all)."""
    if server.read_request(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1200\r\n\r\n")
        drip(conn, server, b"7" * 1200)


def dripping_headers(conn: socket.socket, server: TinyServer) -> None:
    """The status line, then a header line that never ends."""
    if server.read_request(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        drip(conn, server, b"a" * 1200)


def endless_chunked(conn: socket.socket, server: TinyServer) -> None:
    """A chunked body whose chunks keep coming, each in time."""
    if server.read_request(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while not server.stopping.wait(DRIP):
            conn.sendall(b"1\r\nx\r\n")


def dripping_no_length(conn: socket.socket, server: TinyServer) -> None:
    """No Content-Length: the body ends when the server closes, so a cut socket looks like its end."""
    if server.read_request(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        drip(conn, server, b"[" * 1200)


@pytest.mark.parametrize("handler", [dripping_body, dripping_headers, endless_chunked, dripping_no_length])
def test_a_dripping_or_endless_reply_costs_at_most_the_budget(handler: object) -> None:
    with TinyServer(handler) as server:  # type: ignore[arg-type]
        stats = Stats()
        error, elapsed = timed_public_get(make(server, stats), Deadline(BUDGET))
        assert server.accepted == 1  # a timeout is never sent again

    assert error is TimedOut
    assert elapsed < HANG_GUARD  # the old client read on for 60 s, or for ever
    assert counters.all_requests(stats) == {("version_api", "timeout"): 1}


def test_the_deadline_cuts_a_drip_even_between_bodies_of_a_scrape() -> None:
    """Several calls share one budget: the drip of the second one stops when the budget is spent."""

    def fast_then_drip(conn: socket.socket, server: TinyServer) -> None:
        request = server.read_request(conn)
        if request and request[1].startswith("/login"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nSet-Cookie: SID=a; path=/\r\nContent-Length: 3\r\n\r\nOk.")
        elif request:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1200\r\n\r\n")
            drip(conn, server, b"1" * 1200)

    with TinyServer(fast_then_drip) as server:
        stats = Stats()
        client = make(server, stats)
        started = time.monotonic()
        with pytest.raises(TimedOut):
            client.get_json("/query/torrents", endpoint="torrents", deadline=Deadline(BUDGET))
        elapsed = time.monotonic() - started
        client.close()

    assert elapsed < HANG_GUARD
    assert counters.logins(stats, "ok") == 1 and counters.requests(stats, "torrents", "timeout") == 1


def test_logout_at_shutdown_is_bounded_by_the_request_timeout_however_the_reply_drips() -> None:
    def login_then_drip(conn: socket.socket, server: TinyServer) -> None:
        request = server.read_request(conn)
        if request and request[1].startswith("/login"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nSet-Cookie: SID=a; path=/\r\nContent-Length: 3\r\n\r\nOk.")
        elif request:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1200\r\n\r\n")
            drip(conn, server, b"." * 1200)

    with TinyServer(login_then_drip) as server:
        client = make(server, Stats())
        client.login(Deadline(10))
        started = time.monotonic()
        client.logout()  # no deadline given: the request timeout (2 s) bounds the whole exchange
        elapsed = time.monotonic() - started
        client.close()

    assert elapsed < HANG_GUARD  # the old client read the 60 s drip to its end
    assert not client.has_session()


# --- defect 5: the size of one reply is capped, decoded ----------------------------------------
BLOCK = b"x" * 65536


def endless_plain(conn: socket.socket, server: TinyServer) -> None:
    """A plain body with no length that goes on until the client hangs up (20 MB at most)."""
    if server.read_request(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n")
        for _ in range(320):
            conn.sendall(BLOCK)


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip'd (about 1,000:1), built without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MIB)
    return b"".join([*(packer.compress(zeros) for _ in range(size // MIB)), packer.flush()])


BOMB = gzip_bomb(100 * MIB)


def bomb_server(conn: socket.socket, server: TinyServer) -> None:
    while request := server.read_request(conn):
        body = BOMB if request[1].startswith("/bomb") else gzip.compress(b'["small"]')
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Encoding: gzip\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )


def peak_of(work: object) -> tuple[BaseException | None, int]:
    """The exception ``work()`` raised and the peak of Python memory allocated meanwhile."""
    tracemalloc.start()
    try:
        work()  # type: ignore[operator]
    except Exception as exc:
        return exc, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return None, 0


@pytest.mark.parametrize(("handler", "path"), [(endless_plain, "/big"), (bomb_server, "/bomb")])
def test_a_reply_over_the_cap_fails_cleanly_holding_no_more_than_the_cap(handler: object, path: str) -> None:
    with TinyServer(handler) as server:  # type: ignore[arg-type]
        stats = Stats()
        client = make(server, stats, max_reply_size=MIB)
        try:
            error, peak = peak_of(lambda: client.get_public(path, endpoint="torrents", deadline=Deadline(30)))
        finally:
            client.close()

    assert isinstance(error, TooLarge) and "max-reply-size" in str(error)
    assert peak < 6 * MIB  # the old client held all of it: 20 MB plain, 100 MB inflated
    assert counters.all_requests(stats) == {("torrents", "too_large"): 1}


def test_after_a_reply_over_the_cap_the_connection_is_not_reused() -> None:
    with TinyServer(bomb_server) as server:
        client = make(server, Stats(), max_reply_size=MIB)
        try:
            with pytest.raises(TooLarge):
                client.get_public("/bomb", endpoint="torrents", deadline=Deadline(30))
            resp = client.get_public("/small", endpoint="torrents", deadline=Deadline(30))
            again = client.get_public("/small", endpoint="torrents", deadline=Deadline(30))
        finally:
            client.close()
        assert server.accepted == 2  # the bomb's connection was dropped; keep-alive works after it

    assert resp.body == again.body == b'["small"]'


def test_a_content_length_over_the_cap_fails_before_reading() -> None:
    """60 MB announced, a few bytes sent: the call fails at once, not at the deadline."""

    def announce(conn: socket.socket, server: TinyServer) -> None:
        if server.read_request(conn):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 60000000\r\n\r\n[1,")
            server.stopping.wait(30)

    with TinyServer(announce) as server:
        stats = Stats()
        client = make(server, stats, max_reply_size=MIB)
        error, _ = timed_public_get(client, Deadline(30))

    assert error is TooLarge  # from the header: the old client waited for the 60 MB until it timed out
    assert counters.requests(stats, "version_api", "too_large") == 1


def test_gzip_and_deflate_replies_under_the_cap_are_decoded() -> None:
    payload = b'[{"name": "' + b"n" * 5000 + b'"}]'
    bodies = {"/gzip": ("gzip", gzip.compress(payload)), "/deflate": ("deflate", zlib.compress(payload))}

    def serve(conn: socket.socket, server: TinyServer) -> None:
        while request := server.read_request(conn):
            coding, body = bodies[request[1]]
            conn.sendall(
                f"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Encoding: {coding}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )

    with TinyServer(serve) as server:
        client = make(server, Stats(), max_reply_size=len(payload))
        try:
            for path in bodies:
                assert client.get_public(path, endpoint="torrents", deadline=Deadline(10)).body == payload
        finally:
            client.close()


def test_a_coding_we_did_not_ask_for_is_a_bad_response() -> None:
    def brotli(conn: socket.socket, server: TinyServer) -> None:
        if server.read_request(conn):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n[]")

    with TinyServer(brotli) as server:
        stats = Stats()
        error, _ = timed_public_get(make(server, stats), Deadline(10))

    assert error is BadResponse
    assert counters.requests(stats, "version_api", "bad_response") == 1


# --- what we ask for: plain replies over loopback, gzip elsewhere ---------------------------------
def test_a_qbittorrent_on_loopback_is_asked_for_plain_replies_and_a_gzipped_one_is_still_read() -> None:
    payload = b'["plain"]'
    heads: list[str] = []

    def serve(conn: socket.socket, server: TinyServer) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        heads.append(data.decode("latin-1"))
        body = gzip.compress(payload)  # a proxy or an odd server may gzip anyway
        conn.sendall(
            f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    with TinyServer(serve) as server:
        client = make(server, Stats())
        try:
            assert (
                client.get_public("/version/api", endpoint="version_api", deadline=Deadline(10)).body
                == payload
            )
        finally:
            client.close()

    assert "\r\nAccept-Encoding: identity\r\n" in heads[0]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "identity"),
        ({"HTTP_PROXY": "http://proxy.test:3128"}, "gzip, deflate"),  # the proxy may be anywhere
        ({"HTTP_PROXY": "http://proxy.test:3128", "NO_PROXY": "127.0.0.1"}, "identity"),
    ],
)
def test_a_proxy_in_the_way_keeps_gzip_even_for_loopback(
    environ: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    transport = Transport("http://127.0.0.1:8080", verify=True, max_reply_size=MIB, user_agent="test")
    try:
        assert transport.session.headers["Accept-Encoding"] == expected
    finally:
        transport.close()
