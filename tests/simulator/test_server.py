"""4.0.4's HTTP quirks on the socket: one reply per connection, its header form, its parser.

Why: clients of a real 4.0.4 must cope with a server that closes after every reply without saying
so, drops pipelined requests and answers a malformed request with a bare 400; the simulator's
socket layer reproduces that whatever the WebUI behind it answers.
"""

from __future__ import annotations

import gzip

import pytest
import requests

from qbt_exporter.simulator import Simulator
from qbt_exporter.simulator.server import Drop, HttpServer, Request, Response
from tests.simulator.wire import get, parse, parse_to_dict, raw_exchange, same_shape


def test_binds_loopback_by_default(sim: Simulator) -> None:
    assert sim.url == f"http://127.0.0.1:{sim.port}"


def test_connection_closed_after_each_response_without_connection_header(sim: Simulator) -> None:
    raw = raw_exchange(
        sim,
        f"GET /version/api HTTP/1.1\r\nHost: 127.0.0.1:{sim.port}\r\nConnection: keep-alive\r\n\r\n".encode(),
    )
    status, headers, body = parse(raw)
    assert status == "HTTP/1.1 200 OK" and body == b"17"
    assert "connection" not in dict(headers)
    names = [k for k, _ in headers]
    assert names == sorted(names) and all(k == k.lower() for k in names)
    assert "date" in names


def test_pipelined_second_request_is_dropped(sim: Simulator) -> None:
    host = f"Host: 127.0.0.1:{sim.port}\r\n"
    raw = raw_exchange(
        sim,
        f"GET /version/api HTTP/1.1\r\n{host}\r\nGET /version/qbittorrent HTTP/1.1\r\n{host}\r\n".encode(),
    )
    assert raw.count(b"HTTP/1.1") == 1
    same_shape(parse_to_dict(raw), "86-raw-two-pipelined.http")


@pytest.mark.parametrize(
    ("request_bytes", "name"),
    [
        (b"GET /version/api HTTP/1.0\r\n\r\n", "86-raw-http10-no-host.http"),
        (b"GET /version/api HTTP/1.1\r\n\r\n", "86-raw-http11-no-host.http"),
        (b"GARBAGE\r\n\r\n", "86-raw-garbage.http"),
        (
            b"POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n24\r\nusername=admin&password=adminadmin\r\n0\r\n\r\n",
            "86-raw-post-chunked-login.http",
        ),
        (
            b"POST /login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 44\r\n\r\n"
            b'{"username":"admin","password":"adminadmin"}',
            "86-raw-login-json-body.http",
        ),
        (b"HEAD /version/api HTTP/1.1\r\n\r\n", "79-head-version-api.http"),
    ],
)
def test_raw_requests_match_recordings(sim: Simulator, request_bytes: bytes, name: str) -> None:
    same_shape(parse_to_dict(raw_exchange(sim, request_bytes)), name)


def test_multipart_login_is_accepted(sim: Simulator) -> None:
    response = requests.post(
        sim.url + "/login", files={"username": (None, "admin"), "password": (None, "adminadmin")}
    )
    assert response.text == "Ok." and "SID=" in response.headers["set-cookie"]


def test_gzip_only_for_bodies_over_1024_bytes(sim: Simulator, cookie: str) -> None:
    same_shape(get(sim, "/version/api", {"Accept-Encoding": "gzip"}), "85-version-api-gzip-small.http")
    _, plain_headers, plain = get(sim, "/query/torrents", {"Cookie": cookie})
    _, headers, packed = get(sim, "/query/torrents", {"Cookie": cookie, "Accept-Encoding": "gzip, deflate"})
    assert "content-encoding" not in plain_headers
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(packed) == plain
    _, headers, _ = get(sim, "/query/torrents", {"Cookie": cookie, "Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in headers


def test_the_socket_layer_serves_any_request_to_response_callable() -> None:
    """The server is handed a callable and nothing else: parsed request in, response (or a drop) out."""
    seen: list[tuple[str, str, dict[str, str], dict[str, str]]] = []

    def handler(request: Request) -> Response | Drop:
        seen.append((request.method, request.path, request.query, request.posts))
        if request.path == "/close":
            return Drop.CLOSE
        return Response(200, "OK", {"x-b": "2", "content-type": "text/plain"}, b"hi")

    server = HttpServer("127.0.0.1", 0, handler)
    try:
        raw = raw_exchange(
            server,
            b"POST /p?a=1 HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 3\r\n\r\nb=2",
        )
        closed = raw_exchange(server, b"GET /close HTTP/1.1\r\n\r\n")
    finally:
        server.stop()
    status, headers, body = parse(raw)
    assert status == "HTTP/1.1 200 OK" and body == b"hi"
    assert [name for name, _ in headers] == ["content-length", "content-type", "date", "x-b"]
    assert closed == b""
    assert seen == [("POST", "/p", {"a": "1"}, {"b": "2"}), ("GET", "/close", {}, {})]
