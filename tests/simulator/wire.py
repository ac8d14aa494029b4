"""Raw-socket helpers for the simulator's tests: one request with exactly the given bytes, and the
recordings of a real 4.0.4 to compare the answer with (status line, header names, content type, body).

Why raw sockets: the point is what 4.0.4 puts on the wire (header case and order, no ``connection``
header, closing after one reply); an HTTP library would normalise exactly that away.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from qbt_exporter.simulator import Simulator
from qbt_exporter.simulator.server import HttpServer

RECORDINGS = Path(__file__).parents[1] / "recordings" / "qbittorrent-4.0.4"
LOGIN = {"username": "admin", "password": "adminadmin"}


def closing_session() -> requests.Session:
    """A requests session that retries a GET once when its pooled connection turns out closed: the
    server closes after every reply without saying so, like 4.0.4 (see the pooled-client test)."""
    http = requests.Session()
    http.mount(
        "http://", HTTPAdapter(max_retries=Retry(total=2, connect=2, read=2, status=0, backoff_factor=0))
    )
    return http


SID_COOKIE = re.compile(r"^SID=[A-Za-z0-9+/]{32}; HttpOnly; path=/$")


def recording(name: str) -> tuple[str, dict[str, str], bytes]:
    """Status line, headers (lower-case names) and body of a recorded exchange."""
    raw = (RECORDINGS / name).read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return lines[0], headers, body


def parse(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    return lines[0], headers, body


def parse_to_dict(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    status, headers, body = parse(raw)
    return status, dict(headers), body


def raw_exchange(
    sim: Simulator | HttpServer, request: bytes, source: str | None = None, timeout: float = 5.0
) -> bytes:
    """Send bytes on a fresh socket and read until the server closes it (EOF)."""
    sock = socket.create_connection(
        ("127.0.0.1", sim.port), timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        sock.close()


def get(
    sim: Simulator,
    path: str,
    headers: dict[str, str] | None = None,
    source: str | None = None,
    method: str = "GET",
    body: str = "",
) -> tuple[str, dict[str, str], bytes]:
    """One request with exactly the given headers (plus Host), answered on a raw socket."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{sim.port}"]
    hdrs = dict(headers or {})
    if body:
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        hdrs["Content-Length"] = str(len(body.encode()))
    if "Host" in hdrs:
        lines[1] = f"Host: {hdrs.pop('Host')}"
        if lines[1] == "Host: ":
            lines.pop(1)
    lines.extend(f"{k}: {v}" for k, v in hdrs.items())
    raw = raw_exchange(sim, ("\r\n".join(lines) + "\r\n\r\n" + body).encode(), source=source)
    status, header_list, payload = parse(raw)
    return status, dict(header_list), payload


def login(
    sim: Simulator, source: str | None = None, password: str = "adminadmin"
) -> tuple[str, dict[str, str], bytes]:
    return get(sim, "/login", method="POST", body=f"username=admin&password={password}", source=source)


def cookie_of(headers: dict[str, str]) -> str:
    return headers["set-cookie"].split(";")[0]


def session_cookie(sim: Simulator) -> str:
    _, headers, body = login(sim)
    assert body == b"Ok."
    return cookie_of(headers)


def session_cookie_from(sim: Simulator, source: str) -> str:
    _, headers, body = login(sim, source)
    assert body == b"Ok."
    return cookie_of(headers)


def same_shape(actual: tuple[str, dict[str, str], bytes], recorded_name: str, body: bool = True) -> None:
    """Same status line, same header names, same content type (and body) as the recording."""
    status, headers, payload = actual
    rec_status, rec_headers, rec_body = recording(recorded_name)
    assert status == rec_status
    assert sorted(headers) == sorted(rec_headers)
    assert headers.get("content-type") == rec_headers.get("content-type")
    assert headers["content-length"] == str(len(payload))
    if body:
        assert payload == rec_body


def canonical(payload: bytes) -> bytes:
    """What Qt would write for the same document: compact, sorted, raw UTF-8."""
    return json.dumps(json.loads(payload), separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
