"""One HTTP exchange with qBittorrent, bounded in time and in size, and what a failure of it means.

``requests`` is kept for what it does well (cookies, proxies, TLS options, and the ``responses``
mocks the tests replay the recordings with), but no longer reads the body itself: ``fetch`` asks
for a stream and reads it through ``replybody.read_capped``, so that

* the whole exchange (connect, TLS, request, headers, body, gzip) ends by the scrape's deadline:
  the connection classes below hand every socket to the ``watchdog``, which shuts it down when the
  deadline passes, and the deadline is checked between pieces of the body;
* a reply can never hold more than ``max_reply_size`` decoded bytes;
* urllib3's ``InsecureRequestWarning`` is not sent to stderr on every request of a client told not
  to verify certificates (the exporter logs that choice once, at start-up).

A plain-HTTP GET to qBittorrent itself (no proxy, no TLS: the calls a scrape makes by the
thousand, one per torrent's properties or trackers) skips requests, urllib3's ``urlopen`` and
http.client: it is written and its reply read (``plainhttp``) on a connection of the very pool
requests uses, made and watched by the same connection classes. That cost about 1 ms of the
exporter's CPU a call, two thirds of it in those layers (``benchmarks/bench_client.py``). The
reply's reading keeps http.client's limits and errors, so every failure below is told the same
way (``tests/qbittorrent/test_plainhttp.py`` reads odd replies both ways). Everything else (the
login, TLS, a proxy, and every request while the adapter's ``send`` is not requests' own, as
under the tests' ``responses`` mocks) goes through requests as before.

Failures come out as the exporter's errors: ``TimedOut`` (never worth a resend), ``Dropped`` (the
server had closed the pooled connection we reused: safe to send once more), ``Unreachable``,
``TooLarge`` and ``BadResponse``.
"""

from __future__ import annotations

import http.client
import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent import plainhttp, replybody, watchdog
from qbt_exporter.qbittorrent.errors import TimedOut, Unreachable

# An error on a pooled connection the server had already closed: safe to send once more.
_DROPPED = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)
_TIMEOUTS = (urllib3.exceptions.TimeoutError, TimeoutError)
_FAILURES = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)
# A path that requests' URL preparation (IDNA, percent-requoting) would leave exactly as it is.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._~/-]*")
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]+")  # what urlencode leaves as it is (quote_plus, safe="")
_ADAPTER_SEND = requests.adapters.HTTPAdapter.send  # as imported, before any test could mock it


class Dropped(Unreachable):
    """The server closed a connection we reused (≤ 4.0.4 after each reply, 4.1+ after 7 s idle)."""


@dataclass(frozen=True)
class Reply:
    """Status, headers and the whole decoded body of one reply."""

    status: int
    body: bytes
    headers: Mapping[str, str]


