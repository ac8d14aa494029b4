"""The fault-injecting qBittorrent (qbt_exporter/simulator/faults.py) does what each fault says, over real
sockets, in front of the simulator. These tests speak raw HTTP so that nothing between the test and
the proxy smooths over what the proxy sends."""

from __future__ import annotations

import gzip
import json
import re
import socket
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from qbt_exporter.simulator import Simulator, SimulatorConfig
from qbt_exporter.simulator.faults import (
    Cookies,
    Drip,
    FaultProxy,
    GzipBomb,
    Hang,
    JsonEdit,
    Oversize,
    RawBytes,
    Replace,
    Reset,
    duplicate_torrent,
    gzip_bomb,
    set_field,
)

TORRENTS = "/query/torrents"
QUIET = 0.3  # how long "nothing more arrives" is watched, where the proxy would wait for minutes


@dataclass
class Raw:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def json(self) -> object:
        return json.loads(self.body)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(torrents=5, latency=False, churn=False, time_scale=0)) as simulator:
        yield simulator


@pytest.fixture
def proxy(sim: Simulator) -> Iterator[FaultProxy]:
    with FaultProxy(sim.url) as p:
        yield p


@pytest.fixture(scope="module")
def sid(sim: Simulator) -> str:
    """A session of the simulator, got through a proxy (the proxy rewrites Host for its checks)."""
    with FaultProxy(sim.url) as p:
        reply = request(p, "POST", "/login", body=b"username=admin&password=adminadmin")
    assert reply.body == b"Ok."
    cookie = reply.header("Set-Cookie") or ""
    return cookie.split(";")[0].removeprefix("SID=")


def send(proxy: FaultProxy, method: str, path: str, body: bytes = b"", cookie: str = "") -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{proxy.port}"]
    if cookie:
        lines.append(f"Cookie: SID={cookie}")
    if body:
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return conn


def read_head(conn: socket.socket) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers, and whatever part of the body came with them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"closed before the headers ended: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    return int(lines[0].split(" ")[1]), headers, rest


