"""A small HTTP/1.1 server for one WSGI app, with limits a hostile network cannot get around.

The standard library's servers (and prometheus_client's, built on them) have no read timeout, no
cap on header size and no cap on connections, and with TLS they run the handshake inside
``accept()`` on the one accepting thread: one client that connects and sends nothing takes the
exporter dark. Here:

- the accept loop only accepts: a connection over ``Limits.max_connections`` is refused at once
  (``503`` with ``Connection: close`` on plain HTTP, a close on TLS, where no answer is possible
  before a handshake), every other one gets its own thread, so threads are bounded by the cap;
- the TLS handshake runs on the connection's thread, never on the listening socket;
- the handshake, the request line and the headers must all arrive within ``read_timeout`` of the
  connection (of the first byte, for later requests on a kept-alive connection); a kept-alive
  connection may sit idle between requests for ``idle_timeout``; an answer must be taken by the
  client within ``write_timeout``;
- the request line and headers together may not exceed ``max_header_bytes``: they are read in
  pieces and refused (431) as soon as they pass it, so a request costs at most that much memory.

Every request goes through the app (``Request`` methods and routing are the app's business); the
app's answer is written in full, with ``Content-Length``, and ``HEAD`` answers never carry a body
whatever the app returns; the ``close`` of what the app returned is called once the answer is
written or given up, as WSGI asks. Request bodies are never read: a request that announces one is
answered, then the connection is closed. An exception from the app is logged and answered with 500.

TLS is whatever ``ssl.SSLContext`` the caller hands in, or a function that gives the context of
each new connection (``webaccess`` re-reads the web config there, so a renewed certificate needs no
restart); client certificates, versions and ciphers are a matter of configuring that context. Who
may use which path (Basic auth) is the app's business, not the server's.
"""

from __future__ import annotations

import contextlib
import io
import logging
import selectors
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
# TLS: one context for every connection, or a function asked at each connection for the context
# of its handshake (so that a renewed certificate is used without a restart)
TLS = ssl.SSLContext | Callable[[], ssl.SSLContext]

PEER_CERTIFICATE = "qbt_exporter.peer_certificate"  # environ key
SEND_PIECE = 64 * 1024  # the write deadline is checked between pieces of this size
LINGER_SECONDS = 2.0  # how long a refused client's remaining input is drained before closing
LINGER_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may cost; the defaults suit a few Prometheus servers and some browsers."""

    max_connections: int = 256
    read_timeout: float = 10.0
    idle_timeout: float = 120.0
    write_timeout: float = 60.0
    max_header_bytes: int = 64 * 1024


class _Closed(Exception):
    """The client went away, or took too long: drop the connection without an answer."""


class _Refused(Exception):
    """Answer with this status and close (the request cannot be served)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(slots=True)
class _Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]


class _Connection:
    """One accepted connection; ``sock`` becomes the TLS socket once wrapped."""

    __slots__ = ("lock", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def wake(self) -> None:
        """Unblock the connection's thread (server stopping): its next read or write fails."""
        with self.lock, contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)


