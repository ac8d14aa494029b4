"""The direct way of a GET (``plainhttp``, written and read on the pooled socket) against requests' way.

A plain-HTTP GET no longer goes through ``requests`` → ``urllib3`` → ``http.client`` (about 1 ms of
the exporter's CPU per properties call, thousands of them a scrape on a large library): the
transport writes it and reads the reply on a pooled connection itself. Every reply below, ordinary
or odd, must come out of both ways the same: the same status, headers and body, or the same error
counted under the same outcome. requests' way is still taken when the adapter's ``send`` is not
requests' own (a ``responses`` mock, a spy), which is how each reply is also read the old way here.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests.adapters
import urllib3.connectionpool

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.client import Client, Response
from qbt_exporter.qbittorrent.errors import QbtError, TimedOut
from qbt_exporter.stats import Stats
from tests import counters
from tests.qbittorrent.test_client import TinyServer, reply

OK = b"HTTP/1.1 200 OK\r\n"
GZ = gzip.compress(b'{"a": 1}')

# name -> the bytes a server sends back to one GET, then it closes the connection
REPLIES: dict[str, bytes] = {
    "plain": OK + b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n[]",
    "no reason": b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n[]",
    "HTTP/1.0 to the close": b"HTTP/1.0 200 OK\r\n\r\n[1, 2]",
    "to the close": OK + b"Content-Type: text/plain\r\n\r\nsome text",
    "bare LF": b"HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\n[]",
    "a header sent twice": OK + b"X-A: 1\r\nx-a: 2\r\nContent-Length: 2\r\n\r\n[]",
    "Content-Length twice, the same": OK + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n[]",
    "Content-Length twice, different": OK + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n[]x",
    "a bad Content-Length": OK + b"Content-Length: two\r\n\r\n[]",
    "a negative Content-Length": OK + b"Content-Length: -2\r\n\r\n[]",
    "a short body": OK + b"Content-Length: 10\r\n\r\n[1,",
    "a longer body": OK + b"Content-Length: 2\r\n\r\n[]garbage",
    "an empty value and spaces": OK + b"X-Empty:\r\nX-Spaced:   v  \r\nContent-Length: 2\r\n\r\n[]",
    "a folded header": OK + b"X-A: one\r\n two\r\nContent-Length: 2\r\n\r\n[]",
    "a line that is no header": OK + b"Content-Length: 2\r\nnot a header\r\nX-B: 1\r\n\r\n[]",
    "a header name with a space": OK + b"Bad Name: 1\r\nContent-Length: 2\r\n\r\n[]",
    "latin-1 and UTF-8 in a value": OK + "X-A: café ünï\r\nContent-Length: 2\r\n\r\n[]".encode(),
    "chunked": OK + b"Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\n[1,\r\n2\r\n2]\r\n0\r\nX-T: 1\r\n\r\n",
    "chunked, upper case": OK + b"Transfer-Encoding: CHUNKED\r\n\r\n2\r\n[]\r\n0\r\n\r\n",
    "chunked after gzip": OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n",
    "chunked, a bad size": OK + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n[]\r\n0\r\n\r\n",
    "chunked, cut short": OK + b"Transfer-Encoding: chunked\r\n\r\n10\r\n[1,2",
    "chunked, no last chunk": OK + b"Transfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n",
    "gzip": OK + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(GZ) + GZ,
    "100 Continue first": b"HTTP/1.1 100 Continue\r\n\r\n" + OK + b"Content-Length: 2\r\n\r\n[]",
    "204 with bytes after": b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n[]",
    "304": b"HTTP/1.1 304 Not Modified\r\n\r\n",
    "404": b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nNot Found",
    "a redirect": b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n",
    "Set-Cookie on a GET": OK
    + b"Set-Cookie: SID=new; path=/\r\nSet-Cookie: B=2\r\nContent-Length: 2\r\n\r\n[]",
    "nothing at all": b"",
    "no status line": b"garbage\r\n\r\n",
    "a status under 100": b"HTTP/1.1 99 Odd\r\n\r\n",
    "a status of letters": b"HTTP/1.1 OK\r\n\r\n",
    "ICY": b"ICY 200 OK\r\n\r\n",
    "the headers never end": OK + b"X-A: 1\r\n",
    "a status line too long": b"HTTP/1.1 200 " + b"O" * 70000 + b"\r\n\r\n",
    "a header line too long": OK + b"X-A: " + b"a" * 70000 + b"\r\n\r\n",
    "101 headers": OK + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n",
    "99 headers": OK + b"".join(b"X-%d: 1\r\n" % i for i in range(98)) + b"Content-Length: 0\r\n\r\n",
    "100 headers": OK + b"".join(b"X-%d: 1\r\n" % i for i in range(99)) + b"Content-Length: 0\r\n\r\n",
    "a head over two pieces": OK + b"X-A: " + b"a" * 70000,
}


def serve(raw: bytes) -> Any:
    def handle(conn: socket.socket, server: TinyServer) -> None:
        if server.read_request(conn):
            conn.sendall(raw)
        conn.close()

    return handle


def requests_way(client: Client) -> None:
    """Make ``client`` send every request through requests' adapter, as before (a spy does)."""
    adapter = client.session.get_adapter(client.base_url)
    adapter.send = lambda *args, **kwargs: requests.adapters.HTTPAdapter.send(adapter, *args, **kwargs)  # type: ignore[method-assign]