def read_to_close(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def request(proxy: FaultProxy, method: str, path: str, body: bytes = b"", cookie: str = "") -> Raw:
    with send(proxy, method, path, body, cookie) as conn:
        status, headers, rest = read_head(conn)
        return Raw(status, headers, rest + read_to_close(conn))


def nothing_more(conn: socket.socket) -> bool:
    """True if nothing arrives for QUIET seconds (the faults below would wait far longer)."""
    conn.settimeout(QUIET)
    try:
        return conn.recv(1) == b"never"
    except TimeoutError:
        return True


def torrents(proxy: FaultProxy, sid: str) -> Raw:
    return request(proxy, "GET", TORRENTS, cookie=sid)


# --- forwarding, counting, switching ---------------------------------------------------------------
def test_without_faults_the_reply_is_the_upstreams(proxy: FaultProxy, sim: Simulator, sid: str) -> None:
    reply = torrents(proxy, sid)
    assert reply.status == 200
    assert {t["hash"] for t in reply.json} == set(sim.torrent_hashes())  # type: ignore[union-attr]
    assert reply.header("Connection") == "close"
    assert reply.header("Content-Length") == str(len(reply.body))
    assert proxy.requests_by_path[TORRENTS] == proxy.forwarded_by_path[TORRENTS] == 1


def test_faults_switch_at_runtime_and_can_be_limited_to_a_number_of_requests(
    proxy: FaultProxy, sid: str
) -> None:
    proxy.set_fault("^/query/torrents$", Replace(b"first", status=500), times=1)
    assert torrents(proxy, sid).status == 500
    assert torrents(proxy, sid).status == 200
    proxy.set_fault("torrents", Replace(b"again"))
    assert torrents(proxy, sid).body == b"again"
    assert request(proxy, "GET", "/version/api").body == b"17"  # another path is not touched
    proxy.clear()
    assert torrents(proxy, sid).status == 200
    assert proxy.count("^/query/torrents$") == 4
    assert proxy.forwarded_by_path[TORRENTS] == 2  # replaced replies never reached the upstream
    assert proxy.count("propertiesGeneral") == 0


def test_an_unreachable_upstream_resets_the_connection() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connections are refused
        with FaultProxy(f"http://127.0.0.1:{port}") as p, send(p, "GET", "/version/api") as conn:
            with pytest.raises(ConnectionResetError):
                conn.recv(1)
            assert p.wait_idle()
            assert p.upstream_failures == 1


# --- time: drip and hang --------------------------------------------------------------------------
def test_drip_sends_n_bytes_per_interval(proxy: FaultProxy) -> None:
    proxy.set_fault("/version/api", Drip(per_interval=3, interval=0.001, body=b"0123456789" * 4))
    reply = request(proxy, "GET", "/version/api")
    assert reply.body == b"0123456789" * 4
    proxy.set_fault("/version/api", Drip(per_interval=3, interval=600, body=b"0123456789"))
    with send(proxy, "GET", "/version/api") as conn:
        status, headers, rest = read_head(conn)
        body = rest or conn.recv(100)
        assert (status, body) == (200, b"012")
        assert ("Content-Length", "10") in headers
        assert nothing_more(conn)  # the next 3 bytes are due in ten minutes


def test_an_endless_drip_never_ends(proxy: FaultProxy) -> None:
    proxy.set_fault("/version/api", Drip(per_interval=8192, interval=0.0001, endless=True))
    with send(proxy, "GET", "/version/api") as conn:
        _, headers, data = read_head(conn)
        while len(data) < 200_000:
            data += conn.recv(65536)
    assert not [k for k, _ in headers if k.lower() == "content-length"]
    assert data.startswith(b"17") and data[2:].strip() == b""


def test_drip_of_the_whole_reply_holds_back_even_the_status_line(proxy: FaultProxy) -> None:
    proxy.set_fault("/version/api", Drip(per_interval=4, interval=600, whole=True))
    with send(proxy, "GET", "/version/api") as conn:
        assert conn.recv(100) == b"HTTP"
        assert nothing_more(conn)


def test_hang_never_answers_and_never_asks_the_upstream(proxy: FaultProxy) -> None:
    proxy.set_fault("/version/api", Hang())
    with send(proxy, "GET", "/version/api") as conn:
        assert nothing_more(conn)
    assert proxy.wait_idle()  # the client closing ends the hang
    assert proxy.requests_by_path["/version/api"] == 1
    assert proxy.forwarded_by_path["/version/api"] == 0


def test_hang_after_headers_promises_a_body_that_never_comes(proxy: FaultProxy, sid: str) -> None:
    proxy.set_fault(TORRENTS, Hang(after_headers=True))
    with send(proxy, "GET", TORRENTS, cookie=sid) as conn:
        status, headers, rest = read_head(conn)
        assert status == 200 and rest == b""
        assert int(dict(headers)["Content-Length"]) > 100
        assert nothing_more(conn)


def test_stop_ends_hung_and_dripping_connections_and_joins_its_threads(sim: Simulator) -> None:
    with FaultProxy(sim.url) as p:
        p.set_fault("/version/api", Hang())
        p.set_fault("/version/qbittorrent", Drip(interval=600))
        hung = send(p, "GET", "/version/api")
        dripping = send(p, "GET", "/version/qbittorrent")
        assert read_head(dripping)[0] == 200
    for conn in (hung, dripping):
        conn.settimeout(10)
        assert read_to_close(conn) in (b"", b"v")  # closed (the drip may have sent its first byte)
        conn.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("fault-proxy")]


# --- connection resets -----------------------------------------------------------------------------
def test_reset_before_the_reply(proxy: FaultProxy) -> None:
    proxy.set_fault("/version/api", Reset())
    with send(proxy, "GET", "/version/api") as conn, pytest.raises(ConnectionResetError):
        conn.recv(100)


def test_reset_in_the_middle_of_the_body(proxy: FaultProxy, sid: str) -> None:
    proxy.set_fault(TORRENTS, Reset(after_bytes=50))
    with send(proxy, "GET", TORRENTS, cookie=sid) as conn:
        _, headers, body = read_head(conn)
        with pytest.raises(ConnectionResetError):
            while chunk := conn.recv(65536):
                body += chunk
    assert len(body) == 50 < int(dict(headers)["Content-Length"])


# --- size -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("declare_length", [True, False])
def test_oversize_pads_the_real_reply_to_the_size_asked(
    proxy: FaultProxy, sid: str, declare_length: bool
) -> None:
    real = torrents(proxy, sid).body
    size = 3 * 1024 * 1024
    proxy.set_fault(TORRENTS, Oversize(size, declare_length=declare_length))
    reply = torrents(proxy, sid)
    assert len(reply.body) == size
    assert reply.body.startswith(real) and json.loads(reply.body) == json.loads(real)
    assert reply.header("Content-Length") == (str(size) if declare_length else None)


def test_gzip_bomb_is_small_and_inflates_to_valid_json(proxy: FaultProxy) -> None:
    proxy.set_fault(TORRENTS, GzipBomb(inflated_mb=20))
    reply = torrents(proxy, "")
    assert reply.header("Content-Encoding") == "gzip"
    inflated = gzip.decompress(reply.body)
    assert len(inflated) == 20 * 2**20 + 2 and len(reply.body) < len(inflated) // 500
    assert json.loads(inflated) == []