class HTTPServer:
    """Serves ``app`` on ``host:port`` from ``start()`` until ``stop()``."""

    def __init__(
        self,
        app: WSGIApp,
        host: str,
        port: int,
        *,
        limits: Limits | None = None,
        tls: TLS | None = None,
    ) -> None:
        self.app = app
        self.limits = limits or Limits()
        self.tls = tls
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=128)
        self._listener.setblocking(False)
        self._host = host
        self._port = int(self._listener.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._active: set[_Connection] = set()
        self._refusing = False  # logged once per time the cap is reached, not per refused connection
        self._accept_thread = threading.Thread(target=self._accept_loop, name="http", daemon=True)

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> HTTPServer:
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection, wait (a little) for their threads; idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake_w.send(b"x")
        self._accept_thread.join(timeout=5)
        with self._changed:
            for conn in list(self._active):
                conn.wake()
        self.wait_idle(timeout=5)
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def active_connections(self) -> int:
        with self._changed:
            return len(self._active)

    def wait_idle(self, timeout: float) -> bool:
        """True once no connection is open (for shutdown, and for tests that count resources)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._active, timeout)

    # --- accepting --------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._listener:
                        self._accept_waiting()

    def _accept_waiting(self) -> None:
        """Accept everything that is queued; never blocks on a client."""
        while not self._stopping.is_set():
            try:
                sock, addr = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as err:  # out of fds, most likely: let the backlog wait a moment
                log.warning("cannot accept a connection: %s", err)
                time.sleep(0.1)
                return
            self._admit(sock, addr)

    def _admit(self, sock: socket.socket, addr: Any) -> None:
        conn = _Connection(sock)
        with self._changed:
            full = len(self._active) >= self.limits.max_connections
            if not full:
                self._active.add(conn)
            first_refusal = full and not self._refusing
            self._refusing = full
        if first_refusal:
            log.warning(
                "refusing connections: %d open, the most --web.max-connections allows",
                self.limits.max_connections,
            )
        if full:
            self._refuse(sock)
            return
        thread = threading.Thread(target=self._serve, args=(conn, addr), name="http-conn", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # the system will not give us another thread
            self._forget(conn)
            self._refuse(sock)

    def _refuse(self, sock: socket.socket) -> None:
        """Over the connection cap: answer 503 if that cannot block (plain HTTP), and close."""
        try:
            if self.tls is None:
                sock.setblocking(False)
                sock.send(_head("503 Service Unavailable", [("Content-Length", "0")], close=True))
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.close()

    def _forget(self, conn: _Connection) -> None:
        with self._changed:
            self._active.discard(conn)
            self._changed.notify_all()

    # --- one connection -------------------------------------------------------------------
    def _serve(self, conn: _Connection, addr: Any) -> None:
        try:
            self._serve_requests(conn, addr)
        except (_Closed, OSError):
            pass  # gone, too slow, or a failed handshake: nothing to answer
        except Exception:
            log.exception("unexpected error serving %s", addr)
        finally:
            with conn.lock, contextlib.suppress(OSError):
                conn.sock.close()
            self._forget(conn)

    def _serve_requests(self, conn: _Connection, addr: Any) -> None:
        limits = self.limits
        read_until = time.monotonic() + limits.read_timeout
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            conn.sock.settimeout(limits.read_timeout)
            context = self.tls if isinstance(self.tls, ssl.SSLContext) else self.tls()
            with conn.lock:
                conn.sock = context.wrap_socket(conn.sock, server_side=True, do_handshake_on_connect=False)
            if self._stopping.is_set():
                return
            conn.sock.do_handshake()  # the timeout bounds the whole handshake
        peer = conn.sock.getpeercert() if isinstance(conn.sock, ssl.SSLSocket) else None
        buffered = bytearray()
        first = True
        while not self._stopping.is_set():
            idle_until = read_until if first else time.monotonic() + limits.idle_timeout
            try:
                request, buffered = self._read_head(
                    conn.sock, buffered, idle_until, read_until if first else None
                )
            except _Refused as refused:
                body = f"{refused.status}\n".encode()
                self._write(conn.sock, "GET", refused.status, [("Content-Type", "text/plain")], [body], True)
                _linger(conn.sock)
                return
            first = False
            close = _wants_close(request)
            status, headers, body, sent = self._call_app(request, addr, peer)
            try:
                self._write(conn.sock, request.method, status, headers, body, close)
            finally:
                _close_answer(sent, request)
            if close:
                if _has_body(request):
                    _linger(conn.sock)
                return

    def _read_head(
        self, sock: socket.socket, buffered: bytearray, idle_until: float, head_until: float | None
    ) -> tuple[_Request, bytearray]:
        """The next request's line and headers, and what followed them (a pipelined request).

        Waits for the first byte until ``idle_until``. The head must then be complete by
        ``head_until`` (the first request: ``read_timeout`` after the connection came, which covers
        the TLS handshake) or else within ``read_timeout`` of its first byte, and must fit in
        ``max_header_bytes``.
        """
        limits = self.limits
        while True:
            buffered = _strip_leading_newlines(buffered)
            if buffered and head_until is None:
                head_until = time.monotonic() + limits.read_timeout
            end = _head_end(buffered)
            if end is not None:
                return _parse_head(bytes(buffered[:end])), buffered[end:]
            if len(buffered) > limits.max_header_bytes:
                raise _Refused("431 Request Header Fields Too Large")
            remaining = (idle_until if head_until is None else head_until) - time.monotonic()
            if remaining <= 0:
                if buffered:
                    raise _Refused("408 Request Timeout")
                raise _Closed
            sock.settimeout(remaining)
            try:
                data = sock.recv(limits.max_header_bytes + 1 - len(buffered))
            except TimeoutError:
                continue  # the loop sees the deadline passed
            if not data:
                raise _Closed
            buffered += data

    def _call_app(
        self, request: _Request, addr: Any, peer: dict[str, Any] | None = None
    ) -> tuple[str, list[tuple[str, str]], list[bytes], Callable[[], object] | None]:
        """The app's whole answer, and the ``close`` of what it returned (WSGI: called once the
        answer is sent, or given up); an exception from the app becomes a logged 500."""
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer[:] = [status, headers]

        sent: Callable[[], object] | None = None
        try:
            returned = self.app(self._environ(request, addr, peer), start_response)
            sent = getattr(returned, "close", None)
            chunks = list(returned)
            if not answer:
                raise RuntimeError("the app did not call start_response")
            status, headers = answer
            return status, list(headers), chunks, sent
        except Exception:
            log.exception("error answering %s %s", request.method, request.target)
            error = [("Content-Type", "text/plain")]
            return "500 Internal Server Error", error, [b"internal error\n"], sent

    def _environ(self, request: _Request, addr: Any, peer: dict[str, Any] | None = None) -> dict[str, Any]:
        path, _, query = request.target.partition("?")
        if "://" in path:  # absolute form: keep only the path
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": self._host,
            "SERVER_PORT": str(self._port),
            "SERVER_PROTOCOL": request.version,
            "REMOTE_ADDR": str(addr[0]) if addr else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if self.tls is not None else "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            # the client certificate the handshake verified (ssl.SSLSocket.getpeercert()), or None
            PEER_CERTIFICATE: peer,
        }
        for name, value in request.headers.items():
            if "_" in name:  # X_Foo would pass for X-Foo in the environ: ignore it
                continue
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = value
        return environ

    def _write(
        self,
        sock: socket.socket,
        method: str,
        status: str,
        headers: list[tuple[str, str]],
        chunks: list[bytes],
        close: bool,
    ) -> None:
        """Send the answer within ``write_timeout``; no body for HEAD."""
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        headers = [(k, v) for k, v in headers if k.lower() not in ("content-length", "connection")]
        if method == "HEAD":
            chunks = []
            if length is not None:
                headers.append(("Content-Length", length))
        else:
            headers.append(("Content-Length", str(sum(len(chunk) for chunk in chunks))))
        head = _head(status, headers, close=close)
        until = time.monotonic() + self.limits.write_timeout
        if sum(len(chunk) for chunk in chunks) <= SEND_PIECE:  # one packet for small answers
            chunks = [head + b"".join(chunks)]
        else:
            chunks = [head, *chunks]
        for chunk in chunks:
            _send_within(sock, chunk, until)


def _close_answer(close: Callable[[], object] | None, request: _Request) -> None:
    """Call the ``close`` of an app's answer, as WSGI asks of a server once the answer is sent (or
    could not be): the exporter starts the work it keeps off a scrape's path there, so that it
    does not compete with the sending for the interpreter. Its failure is the app's: logged."""
    if close is None:
        return
    try:
        close()
    except Exception:
        log.exception("error closing the answer to %s %s", request.method, request.target)


