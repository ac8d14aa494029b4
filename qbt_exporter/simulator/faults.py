"""A hostile qBittorrent: an HTTP proxy that forwards to a real (or simulated) qBittorrent and breaks
its replies on demand.

Why it exists: the exporter promises that ``/metrics`` always answers, within Prometheus's budget,
with valid exposition, whatever qBittorrent or the network does. Those promises can only be shown
over real sockets, against replies a well-behaved server never sends: a body that drips one byte at
a time, a reply that never comes, a connection reset in the middle of the body, a reply of hundreds
of megabytes, a gzip bomb, JSON with 400-digit numbers or lone surrogates, a torrent listed twice,
cookies of the wrong name. Putting the faults in a proxy (rather than in the simulator) means the
same faults apply in front of the simulator, a real ``qbittorrent-nox`` or a simulator run as a
separate process that tests kill and restart.

Faults are chosen per request path by a regular expression (``re.search`` on the path without the
query) and can be switched while the proxy runs. Every request is counted by path, so a test can
also assert that *no* request reached an endpoint.

The proxy forwards each request on a fresh upstream connection with ``Connection: close`` and
without ``Accept-Encoding`` (so transforms see plain bodies), rewrites ``Host``/``Origin``/``Referer``
to the upstream's address (qBittorrent checks them), and answers its client with ``Connection:
close``. When the upstream cannot be reached it resets the client's connection, the closest a proxy
gets to "connection refused". Plain HTTP only.

This module is self-contained (standard library only): it must not depend on the exporter it attacks.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit

__all__ = [
    "Cookies",
    "Drip",
    "Fault",
    "FaultProxy",
    "GzipBomb",
    "Hang",
    "JsonEdit",
    "Oversize",
    "RawBytes",
    "Replace",
    "Reply",
    "Reset",
    "duplicate_torrent",
    "gzip_bomb",
    "set_field",
]

MAX_HEAD = 65536
CHUNK = 65536
POLL = 0.05  # how often waiting loops look at the stop flag


# --- replies -------------------------------------------------------------------------------------
@dataclass
class Reply:
    """One HTTP reply as read from the upstream, framing headers removed (they are recomputed)."""

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def replace_headers(self, name: str, values: list[str]) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.extend((name, value) for value in values)

    def head(self, content_length: int | None) -> bytes:
        """Status line and headers; ``content_length`` None means "until the connection closes"."""
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines.extend(f"{key}: {value}" for key, value in self.headers)
        if content_length is not None:
            lines.append(f"Content-Length: {content_length}")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_FRAMING = {"content-length", "transfer-encoding", "connection", "keep-alive"}


class UpstreamDown(Exception):
    """The upstream could not be reached or broke off its reply."""


class Exchange:
    """One request being answered: what faults see and the means to answer (or not answer) it."""

    def __init__(self, proxy: FaultProxy, conn: socket.socket, method: str, target: str, path: str) -> None:
        self.proxy = proxy
        self.conn = conn
        self.method = method
        self.target = target
        self.path = path
        self.request_headers: list[tuple[str, str]] = []
        self.request_body = b""
        self._reply: Reply | None = None

    def upstream(self) -> Reply:
        """The upstream's reply to this request (fetched once); raises ``UpstreamDown``."""
        if self._reply is None:
            try:
                self._reply = self.proxy._forward(self)
            except (OSError, ValueError) as exc:
                raise UpstreamDown(str(exc)) from exc
        return self._reply

    def send(self, data: bytes) -> bool:
        """Send bytes; False when the client has gone away."""
        try:
            self.conn.sendall(data)
            return True
        except OSError:
            return False

    def send_reply(self, reply: Reply) -> None:
        body = b"" if self.method == "HEAD" else reply.body
        self.send(reply.head(len(reply.body)) + body)

    def stopping(self) -> bool:
        return self.proxy._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Wait ``seconds``; False if the proxy is stopping (so faults end promptly on stop)."""
        return not self.proxy._stop.wait(seconds)

    def stall(self) -> None:
        """Say nothing more until the client closes the connection or the proxy stops."""
        while not self.stopping():
            try:
                readable, _, _ = select.select([self.conn], [], [], POLL)
                if readable and not self.conn.recv(CHUNK):
                    return
            except (OSError, ValueError):
                return

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
        with contextlib.suppress(OSError):
            self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.conn.close()


class Fault(Protocol):
    """Answers one request in some broken way."""

    def respond(self, exchange: Exchange) -> None: ...


# --- the faults ----------------------------------------------------------------------------------
@dataclass
class Drip:
    """The upstream's reply (or ``body``), headers at once, then ``per_interval`` bytes of body every
    ``interval`` seconds. ``endless``: no Content-Length, and after the body whitespace forever (valid
    JSON that never ends). ``whole``: drip the headers too."""

    per_interval: int = 1
    interval: float = 0.05
    body: bytes | None = None
    endless: bool = False
    whole: bool = False

    def respond(self, exchange: Exchange) -> None:
        reply = exchange.upstream() if self.body is None else Reply(200, "OK", _json_type(), self.body)
        head = reply.head(None if self.endless else len(reply.body))
        data = head + reply.body if self.whole else reply.body
        if not self.whole and not exchange.send(head):
            return
        for start in range(0, len(data), self.per_interval):
            if not exchange.send(data[start : start + self.per_interval]) or not exchange.wait(self.interval):
                return
        while self.endless:
            if not exchange.send(b" " * self.per_interval) or not exchange.wait(self.interval):
                return


@dataclass
class Hang:
    """Accept the request and never answer; ``after_headers``: send the status line and headers of
    the upstream's reply (with its Content-Length), then stall before the body."""

    after_headers: bool = False

    def respond(self, exchange: Exchange) -> None:
        if self.after_headers:
            reply = exchange.upstream()
            if not exchange.send(reply.head(len(reply.body))):
                return
        exchange.stall()