def test_the_default_gzip_bomb_inflates_to_300_mb() -> None:
    bomb = gzip_bomb(300)
    assert len(bomb) < 400_000
    inflated = 0
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for start in range(0, len(bomb), 4096):  # never holds the 300 MB at once
        inflated += len(decompressor.decompress(bomb[start : start + 4096]))
    assert inflated == 300 * 2**20 + 2 and decompressor.eof


# --- bodies ---------------------------------------------------------------------------------------
def test_replace_answers_any_status_and_bytes(proxy: FaultProxy) -> None:
    page = b"<html>oops</html>"
    proxy.set_fault("/version/api", Replace(page, status=502, content_type="text/html"))
    reply = request(proxy, "GET", "/version/api")
    assert (reply.status, reply.body, reply.header("Content-Type")) == (502, page, "text/html")


@pytest.mark.parametrize(
    ("value", "raw"),
    [
        (10**400, b'"size":1' + b"0" * 400 + b","),
        ("12345", b'"size":"12345",'),
        (None, b'"size":null,'),
    ],
)
def test_set_field_writes_huge_ints_strings_and_nulls(
    proxy: FaultProxy, sid: str, value: object, raw: bytes
) -> None:
    proxy.set_fault(TORRENTS, JsonEdit(set_field("size", value, index=1)))
    reply = torrents(proxy, sid)
    assert raw in reply.body
    assert reply.json[1]["size"] == value  # type: ignore[index]


def test_a_lone_surrogate_name_is_written_escaped(proxy: FaultProxy, sid: str) -> None:
    proxy.set_fault(TORRENTS, JsonEdit(set_field("name", "bad \ud800 name")))
    reply = torrents(proxy, sid)
    assert b'"name":"bad \\ud800 name"' in reply.body
    assert reply.json[0]["name"] == "bad \ud800 name"  # type: ignore[index]


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"\xed\xa0\x80"], ids=["invalid", "cesu8-surrogate"])
def test_raw_bytes_make_the_body_invalid_utf8(proxy: FaultProxy, sid: str, raw: bytes) -> None:
    proxy.set_fault(TORRENTS, JsonEdit(set_field("name", RawBytes(b"bad " + raw + b" name"))))
    reply = torrents(proxy, sid)
    assert b'"name":"bad ' + raw + b' name"' in reply.body
    with pytest.raises(UnicodeDecodeError):
        reply.body.decode("utf-8")


def test_duplicate_torrent_lists_one_hash_twice(proxy: FaultProxy, sid: str) -> None:
    proxy.set_fault(TORRENTS, JsonEdit(duplicate_torrent(0, name="another name", state="pausedUP")))
    listed = torrents(proxy, sid).json
    assert isinstance(listed, list)
    first, copy = listed[0], listed[-1]
    assert copy["hash"] == first["hash"] and len(listed) == 6
    assert (copy["name"], copy["state"]) == ("another name", "pausedUP") != (first["name"], first["state"])


# --- cookies --------------------------------------------------------------------------------------
LOGIN = b"username=admin&password=adminadmin"


@pytest.mark.parametrize(
    "values",
    [
        ("QBT_SID_8080={sid}; HttpOnly; path=/",),
        ("SID=; path=/",),
        ("SID={sid}; HttpOnly; Path=/; SameSite=Strict; Max-Age=3600; Version=1",),
        ("theme=dark; path=/", "SID={sid}; path=/", "lang=en"),
        ("SID={sid}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",),
        (),
    ],
    ids=["other-name", "empty", "attributes", "several", "expired", "none"],
)
def test_cookies_replace_the_session_cookie(proxy: FaultProxy, values: tuple[str, ...]) -> None:
    real = request(proxy, "POST", "/login", body=LOGIN).header("Set-Cookie") or ""
    real_sid = real.split(";")[0].removeprefix("SID=")
    assert real_sid  # a cookie-less session gets a new SID on every login
    proxy.set_fault("^/login$", Cookies(*values))
    reply = request(proxy, "POST", "/login", body=LOGIN)
    assert reply.body == b"Ok."
    got = reply.all("Set-Cookie")
    assert len(got) == len(values)
    for sent, wanted in zip(got, values, strict=True):
        match = re.fullmatch(re.escape(wanted).replace(re.escape("{sid}"), "([A-Za-z0-9+/=]+)"), sent)
        assert match, (sent, wanted)
        if match.groups():
            assert match.group(1) != real_sid  # the fresh SID the upstream set for this login