def _linger(sock: socket.socket) -> None:
    """Close politely when the client may still be sending (a refused head, an unread body).

    Closing a socket with unread input sends a reset, and a reset can make the client drop the
    answer it has not read yet (the 431 it should see). So: end our side, then read and discard
    for a moment, bounded in time and bytes, before the caller closes.
    """
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_WR)
        until = time.monotonic() + LINGER_SECONDS
        drained = 0
        while drained < LINGER_BYTES and (remaining := until - time.monotonic()) > 0:
            sock.settimeout(remaining)
            data = socket.socket.recv(sock, 65536)  # raw bytes, also under TLS: only discarded
            if not data:
                break
            drained += len(data)


def _send_within(sock: socket.socket, data: bytes, until: float) -> None:
    view = memoryview(data)
    while view:
        remaining = until - time.monotonic()
        if remaining <= 0:
            raise _Closed
        sock.settimeout(remaining)
        sent = sock.send(view[:SEND_PIECE])
        view = view[sent:]


def _head(status: str, headers: list[tuple[str, str]], *, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers)]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _strip_leading_newlines(buffered: bytearray) -> bytearray:
    """RFC 9112 2.2: empty lines before a request line are ignored (clients send a CRLF after a body)."""
    if buffered[:1] in (b"\r", b"\n"):
        return bytearray(buffered.lstrip(b"\r\n"))
    return buffered


def _head_end(buffered: bytearray) -> int | None:
    """Index just past the empty line that ends the head (CRLF CRLF, or LF LF from lax clients)."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := buffered.find(sep)) >= 0]
    return min(ends) if ends else None


def _parse_head(head: bytes) -> _Request:
    lines = head.decode("latin-1").split("\n")
    parts = lines[0].rstrip("\r").split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise _Refused("400 Bad Request")
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise _Refused("505 HTTP Version Not Supported")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        line = line.rstrip("\r")
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or " " in name:
            raise _Refused("400 Bad Request")
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return _Request(method, target, version, headers)


def _wants_close(request: _Request) -> bool:
    """Close after this answer: HTTP/1.0, ``Connection: close``, or a body we will not read."""
    tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
    return request.version == "HTTP/1.0" or "close" in tokens or _has_body(request)


def _has_body(request: _Request) -> bool:
    length = request.headers.get("content-length", "0").strip()
    return length != "0" or "transfer-encoding" in request.headers