def outcome(client: Client, stats: Stats) -> tuple[Any, ...]:
    """What one GET gave: the reply's status, headers and body, or the error; and the counts."""
    try:
        resp: Response | QbtError = client.get_public("/x", endpoint="version", deadline=Deadline(10))
    except QbtError as err:
        resp = err
    cookies = sorted((c.name, c.value) for c in client.session.cookies)
    if isinstance(resp, Response):
        return ("reply", resp.status, dict(resp.headers), resp.body, cookies, counters.all_requests(stats))
    message = str(resp).replace(client.base_url, "http://qbittorrent")
    return ("error", type(resp).__name__, message, counters.all_requests(stats))


@pytest.mark.parametrize("name", list(REPLIES))
def test_every_reply_reads_the_same_both_ways(name: str) -> None:
    results = []
    for old in (False, True):
        with TinyServer(serve(REPLIES[name])) as server:
            stats = Stats()
            client = Client(server.url, "admin", "pw", stats=stats, timeout=5.0)
            if old:
                requests_way(client)
            try:
                results.append(outcome(client, stats))
            finally:
                client.close()
    assert results[0] == results[1]


@pytest.fixture
def urlopen_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The URLs sent through urllib3's ``urlopen`` (requests' way ends there)."""
    calls: list[str] = []
    urlopen = urllib3.connectionpool.HTTPConnectionPool.urlopen

    def spy(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(f"{method} {url}")
        return urlopen(self, method, url, *args, **kwargs)

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "urlopen", spy)
    yield calls


def keep_alive(conn: socket.socket, server: TinyServer) -> None:
    """qBittorrent 4.1+: every reply says "Connection: keep-alive" and the connection stays."""
    while request := server.read_request(conn):
        conn.sendall(reply(request[1], keep_alive=True))


def test_gets_skip_requests_and_share_its_connections(urlopen_calls: list[str]) -> None:
    """The login goes through requests, the GETs straight on its pooled connection: one
    connection for all, and no GET through urllib3's ``urlopen`` (the old way's every call)."""
    with TinyServer(keep_alive) as server:
        stats = Stats()
        client = Client(server.url, "admin", "pw", stats=stats, timeout=5.0)
        try:
            for _ in range(5):
                assert (
                    client.get_json("/api/v2/torrents/info", endpoint="torrents", deadline=Deadline(10)) == []
                )
            client.logout(Deadline(10))
        finally:
            client.close()
        assert server.accepted == 1
        assert server.paths == ["/api/v2/auth/login"] + ["/api/v2/torrents/info"] * 5 + [
            "/api/v2/auth/logout"
        ]

    assert urlopen_calls == ["POST /api/v2/auth/login", "POST /api/v2/auth/logout"]
    assert counters.all_requests(stats) == {("login", "ok"): 1, ("torrents", "ok"): 5, ("logout", "ok"): 1}


def test_a_proxy_keeps_every_request_on_requests_way(
    urlopen_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through an HTTP proxy the request line must carry the whole URL: requests sends it."""
    with TinyServer(keep_alive) as proxy:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        client = Client("http://qbt.test:8080", "admin", "pw", stats=Stats(), timeout=5.0)
        try:
            client.get_json("/api/v2/torrents/info", endpoint="torrents", deadline=Deadline(10))
        finally:
            client.close()
        assert proxy.paths == [
            "http://qbt.test:8080/api/v2/auth/login",
            "http://qbt.test:8080/api/v2/torrents/info",
        ]


def test_concurrent_gets_never_share_a_connection_at_once() -> None:
    """Scrapes of one client may run in parallel: each GET has its connection to itself."""
    with TinyServer(keep_alive) as server:
        client = Client(server.url, "admin", "pw", stats=Stats(), timeout=5.0)
        client.login(Deadline(10))
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(50):
                    client.get_json("/api/v2/torrents/info", endpoint="torrents", deadline=Deadline(10))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        finally:
            client.close()
        assert not errors
        assert server.paths.count("/api/v2/torrents/info") == 200
        assert server.accepted <= 5


def test_the_request_timeout_bounds_each_read_of_the_direct_way(urlopen_calls: list[str]) -> None:
    """A server that never answers: the socket's timeout (0.5 s, far inside the 60 s deadline)
    ends the call, once; what ended it is told by the message, not by a clock."""

    def never_answer(conn: socket.socket, server: TinyServer) -> None:
        server.read_request(conn)
        server.stopping.wait(30)

    with TinyServer(never_answer) as server:
        stats = Stats()
        client = Client(server.url, "admin", "pw", stats=stats, timeout=0.5)
        try:
            with pytest.raises(TimedOut, match="no data within the request timeout"):
                client.get_public("/version/api", endpoint="version_api", deadline=Deadline(60))
        finally:
            client.close()
        assert server.accepted == 1

    assert urlopen_calls == []
    assert counters.all_requests(stats) == {("version_api", "timeout"): 1}