@dataclass
class Reset:
    """Reset the connection (RST) without answering, or after the headers and ``after_bytes`` of the
    upstream's body when ``after_bytes`` is given."""

    after_bytes: int | None = None

    def respond(self, exchange: Exchange) -> None:
        if self.after_bytes is not None:
            reply = exchange.upstream()
            exchange.send(reply.head(len(reply.body)) + reply.body[: self.after_bytes])
        exchange.reset()


@dataclass
class Oversize:
    """The upstream's reply padded with spaces to ``size`` bytes: still valid JSON, so only a cap on
    the reply size stops it. ``declare_length`` False: no Content-Length, the end is the close."""

    size: int
    declare_length: bool = True

    def respond(self, exchange: Exchange) -> None:
        reply = exchange.upstream()
        if not exchange.send(reply.head(self.size if self.declare_length else None)):
            return
        if not exchange.send(reply.body[: self.size]):
            return
        remaining = self.size - len(reply.body)
        block = b" " * CHUNK
        while remaining > 0 and not exchange.stopping():
            if not exchange.send(block[: min(remaining, CHUNK)]):
                return
            remaining -= CHUNK


@dataclass
class GzipBomb:
    """``Content-Encoding: gzip`` with a body of about a thousandth of ``inflated_mb`` MB that
    inflates to ``prefix`` + that many MB of spaces + ``suffix`` (valid JSON with the defaults)."""

    inflated_mb: int = 300
    prefix: bytes = b"["
    suffix: bytes = b"]"

    def __post_init__(self) -> None:
        # Built now, not on the first request: on a loaded machine the build may take longer than
        # the scrape budget of the request it would otherwise delay.
        gzip_bomb(self.inflated_mb, self.prefix, self.suffix)

    def respond(self, exchange: Exchange) -> None:
        body = gzip_bomb(self.inflated_mb, self.prefix, self.suffix)
        exchange.send_reply(Reply(200, "OK", [*_json_type(), ("Content-Encoding", "gzip")], body))


@dataclass
class Replace:
    """Answer with these bytes (any status, any content type) instead of the upstream's reply."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"
    reason: str = "OK"

    def respond(self, exchange: Exchange) -> None:
        exchange.send_reply(Reply(self.status, self.reason, [("Content-Type", self.content_type)], self.body))


class RawBytes:
    """A value that JsonEdit writes as these raw bytes inside a JSON string (e.g. invalid UTF-8)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw


@dataclass
class JsonEdit:
    """The upstream's reply with its JSON body changed by ``edit`` (which may mutate and/or return the
    document). Non-ASCII is written as ``\\u`` escapes, so a lone surrogate becomes ``"\\ud800"``;
    ``RawBytes`` values are spliced in as they are."""

    edit: Callable[[Any], Any]

    def respond(self, exchange: Exchange) -> None:
        reply = exchange.upstream()
        doc = json.loads(reply.body)
        result = self.edit(doc)
        reply.body = _dump(doc if result is None else result)
        exchange.send_reply(reply)


class Cookies:
    """The upstream's reply with its Set-Cookie headers replaced by ``values``; ``{sid}`` in a value
    stands for the session id the upstream set (so the cookie still works, under odd dress)."""

    def __init__(self, *values: str) -> None:
        self.values = values

    def __repr__(self) -> str:
        return f"Cookies{self.values!r}"

    def respond(self, exchange: Exchange) -> None:
        reply = exchange.upstream()
        sid = ""
        for header in reply.get_all("Set-Cookie"):
            name, _, rest = header.partition("=")
            if name.strip() == "SID" or not sid:
                sid = rest.split(";", 1)[0]
        reply.replace_headers("Set-Cookie", [value.replace("{sid}", sid) for value in self.values])
        exchange.send_reply(reply)


