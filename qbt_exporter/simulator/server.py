"""The socket side of the simulated 4.0.4: one request per connection, parsed and answered in its way.

Why apart: how 4.0.4's hand-written HTTP server reads and writes bytes (headers up to CRLF CRLF,
bodies by Content-Length only, a parser-level 400 without security headers, lower-case sorted
headers, always a ``content-length`` and a ``date``, never a ``connection`` header, the socket
closed after one reply so a pipelined second request is lost) has nothing to do with what the WebUI
answers. The server is handed one callable, request → response, and knows nothing else of the
simulator; the callable may also tell it to close without a reply or to hang.

With ``keep_alive`` (the v2 WebUI) it is a 4.1+ instead: every reply says ``connection: keep-alive``
and the connection stays open for the next request (pipelined ones answered in order) until it
has been idle for 7 s; a parser-level 400 says ``connection: close`` and closes. Closing after
every reply there made each per-torrent call of a benchmark pay a TCP connection that a real 4.1+
never costs.
"""

from __future__ import annotations

import enum
import gzip
import re
import select
import socket
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate

__all__ = [
    "CT_HTML",
    "CT_JSON",
    "CT_TEXT",
    "REASONS",
    "Drop",
    "HttpServer",
    "Request",
    "Response",
    "accepts_gzip",
    "compress",
]

IDLE_CONNECTION_TIMEOUT = 7.0  # the server drops connections that send nothing for 7 s
MAX_CONTENT_LENGTH = 10_000_000
CT_TEXT = "text/plain; charset=UTF-8"
CT_HTML = "text/html; charset=UTF-8"
CT_JSON = "application/json"
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}

_REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/(\d)\.(\d)$")


@dataclass
class Request:
    """One parsed request; ``posts`` holds the form fields (urlencoded or multipart)."""

    method: str
    target: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    posts: dict[str, str]
    client_ip: str
    local_port: int
    # When the request reached the server (its connection accepted, or its first byte on a kept
    # connection), on the server's clock: the real server's latency counts from there (app.py).
    arrived: float


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes = b""


class Drop(enum.Enum):
    """What a handler may answer instead of a response: the failures of real legacy servers."""

    CLOSE = "close"  # close the connection without a reply
    HANG = "hang"  # never reply; give up when the client goes away or the server stops


Handler = Callable[[Request], "Response | Drop"]


class HttpServer:
    """A listening socket served by a background thread, one thread per connection (so a hung
    request does not stall the others); the handler serialises its own work if it must."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        keep_alive: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.handler = handler
        self.clock = clock  # stamps Request.arrived
        self.keep_alive = keep_alive  # 4.1+: persistent connections (4.0.4 closes after each reply)
        self.stopping = threading.Event()
        self._server = _TCPServer((host, port), _Connection)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="qbt-simulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, release hung requests, close the listening socket."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serialise(response: Response, head: bool, keep_alive: bool = False) -> bytes:
    """Status line + sorted lower-case headers (Qt keeps them in a QMap) + body; 4.1+ say
    ``connection: keep-alive`` on every reply they keep the connection open after."""
    body = b"" if head else response.body  # HEAD /version/api was recorded with content-length 0
    headers = dict(response.headers)
    if keep_alive:
        headers["connection"] = "keep-alive"
    headers["content-length"] = str(len(body))
    headers["date"] = formatdate(usegmt=True)
    lines = [f"HTTP/1.1 {response.status} {response.reason}"]
    lines.extend(f"{name}: {headers[name]}" for name in sorted(headers))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def compress(body: bytes) -> bytes | None:
    """4.0.4's rule: gzip level 6, only bodies over 1024 bytes, only if it saves space."""
    if len(body) <= 1024:
        return None
    packed = gzip.compress(body, compresslevel=6, mtime=0)
    return packed if len(packed) < len(body) else None