class Transport:
    """A ``requests.Session`` whose exchanges are cut at the deadline and capped in size."""

    def __init__(self, base_url: str, *, verify: bool | str, max_reply_size: int, user_agent: str) -> None:
        self.max_reply_size = max_reply_size
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.session.verify = verify
        # requests reads the proxy variables on every request (about 0.4 ms each, a second per
        # scrape of 2,000 property calls); read them once here instead. HTTP(S)_PROXY / NO_PROXY
        # still apply, as of start-up.
        self.session.proxies.update(requests.utils.get_environ_proxies(base_url))
        proxied = requests.utils.select_proxy(base_url, self.session.proxies) is not None
        self.session.headers["Accept-Encoding"] = replybody.accept_encoding(base_url, proxied=proxied)
        self.session.trust_env = False
        self.adapter = _Adapter()
        self.session.mount("http://", self.adapter)
        self.session.mount("https://", self.adapter)
        self._base_url = base_url
        probe = requests.PreparedRequest()
        probe.prepare_url(base_url + "/x", None)
        self._plain_base = probe.url == base_url + "/x"  # else every URL goes through requests' preparation
        self._cookie_key: tuple[tuple[object, ...], ...] | None = None
        self._cookie_header: str | None = None
        # The direct way (``_direct``): plain HTTP to qBittorrent itself, no proxy in between.
        origin = urlsplit(base_url)
        self._origin = f"{origin.scheme}://{origin.netloc}"
        self._direct_ok = (
            self._plain_base and origin.scheme.lower() == "http" and not proxied and self._origin.isascii()
        )
        self._pool: Any = None
        self._blocks: dict[tuple[object, ...], bytes | None] = {}

    def close(self) -> None:
        self.session.close()

    def fetch(
        self,
        method: str,
        url: str,
        *,
        what: str,
        deadline: Deadline,
        timeout: float,
        params: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request, its reply read in full by ``deadline``; ``timeout`` bounds each socket read.

        ``what`` names the call in error messages (``GET /path``).
        """
        with watchdog.WATCHDOG.guard(deadline.remaining()) as exchange:
            try:
                if data is None and method == "GET":
                    prepared = self._prepared_url(url, params)
                    direct = self._direct(prepared, headers)
                    if direct is not None:
                        return self._get_direct(direct, prepared, headers, timeout, exchange, deadline, what)
                    reply = self._get(prepared, headers, timeout)
                else:
                    reply = self.session.request(
                        method,
                        url,
                        params=params,
                        data=data,
                        headers=headers,
                        timeout=timeout,
                        allow_redirects=False,
                        stream=True,
                    )
                closing = not _keeps_alive(reply.headers)
                detached = _detach(reply.raw) if closing else None
                try:
                    raw = reply.raw
                    body = self._read_body(
                        lambda n: raw.read(n, decode_content=False), reply.headers, exchange, deadline, what
                    )
                except BaseException:
                    reply.close()  # the rest of the reply is not wanted: never reuse this connection
                    raise
                finally:
                    if detached is not None:
                        detached.close()
            except _FAILURES as exc:
                raise _failure(exc, exchange, method, url, what) from exc
        if closing and detached is None:
            # qBittorrent <= 4.0.4 closes every connection after its reply without saying so;
            # reusing it races the server's FIN. Only reuse what the server promised to keep open
            # (4.1+ send "Connection: keep-alive" on every reply). A connection that could not be
            # taken out of its pool (``_detach``) is dropped with every other one.
            self.session.close()
        return Reply(reply.status_code, body, reply.headers)

    # --- the direct way: a GET written and read on a pooled connection ------------------------
    def _direct(self, url: str, headers: Mapping[str, str] | None) -> _Direct | None:
        """How to send this GET straight on a pooled connection, or ``None`` when it must go through
        ``requests``: a proxy or TLS in the way, a URL or header http.client would refuse, or an
        adapter whose ``send`` is not requests' own (the tests' ``responses`` mocks replace it,
        and so may anyone who wants to see every request)."""
        if (
            not self._direct_ok
            or not url.startswith(self._origin)
            or getattr(self.adapter.send, "__func__", None) is not _ADAPTER_SEND
        ):
            return None
        line = plainhttp.request_line(url[len(self._origin) :] or "/")
        if line is None:
            return None
        pool = self._pool
        if pool is None or pool.pool is None:  # none yet, or closed by ``close``
            pool = self._pool = self.adapter.get_connection_with_tls_context(
                self._prepared(url, None), self.session.verify, self.session.proxies, self.session.cert
            )
        block = self._header_block(url, headers, pool)
        return None if block is None else _Direct(pool, line + block)

    def _header_block(self, url: str, headers: Mapping[str, str] | None, pool: Any) -> bytes | None:
        """The request's header lines, as requests would merge them; built once per set of extra
        headers (the route's Host/Referer, the API key) and cookie header."""
        cookie = self._cookies_for(url, headers)
        key = (tuple(headers.items()) if headers else (), cookie)
        block = self._blocks.get(key, False)
        if block is False:
            merged = self._merged(headers)
            if cookie:
                merged["Cookie"] = cookie
            block = plainhttp.header_block(_host_header(pool), merged)
            if len(self._blocks) > 64:  # a new cookie at each login: keep the last few only
                self._blocks.clear()
            self._blocks[key] = block
        return block  # type: ignore[return-value]

    def _get_direct(
        self,
        direct: _Direct,
        url: str,
        headers: Mapping[str, str] | None,
        timeout: float,
        exchange: watchdog.Exchange,
        deadline: Deadline,
        what: str,
    ) -> Reply:
        """The exchange on a connection of the pool requests uses (so a connection is reused by
        either way), made and watched by the same connection classes; kept for the next request
        only when the server said "Connection: keep-alive" and the whole body was read."""
        pool = direct.pool
        conn = pool._get_conn()  # urllib3 replaces one the server has closed meanwhile
        keep = False
        try:
            if conn.sock is None:
                conn.timeout = timeout
                conn.connect()  # the connection class hands the new socket to the watchdog
            else:
                watchdog.watch(conn.sock)
            sock = conn.sock
            sock.settimeout(timeout)
            sock.sendall(direct.head)
            reply = plainhttp.read_reply(sock)
            if "set-cookie" in reply.headers:
                self._keep_cookies(url, headers, reply.head)
            body = self._read_body(reply.read, reply.headers, exchange, deadline, what)
            keep = reply.framed and reply.complete and _keeps_alive(reply.headers)
        finally:
            if keep:
                pool._put_conn(conn)
            else:
                conn.close()
                pool._put_conn(conn)  # closed: it connects again when next taken, as urllib3 does
        return Reply(reply.status, body, reply.headers)

    def _keep_cookies(self, url: str, headers: Mapping[str, str] | None, head: bytes) -> None:
        """Set-Cookie of a reply into the session's jar, as requests takes it (http.cookiejar's rules)."""
        message = http.client.parse_headers(io.BytesIO(head + b"\r\n"))
        request = self._prepared(url, headers)
        self.session.cookies.extract_cookies(
            requests.cookies.MockResponse(message),  # type: ignore[arg-type]
            requests.cookies.MockRequest(request),  # type: ignore[arg-type]
        )

    # --- through requests' adapter -------------------------------------------------------------
    def _get(self, url: str, headers: Mapping[str, str] | None, timeout: float) -> requests.Response:
        """``session.request("GET", ...)`` without its per-call machinery, when the direct way is
        not open (a proxy, TLS, a mocked adapter).

        ``Session.request`` merges settings, re-reads the cookie jar through ``http.cookiejar``'s
        policy and prepares the URL on every call. The request sent is the same (same headers,
        same cookies, same URL) and it still goes through the adapter, so the ``responses`` mocks
        and everything below (pool, watchdog) are unchanged.
        """
        session = self.session
        request = self._prepared(url, headers)
        cookie = self._cookies_for(url, headers, request)
        if cookie:
            request.headers["Cookie"] = cookie
        reply = self.adapter.send(
            request,
            stream=True,
            timeout=timeout,
            verify=session.verify,
            cert=session.cert,
            proxies=session.proxies,
        )
        if "set-cookie" in reply.headers:
            requests.cookies.extract_cookies_to_jar(session.cookies, request, reply.raw)
        return reply

    def _merged(self, headers: Mapping[str, str] | None) -> requests.structures.CaseInsensitiveDict[str]:
        merged = requests.structures.CaseInsensitiveDict(self.session.headers)
        if headers:
            merged.update(headers)
        return merged

    def _prepared(self, url: str, headers: Mapping[str, str] | None) -> requests.PreparedRequest:
        """A prepared GET of an already prepared ``url``, with the session's headers and these."""
        request = requests.PreparedRequest()
        request.method = "GET"
        request.url = url
        request.headers = self._merged(headers)
        request.body = None
        request.hooks = {"response": []}
        return request

    def _prepared_url(self, url: str, params: dict[str, Any] | None) -> str:
        """The URL requests would send: built directly when nothing in it needs preparing."""
        path = url[len(self._base_url) :]
        if (
            self._plain_base
            and url.startswith(self._base_url)
            and _PLAIN_PATH.fullmatch(path)
            and all(isinstance(value, str | int) for value in (params or {}).values())
        ):
            return url + "?" + _query(params) if params else url
        probe = requests.PreparedRequest()
        probe.prepare_url(url, params)
        return str(probe.url)

    def _cookies_for(
        self,
        url: str,
        headers: Mapping[str, str] | None,
        request: requests.PreparedRequest | None = None,
    ) -> str | None:
        """The Cookie header for a GET of ``url``, worked out again only when the jar has changed.

        ``http.cookiejar`` checks its whole policy per request; qBittorrent's session cookie is one
        cookie for path ``/`` without expiry, so the header stays the same until the next login.
        Cookies with a path or an expiry date are never cached.
        """
        jar = self.session.cookies
        key = tuple((c.name, c.value, c.domain, c.path, c.secure, c.expires) for c in _cookies_of(jar))
        if key == self._cookie_key:
            return self._cookie_header
        header = requests.cookies.get_cookie_header(jar, request or self._prepared(url, headers))
        if all(c.path == "/" and c.expires is None for c in jar):
            self._cookie_key, self._cookie_header = key, header
        else:
            self._cookie_key = None
        return header

    def _read_body(
        self,
        read: Callable[..., bytes],
        headers: Mapping[str, str],
        exchange: watchdog.Exchange,
        deadline: Deadline,
        what: str,
    ) -> bytes:
        """The body through ``read(n)`` (its bytes as sent), decoded and capped by the deadline."""

        def check() -> None:
            if exchange.fired or deadline.expired():
                raise _cut(what)

        body = replybody.read_capped(
            read,
            limit=self.max_reply_size,
            content_encoding=headers.get("Content-Encoding"),
            content_length=headers.get("Content-Length"),
            before_each_read=check,
            what=what,
        )
        if exchange.fired:  # cut at the deadline: to a body without Content-Length that looks like EOF
            raise _cut(what)
        return body


def _query(params: dict[str, Any]) -> str:
    """``urlencode(params)``, built directly when no name or value needs quoting (a hash does not)."""
    pairs = [(name, str(value)) for name, value in params.items()]
    if all(_UNQUOTED.fullmatch(name) and _UNQUOTED.fullmatch(value) for name, value in pairs):
        return "&".join(f"{name}={value}" for name, value in pairs)
    return urlencode(params)


def _cookies_of(jar: Any) -> Iterator[Any]:
    """The jar's cookies, read from ``http.cookiejar``'s own nested dicts (domain → path → name)
    when it has them: four times cheaper than its ``__iter__``, which sorts every level."""
    nested = getattr(jar, "_cookies", None)
    if not isinstance(nested, dict):
        return iter(jar)
    return (cookie for paths in nested.values() for names in paths.values() for cookie in names.values())


@dataclass(frozen=True, slots=True)
class _Direct:
    """A GET that goes straight on a connection of ``pool``: its request line and headers."""

    pool: Any
    head: bytes


def _keeps_alive(headers: Mapping[str, str]) -> bool:
    return (headers.get("Connection") or "").lower() == "keep-alive"


def _host_header(pool: Any) -> str:
    """The Host header http.client sends for a connection of ``pool`` (brackets around an IPv6
    address, no default port)."""
    conn = pool.ConnectionCls(host=pool.host, port=pool.port)
    host = f"[{conn.host}]" if ":" in conn.host else conn.host
    return host if conn.port == conn.default_port else f"{host}:{conn.port}"


def _failure(exc: BaseException, exchange: watchdog.Exchange, method: str, url: str, what: str) -> Exception:
    """The exporter's error for a failed exchange (see the module's docstring)."""
    if exchange.fired:
        return _cut(what)
    kind = failure_kind(exc)
    if kind == "timeout":
        # No figure in the message: the scraper logs a failure once per distinct message.
        return TimedOut(f"{what}: no data within the request timeout")
    if kind == "dropped":
        return Dropped(f"{what}: connection dropped ({short(exc)})")
    return Unreachable(f"{method} {url}: {short(exc)}")


class _Detached:
    """A connection taken out of its pool for good; ``close`` closes it and gives the pool its slot
    back (an empty one: the pool opens a new connection when it is next asked)."""

    __slots__ = ("_connection", "_pool")

    def __init__(self, connection: Any, pool: Any) -> None:
        self._connection = connection
        self._pool = pool

    def close(self) -> None:
        self._connection.close()
        if self._pool is not None:
            self._pool._put_conn(None)


def _detach(raw: Any) -> _Detached | None:
    """Take the connection of a reply that will not be kept alive out of urllib3's hands: it is
    then closed by the caller after the body, and never handed back to the pool where another
    request (in another thread, too) could pick it up before the server's FIN arrives.

    Cheaper than dropping every pool (``session.close()``), which made the next request build a
    new pool. ``None`` when the reply has no pooled connection (the tests' ``responses`` mocks);
    the pool (non-blocking, as requests makes it) opens a new connection when it lacks one."""
    connection = getattr(raw, "_connection", None)
    if connection is None or not hasattr(raw, "_pool"):
        return None
    pool, raw._pool = raw._pool, None  # release_conn() becomes a no-op
    return _Detached(connection, pool)


def _cut(what: str) -> TimedOut:
    return TimedOut(f"{what}: reply not complete when the scrape's time budget ran out")


# --- connections that report their sockets to the watchdog ------------------------------------
class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> Any:
        sock = super()._new_conn()
        watchdog.watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        watchdog.watch(self.sock)  # a reused connection (a new one is watched as it is made)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def _new_conn(self) -> Any:
        sock = super()._new_conn()
        watchdog.watch(sock)  # before the TLS handshake, so that a stalled handshake is cut too
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        watchdog.watch(self.sock)
        super().request(*args, **kwargs)


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _validate_conn(self, conn: Any) -> None:
        """urllib3's, without its ``InsecureRequestWarning``: one per request went to stderr,
        outside the log format. With verification off the exporter says so once at start-up."""
        urllib3.connectionpool.HTTPConnectionPool._validate_conn(self, conn)
        if conn.is_closed:
            conn.connect()


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter with the pools above, direct or through an HTTP proxy."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.ProxyManager:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


# --- what a failure means --------------------------------------------------------------------
def failure_kind(exc: BaseException) -> str:
    """``timeout``, ``dropped`` (server closed a connection we reused) or ``other``."""
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "other"
    chain = causes(exc)
    if any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
        # Refused or unresolvable: nothing was dropped. Checked first because urllib3 makes
        # NewConnectionError a subclass of its TimeoutError.
        return "other"
    if any(isinstance(e, _TIMEOUTS) for e in chain):
        return "timeout"  # e.g. a read timeout in the middle of the body
    if any(isinstance(e, _DROPPED) for e in chain):
        return "dropped"
    return "other"


def causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (args, reason, cause, context), each once."""
    found: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(found) < 50:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is seen for seen in found):
            continue
        found.append(item)
        todo.extend([*item.args, getattr(item, "reason", None), item.__cause__, item.__context__])
    return found


def short(exc: BaseException) -> str:
    """The innermost message of a requests exception, without the urllib3 object reprs."""
    chain = causes(exc)
    return str(chain[-1]) if chain else str(exc)