def _json_type() -> list[tuple[str, str]]:
    return [("Content-Type", "application/json")]


# --- JSON edits ----------------------------------------------------------------------------------
def set_field(name: str, value: Any, index: int = 0) -> Callable[[Any], None]:
    """Set ``name`` to ``value`` in the ``index``-th item of a list reply, or in an object reply."""

    def edit(doc: Any) -> None:
        (doc[index] if isinstance(doc, list) else doc)[name] = value

    return edit


def duplicate_torrent(index: int = 0, **changes: Any) -> Callable[[Any], None]:
    """Append a copy of the ``index``-th torrent of a list reply (same hash) with ``changes``."""

    def edit(doc: list[dict[str, Any]]) -> None:
        doc.append({**doc[index], **changes})

    return edit


def _dump(doc: Any) -> bytes:
    raws: list[bytes] = []

    def default(value: Any) -> str:
        if isinstance(value, RawBytes):
            raws.append(value.raw)
            return f"\x00RAW{len(raws) - 1}\x00"
        raise TypeError(f"cannot write {type(value).__name__} as JSON")

    text = json.dumps(doc, default=default, separators=(",", ":"))
    out = text.encode("ascii")
    for number, raw in enumerate(raws):
        out = out.replace(json.dumps(f"\x00RAW{number}\x00").encode("ascii"), b'"' + raw + b'"')
    return out


@lru_cache(maxsize=4)
def gzip_bomb(inflated_mb: int, prefix: bytes = b"[", suffix: bytes = b"]") -> bytes:
    """One gzip member of prefix + ``inflated_mb`` MiB of spaces + suffix, built in well under a
    second: a 1 MiB block is compressed once after a full flush (byte-aligned, no reference to
    earlier data) and repeated, so the stream is valid without deflating hundreds of MB."""
    block = b" " * (1 << 20)

    def piece(data: bytes, mode: int) -> bytes:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        return compressor.compress(data) + compressor.flush(mode)

    crc = zlib.crc32(prefix)
    for _ in range(inflated_mb):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(suffix, crc)
    size = len(prefix) + inflated_mb * len(block) + len(suffix)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    deflated = (
        piece(prefix, zlib.Z_FULL_FLUSH)
        + piece(block, zlib.Z_FULL_FLUSH) * inflated_mb
        + piece(suffix, zlib.Z_FINISH)
    )
    return header + deflated + struct.pack("<II", crc, size & 0xFFFFFFFF)


# --- the proxy -----------------------------------------------------------------------------------
@dataclass
class _Rule:
    pattern: re.Pattern[str]
    fault: Fault
    times: int | None