def accepts_gzip(value: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (``gzip`` or ``*`` with a q above 0)."""
    for part in value.split(","):
        token, _, params = part.strip().partition(";")
        if token.strip().lower() not in ("gzip", "*"):
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, val = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


def _to_int(value: str | None) -> int:
    """QString::toInt: anything unparsable is 0."""
    try:
        return int(value or "0")
    except ValueError:
        return 0


def _parse_pairs(text: str) -> dict[str, str]:
    """QUrlQuery-like parsing: split on & and =, percent-decode, no ``+`` → space translation."""
    result: dict[str, str] = {}
    for pair in text.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        result[urllib.parse.unquote(key)] = urllib.parse.unquote(value)
    return result


def _parse_multipart(body: bytes, content_type: str) -> dict[str, str]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        return {}
    result: dict[str, str] = {}
    for part in body.split(b"--" + match.group(1).encode("latin-1")):
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        name = re.search(rb'name="([^"]*)"', head)
        if name:
            result[name.group(1).decode("utf-8", "replace")] = content.removesuffix(b"\r\n").decode(
                "utf-8", "replace"
            )
    return result


def _bad_request(keep_alive: bool = False) -> bytes:
    """Parser-level 400 of 4.0.4: no security headers (rec 86-raw-garbage); 4.1+ add
    ``connection: close`` to it, and close."""
    return serialise(Response(400, "Bad Request", {"connection": "close"} if keep_alive else {}), head=False)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128
    owner: HttpServer

    def get_request(self) -> tuple[socket.socket, tuple[object, float]]:  # type: ignore[override]
        """The accepted connection, its address paired with when it was accepted: the thread
        started for it and the parsing are the server's time, as they are a real server's."""
        conn, address = super().get_request()
        return conn, (address, self.owner.clock())


class _Connection(socketserver.BaseRequestHandler):
    """Reads one request, answers it (or drops it as the handler says); then the server closes the
    socket (4.0.4), or with ``HttpServer.keep_alive`` (4.1+) waits up to 7 s for the next one on it."""

    server: _TCPServer
    arrived: float  # when the request being read reached the server

    def setup(self) -> None:
        self.client_address, self.arrived = self.client_address  # as paired by get_request

    def handle(self) -> None:
        conn: socket.socket = self.request
        owner = self.server.owner
        conn.settimeout(IDLE_CONNECTION_TIMEOUT)
        buffer = b""
        while True:
            answered, buffer = self._answer(conn, owner, buffer)
            if not (answered and owner.keep_alive and (buffer or self._next_comes(conn, owner.stopping))):
                return
            self.arrived = owner.clock()

    def _answer(self, conn: socket.socket, owner: HttpServer, buffer: bytes) -> tuple[bool, bytes]:
        """Read and answer one request; whether the connection may carry another, and what was
        read past this request (a pipelined next one: 4.0.4 drops it, 4.1+ answer it in order)."""
        try:
            raw, rest = self._read(conn, buffer)
        except (TimeoutError, OSError):
            return False, b""
        if raw is None:
            return False, b""
        if isinstance(raw, bytes):
            conn.sendall(raw)
            return False, b""
        method, target, headers, body = raw
        split = urllib.parse.urlsplit(target)
        content_type = headers.get("content-type", "")
        posts: dict[str, str] = {}
        if body:
            if content_type.startswith("application/x-www-form-urlencoded"):
                posts = _parse_pairs(body.decode("utf-8", "replace"))
            elif content_type.startswith("multipart/form-data"):
                posts = _parse_multipart(body, content_type)
            else:
                conn.sendall(_bad_request(owner.keep_alive))
                return False, b""
        request = Request(
            method=method,
            target=target,
            path=split.path or "/",
            query=_parse_pairs(split.query),
            headers=headers,
            posts=posts,
            client_ip=self.client_address[0],
            local_port=conn.getsockname()[1],
            arrived=self.arrived,
        )
        answer = owner.handler(request)
        if answer is Drop.HANG:
            self._hang(conn, owner.stopping)
        if isinstance(answer, Drop):
            return False, b""
        try:
            conn.sendall(serialise(answer, head=method == "HEAD", keep_alive=owner.keep_alive))
        except OSError:
            return False, b""
        return True, rest

    @staticmethod
    def _next_comes(conn: socket.socket, stop: threading.Event) -> bool:
        """Whether the client sends something within the idle timeout (checked for the server's
        stop every 0.2 s, so that stopping never waits for idle connections)."""
        idle_until = time.monotonic() + IDLE_CONNECTION_TIMEOUT
        while not stop.is_set():
            wait = idle_until - time.monotonic()
            if wait <= 0:
                return False
            readable, _, _ = select.select([conn], [], [], min(wait, 0.2))
            if readable:
                return True
        return False

    @staticmethod
    def _hang(conn: socket.socket, stop: threading.Event) -> None:
        """Never answer; give up only when the client closes or the server stops."""
        while not stop.is_set():
            readable, _, _ = select.select([conn], [], [], 0.2)
            if readable:
                try:
                    if not conn.recv(4096, socket.MSG_PEEK):
                        return
                    conn.recv(4096)
                except OSError:
                    return

    @staticmethod
    def _read(
        conn: socket.socket, buffer: bytes
    ) -> tuple[tuple[str, str, dict[str, str], bytes] | bytes | None, bytes]:
        """One request after ``buffer`` (bytes already read), and the bytes read past it: headers
        up to CRLF CRLF (bare LF never completes), body by Content-Length only (chunked bodies are
        ignored, as in 4.0.4). The request is raw bytes for a parser error, None at the end."""
        while b"\r\n\r\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            buffer += chunk
            if len(buffer) > MAX_CONTENT_LENGTH:
                return _bad_request(), b""
        head, _, rest = buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        match = _REQUEST_LINE.match(lines[0])
        if not match:
            return _bad_request(), b""
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                return _bad_request(), b""
            headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
        length = _to_int(headers.get("content-length"))
        if length < 0 or length > MAX_CONTENT_LENGTH:
            return _bad_request(), b""
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
        request = match.group(1).decode(), match.group(2).decode("latin-1"), headers, rest[:length]
        return request, rest[length:]