class FaultProxy:
    """Forwards to ``upstream`` (``http://host:port``) and applies the faults set by path pattern.

    ``requests_by_path`` counts every request received, ``forwarded_by_path`` those that reached
    the upstream. Use as a context manager, or ``start()``/``stop()``; ``stop()`` ends every
    connection (hung and dripping ones included) and joins every thread it started.
    """

    def __init__(self, upstream: str, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_netloc = parts.netloc
        self.timeout = timeout
        self.requests_by_path: Counter[str] = Counter()
        self.forwarded_by_path: Counter[str] = Counter()
        self.upstream_failures = 0
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._listener = socket.create_server((host, port))
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"fault-proxy-{self.port}", daemon=True
        )

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- faults and counts -----------------------------------------------------------------------
    def set_fault(self, pattern: str, fault: Fault, times: int | None = None) -> None:
        """From now on answer requests whose path matches ``pattern`` with ``fault`` (replacing any
        fault set for the same pattern); ``times``: only the next that many such requests."""
        with self._lock:
            self._rules = [rule for rule in self._rules if rule.pattern.pattern != pattern]
            self._rules.append(_Rule(re.compile(pattern), fault, times))

    def clear(self, pattern: str | None = None) -> None:
        """Remove the fault for ``pattern``, or every fault."""
        with self._lock:
            self._rules = [r for r in self._rules if pattern is not None and r.pattern.pattern != pattern]

    def count(self, pattern: str) -> int:
        """Requests received so far whose path matches ``pattern``."""
        with self._lock:
            return sum(n for path, n in self.requests_by_path.items() if re.search(pattern, path))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no connection is being handled (True) or ``timeout`` passes (False)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._threads, timeout)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            self.requests_by_path[path] += 1
            for rule in self._rules:
                if rule.pattern.search(path) and rule.times != 0:
                    if rule.times is not None:
                        rule.times -= 1
                    return rule.fault
        return None

    # --- serving ---------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener], [], [], POLL)
            if not readable:
                continue
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), name="fault-proxy-conn", daemon=True)
            with self._lock:
                self._conns.add(conn)
                self._threads.add(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(self.timeout)
            exchange = self._read_request(conn)
            if exchange is not None:
                fault = self._take_fault(exchange.path)
                (fault or _FORWARD).respond(exchange)
        except UpstreamDown:  # refuse as a dead server would
            with self._lock:
                self.upstream_failures += 1
            _reset_quietly(conn)
        except OSError:  # the client went away
            pass
        except Exception:  # a broken fault must not leave the client waiting for the whole timeout
            _reset_quietly(conn)
            raise
        finally:
            _close_quietly(conn)
            with self._idle:
                self._conns.discard(conn)
                self._threads.discard(threading.current_thread())
                self._idle.notify_all()

    def _read_request(self, conn: socket.socket) -> Exchange | None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = conn.recv(CHUNK)
            if not chunk or len(buffer) > MAX_HEAD:
                return None
            buffer += chunk
        head, _, body = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return None
        method, target = parts[0], parts[1]
        exchange = Exchange(self, conn, method, target, urlsplit(target).path or "/")
        for line in lines[1:]:
            name, _, value = line.partition(":")
            exchange.request_headers.append((name.strip(), value.strip()))
        length = int(_header(exchange.request_headers, "content-length") or 0)
        while len(body) < length:
            chunk = conn.recv(CHUNK)
            if not chunk:
                return None
            body += chunk
        exchange.request_body = body[:length]
        return exchange

    def _forward(self, exchange: Exchange) -> Reply:
        """Send the request upstream on a fresh connection and read the whole reply."""
        proxy_netloc = f"{self.host}:{self.port}"
        headers = [f"{exchange.method} {exchange.target} HTTP/1.1"]
        for name, value in exchange.request_headers:
            key = name.lower()
            if key in _FRAMING or key == "accept-encoding":
                continue
            if key == "host":
                value = self.upstream_netloc
            elif key in ("origin", "referer"):
                value = value.replace(proxy_netloc, self.upstream_netloc)
            headers.append(f"{name}: {value}")
        if exchange.request_body or exchange.method == "POST":
            headers.append(f"Content-Length: {len(exchange.request_body)}")
        headers.append("Connection: close")
        raw = ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + exchange.request_body
        with socket.create_connection((self.upstream_host, self.upstream_port), timeout=self.timeout) as up:
            with self._lock:
                self._conns.add(up)
            try:
                up.sendall(raw)
                reply = _read_reply(up, exchange.method)
            finally:
                with self._lock:
                    self._conns.discard(up)
        with self._lock:
            self.forwarded_by_path[exchange.path] += 1
        return reply


class _Forward:
    """No fault: the upstream's reply as it is (re-framed with Content-Length)."""

    def respond(self, exchange: Exchange) -> None:
        exchange.send_reply(exchange.upstream())


_FORWARD = _Forward()


def _read_reply(sock: socket.socket, method: str) -> Reply:
    reader = _Reader(sock)
    status_line = reader.line()
    if not status_line:
        raise ConnectionResetError("upstream closed without a reply")
    _, status, reason = ([*status_line.split(" ", 2), ""])[:3]
    headers: list[tuple[str, str]] = []
    while line := reader.line():
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    kept = [(k, v) for k, v in headers if k.lower() not in _FRAMING]
    code = int(status)
    if method == "HEAD" or code in (204, 304) or 100 <= code < 200:
        return Reply(code, reason, kept)
    if (_header(headers, "transfer-encoding") or "").lower() == "chunked":
        body = b"".join(reader.chunks())
    elif (length := _header(headers, "content-length")) is not None:
        body = reader.exactly(int(length))
    else:
        body = reader.rest()
    return Reply(code, reason, kept, body)


class _Reader:
    """Buffered reads of an HTTP reply from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(CHUNK)
        self.buffer += chunk
        return bool(chunk)

    def line(self) -> str:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                line, self.buffer = self.buffer, b""
                return line.decode("latin-1")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line.decode("latin-1")

    def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise ConnectionResetError("upstream closed in the middle of the body")
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def rest(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def chunks(self) -> Iterator[bytes]:
        while size := int(self.line().split(";")[0] or "0", 16):
            yield self.exactly(size)
            self.line()
        while self.line():  # trailers
            pass


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _reset_quietly(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _close_quietly(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.close()
