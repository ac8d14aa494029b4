"""HTTP for ONE qBittorrent WebUI: requests, cookies, the login exchange, CSRF/Host quirks.

This module knows how qBittorrent behaves on the wire (see ``qbittorrent-api.md`` §3–§6), never
what its JSON means: flavours ask for a path and get bytes (or parsed JSON) back.

What it protects against, and why:

* **Slow, endless and huge replies.** ``transport.Transport`` ends every exchange by the scrape's
  deadline, however slowly the reply drips, and drops a reply over ``max_reply_size`` decoded bytes.
* **Dropped connections.** ≤ 4.0.4 closes the socket after every reply without saying so, and 4.1+
  drop idle keep-alive connections after 7 s: a pooled connection may be dead, so a request that
  fails with "connection dropped" is sent once more. Timeouts are never retried.
* **CSRF and Host checks.** 3.3.13 demands a Referer, 3.3.14+ reject a Host header whose port is not
  qBittorrent's own (Docker port mapping). A 401 makes the client try a matching Referer, then the
  host name without port, and keep what worked.
* **Concurrent scrapes.** One lock around logging in: two threads without a session cause one login.

When to log in, and when not to (back-off, bans, suspension), is ``session.LoginPolicy``: this
module sends the login and reads its reply, the policy decides and keeps the count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from qbt_exporter import __version__
from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent import jsonbody, redact
from qbt_exporter.qbittorrent.errors import (
    BadResponse,
    Banned,
    Forbidden,
    LoginRejected,
    QbtError,
    TimedOut,
    outcome_for,
    raise_for,
)
from qbt_exporter.qbittorrent.password import PasswordSource, as_source, has_credentials
from qbt_exporter.qbittorrent.redact import quote_reply
from qbt_exporter.qbittorrent.session import LOGIN_ENDPOINT, LoginPolicy
from qbt_exporter.qbittorrent.session import SAFE_FAILURES as SAFE_FAILURES  # the cap on max_rejections
from qbt_exporter.qbittorrent.transport import Dropped, Transport
from qbt_exporter.stats import Stats

log = logging.getLogger(__name__)

T = TypeVar("T")

# The login paths of the current API, used until detection says otherwise (``set_dialect``);
# V2Flavour declares these same constants as its own.
V2_LOGIN = "/api/v2/auth/login"
V2_LOGOUT = "/api/v2/auth/logout"
LOGOUT_ENDPOINT = "logout"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BAN_MARKER = b"banned"
DEFAULT_PORTS = {"http": 80, "https": 443}

# The largest decoded reply kept by default: 100,000 torrents of ~2.6 KB each in /sync/maindata with
# 255-byte names (see the README, "Reply size"); over it, the call fails with TooLarge.
DEFAULT_MAX_REPLY_SIZE = 256 * 1024 * 1024


@dataclass(frozen=True)
class Response:
    """One HTTP reply, read in full: the caller decides what its status means."""

    status: int
    body: bytes
    headers: Mapping[str, str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def is_ban(self) -> bool:
        """403 + "Your IP address has been banned ...": every version words it the same way."""
        return self.status == 403 and BAN_MARKER in self.body.lower()


@dataclass
class _Call:
    """Book-keeping of one logical call: whether it reached the network and how to count a failure."""

    sent: bool = False
    failure_outcome: str | None = None


@dataclass(frozen=True)
class _Request:
    """What to send: everything but the route (Host/Referer), which the client learns as it goes.

    ``adapt`` says whether a reply is a CSRF/Host refusal worth retrying on another route; by
    default any 401 is.
    """

    method: str
    path: str
    params: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    adapt: Callable[[Response], bool] | None = None

    @property
    def what(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class _Route:
    """The Host header override and whether to send a Referer, as learned from 401 replies."""

    host: str | None = None
    referer: bool = False


class Client:
    """HTTP client bound to one qBittorrent; thread-safe, one ``requests.Session`` for its lifetime."""

    def __init__(
        self,
        url: str,
        username: str = "admin",
        password: str | PasswordSource | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 5.0,
        host_header: str | None = None,
        verify: bool | str = True,
        max_reply_size: int = DEFAULT_MAX_REPLY_SIZE,
        stats: Stats | None = None,
        clock: Callable[[], float] = time.monotonic,
        login_backoff: float = 300.0,
        login_backoff_max: float = 3600.0,
        ban_duration: float = 3600.0,
        max_rejections: int = 3,
    ) -> None:
        if has_credentials(url):
            # requests would send them as Basic auth, which qBittorrent 5.2+ takes as a login
            # attempt; config.py refuses them with the reason, this is the backstop.
            raise ValueError("credentials in the qBittorrent URL are not supported")
        self.base_url = url.rstrip("/")
        self.username = username
        self.api_key = api_key
        redact.register(api_key)
        self.timeout = timeout
        self.host_header = host_header
        self.verify = verify
        self.stats = stats if stats is not None else Stats()
        self._clock = clock
        self._policy = LoginPolicy(
            self.base_url,
            username,
            as_source(password),
            clock=clock,
            login_backoff=login_backoff,
            login_backoff_max=login_backoff_max,
            ban_duration=ban_duration,
            max_rejections=max_rejections,
        )
        self.login_path = V2_LOGIN
        self.logout_path = V2_LOGOUT

        self._transport = Transport(
            self.base_url,
            verify=verify,
            max_reply_size=max_reply_size,
            user_agent=f"qbt-exporter/{__version__}",
        )
        self.session: requests.Session = self._transport.session  # its cookie jar holds the login
        parts = urlsplit(self.base_url)
        self._scheme = parts.scheme or "http"
        self._default_host = _host_value(parts.netloc, self._scheme)
        self._route = _Route(host_header, referer=host_header is not None)

        self._login_lock = threading.Lock()
        self._session_live = False

    # --- public API ------------------------------------------------------------------------
    def __repr__(self) -> str:  # never shows the password
        return f"Client({self.base_url!r}, username={self.username!r})"

    @property
    def session_generation(self) -> int:
        """Changes when qBittorrent may have restarted: incremented on each successful login.

        The client logs in only when it has no session or qBittorrent stopped accepting the one it
        had, which is what a restart (or an in-place upgrade) looks like from here; so a reader that
        saw another generation must ask the version and API again. 0 until the first login; never
        changes with an API key (qBittorrent 5.2+ keeps no session for it).
        """
        return self._policy.generation

    def set_dialect(self, login_path: str, logout_path: str) -> None:
        """Use the login/logout paths of the detected API; a different dialect drops the session."""
        if (login_path, logout_path) != (self.login_path, self.logout_path):
            self.login_path, self.logout_path = login_path, logout_path
            self.forget_session()

    def has_session(self) -> bool:
        return self._session_live

    def forget_session(self) -> None:
        """Drop the cookies: the next authenticated call logs in again."""
        self.session.cookies.clear()
        self._session_live = False

    def login_backoff_remaining(self) -> float:
        """Seconds until a login may be attempted again (a ban counts too); 0 when allowed now,
        infinity while suspended (only a changed password or a restart ends that)."""
        return self._policy.backoff_remaining(logins=self.api_key is None)

    def login_suspended(self) -> dict[str, bool]:
        """For each reason in ``SUSPENDED_REASONS``, whether it holds logins off right now.

        "rejected": ``max_rejections`` rejections in a row, waiting for the password to change.
        "banned": qBittorrent banned this address; waiting for the ban to end, or for the password
        to change when our own rejected password earned the ban.
        """
        return self._policy.suspended(logins=self.api_key is None)

    def close(self) -> None:
        self.session.close()

    def get_public(
        self, path: str, *, endpoint: str, deadline: Deadline, params: dict[str, Any] | None = None
    ) -> Response:
        """GET without logging in; any status is returned except a ban (raises ``Banned``)."""

        def attempt(call: _Call) -> Response:
            resp = self._exchange(call, _Request("GET", path, params), deadline)
            if resp.is_ban:
                raise self._policy.banned(endpoint)
            return resp

        return self._counted(endpoint, attempt, lambda resp: outcome_for(resp.status))

    def get(
        self, path: str, *, endpoint: str, deadline: Deadline, params: dict[str, Any] | None = None
    ) -> Response:
        """Authenticated GET of a 2xx reply; any other status raises the matching ``QbtError``."""
        request = _Request("GET", path, params)
        return self._counted(
            endpoint, lambda call: self._authenticated_get(call, request, endpoint, deadline)
        )

    def get_json(
        self,
        path: str,
        *,
        endpoint: str,
        deadline: Deadline,
        params: dict[str, Any] | None = None,
        allow_empty: bool = False,
        check: Callable[[Any], Any] | None = None,
        decode: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """``get`` + JSON decoding; an empty body is ``None`` if ``allow_empty``, else ``BadResponse``.

        ``check`` validates the decoded reply's shape inside the counted call, so a reply of the
        wrong shape is counted as ``bad_response`` rather than ``ok`` before the flavour rejects it.
        ``decode`` reads the body's bytes in place of ``jsonbody`` (the torrent list is read as it
        is decoded, see ``flavours.torrentlist``); a ValueError from it is a reply that is not JSON.
        """
        request = _Request("GET", path, params)

        def attempt(call: _Call) -> Any:
            resp = self._authenticated_get(call, request, endpoint, deadline)
            if allow_empty and not resp.body.strip():
                return None
            body = _json_body(resp, endpoint)
            del resp
            if decode is not None:
                value = _decoded(decode, body, endpoint)
            else:
                text = jsonbody.text(body)
                del body  # the bytes go before the objects are built (see jsonbody.text)
                value = _decoded(jsonbody.parse, text, endpoint)
            return value if check is None else check(value)

        return self._counted(endpoint, attempt)

    def login(self, deadline: Deadline) -> None:
        """Log in now (normally done lazily by ``get``); raises on rejection, ban or back-off.

        A no-op with an API key: qBittorrent 5.2+ authenticates every request by the key itself.
        """
        if self.api_key is not None:
            return
        self._policy.check(LOGIN_ENDPOINT)
        with self._locked(deadline):
            self._login_locked(deadline)

    def logout(self, deadline: Deadline | None = None) -> None:
        """End the server-side session if there is one; never raises (called at shutdown)."""
        if not self._session_live or self.api_key is not None:
            self.forget_session()
            return
        request = _Request("POST", self.logout_path, headers=FORM)
        try:
            deadline = deadline or Deadline(self.timeout, self._clock)
            self._counted(
                LOGOUT_ENDPOINT,
                lambda call: self._exchange(call, request, deadline),
                lambda resp: outcome_for(resp.status),
            )
        except QbtError as err:
            log.debug("logout from %s failed: %s", self.base_url, err)
        except Exception:  # shutdown must go on whatever happens here
            log.debug("logout from %s failed", self.base_url, exc_info=True)
        finally:
            self.forget_session()

    # --- one counted call --------------------------------------------------------------------
    def _counted(
        self, endpoint: str, attempt: Callable[[_Call], T], outcome: Callable[[T], str] = lambda _: "ok"
    ) -> T:
        """Run ``attempt`` and count it once under ``endpoint``: its ``outcome`` on success, the
        error's on failure, and nothing when no request left this process (a back-off)."""
        call = _Call()
        try:
            result = attempt(call)
        except QbtError as err:
            if call.sent:
                self.stats.request(endpoint, call.failure_outcome or err.outcome)
            raise
        self.stats.request(endpoint, outcome(result))
        return result

    # --- authenticated GET -----------------------------------------------------------------
    def _authenticated_get(
        self, call: _Call, request: _Request, endpoint: str, deadline: Deadline
    ) -> Response:
        """Log in if needed, GET, and on a plain 403 log in again once and GET once more."""
        self._ensure_session(deadline)
        generation = self._policy.generation
        resp = self._exchange(call, request, deadline)
        if resp.status == 403 and not resp.is_ban and self.api_key is None:
            call.failure_outcome = Forbidden.outcome  # a failing re-login leaves this call forbidden
            self._relogin(generation, deadline)
            call.failure_outcome = None
            resp = self._exchange(call, request, deadline)
        status = resp.status
        if not 200 <= status < 300:
            if resp.is_ban:
                raise self._policy.banned(endpoint)
            raise_for(status, endpoint=endpoint, message=_explain(resp))
        return resp

    # --- login -----------------------------------------------------------------------------
    def _ensure_session(self, deadline: Deadline) -> None:
        if self.api_key is not None or self._session_live:
            return
        self._policy.check(LOGIN_ENDPOINT)
        with self._locked(deadline):
            if not self._session_live:  # another thread may have logged in while we waited
                self._login_locked(deadline)

    def _relogin(self, seen_generation: int, deadline: Deadline) -> None:
        """Log in again after a 403, unless another thread already did since our request."""
        with self._locked(deadline):
            if self._session_live and self._policy.generation != seen_generation:
                return
            self._login_locked(deadline)

    def _locked(self, deadline: Deadline) -> _LoginGuard:
        return _LoginGuard(self._login_lock, deadline)

    def _login_locked(self, deadline: Deadline) -> None:
        """One login attempt; the caller holds the login lock."""
        self._policy.check(LOGIN_ENDPOINT)
        self.forget_session()
        password = self._policy.current_password()
        self._policy.attempting()
        form = {"username": self.username, "password": password}
        request = _Request("POST", self.login_path, data=form, headers=FORM, adapt=_csrf_401)
        try:
            self._counted(
                LOGIN_ENDPOINT,
                lambda call: self._judge_login(self._exchange(call, request, deadline), password),
            )
        except QbtError as err:
            self.stats.login(err.outcome if isinstance(err, LoginRejected | Banned) else "error")
            raise
        self.stats.login("ok")
        self._policy.accepted()
        self._session_live = True

    def _judge_login(self, resp: Response, password: str) -> None:
        """Raise unless the reply is a success: 200 ``Ok.`` (≤ 5.1) or 204 (5.2+)."""
        status, body = resp.status, resp.body.strip()
        if status == 204 or (status == 200 and body == b"Ok."):
            return
        if resp.is_ban:
            raise self._policy.banned(LOGIN_ENDPOINT)
        if (status == 200 and body == b"Fails.") or status == 401:
            raise self._policy.rejected(password)
        if 200 <= status < 300:
            # A proxy may echo the form, password included: quote_reply redacts it.
            raise BadResponse(
                f"unexpected login reply {quote_reply(resp.text, 100)}", endpoint=LOGIN_ENDPOINT
            )
        raise_for(status, endpoint=LOGIN_ENDPOINT, message=_describe_status(resp))

    # --- one exchange: ban gate, dropped-connection retry, CSRF/Host adaptation ----------------
    def _exchange(self, call: _Call, request: _Request, deadline: Deadline) -> Response:
        """Send one request; on a CSRF/Host 401 (``adapt``) try the fallbacks of §6 and keep the winner."""
        route = self._route
        resp = self._send(call, request, deadline, route)
        if not (request.adapt or _any_401)(resp):
            return resp
        for candidate in self._fallback_routes(route):
            resp = self._send(call, request, deadline, candidate)
            if resp.status != 401:
                log.info(
                    "qBittorrent at %s accepts requests with Host %r%s",
                    self.base_url,
                    candidate.host or self._default_host,
                    " and a Referer" if candidate.referer else "",
                )
                self._route = candidate
                break
        return resp

    def _fallback_routes(self, tried: _Route) -> list[_Route]:
        """Referer first (3.3.13), then the host name without its port (Docker port mapping, 3.3.14+)."""
        routes: list[_Route] = []
        if not tried.referer:
            routes.append(_Route(tried.host, referer=True))
        host = tried.host or self._default_host
        bare = _strip_port(host)
        if self.host_header is None and bare != host:
            routes.append(_Route(bare, referer=True))
        return routes

    def _send(self, call: _Call, request: _Request, deadline: Deadline, route: _Route) -> Response:
        """One HTTP exchange, sent a second time only if the pooled connection turned out dead.

        The exchange ends by ``deadline`` whatever the server does (a timeout is never resent), and
        fails with ``TooLarge`` past ``max_reply_size`` (see ``transport.Transport.fetch``).
        """
        self._policy.check("")
        url = self.base_url + request.path
        headers = self._headers(route, request.headers)
        for attempt in (1, 2):
            timeout = deadline.cap(self.timeout)
            if timeout <= 0:
                raise TimedOut(f"no time left for {request.what}")
            call.sent = True
            try:
                reply = self._transport.fetch(
                    request.method,
                    url,
                    what=request.what,
                    deadline=deadline,
                    timeout=timeout,
                    params=request.params,
                    data=request.data,
                    headers=headers,
                )
            except Dropped as err:
                if attempt == 2:
                    raise
                log.debug("%s, sending again", err)
                continue
            return Response(reply.status, reply.body, reply.headers)
        raise AssertionError("unreachable")  # pragma: no cover

    def _headers(self, route: _Route, extra: Mapping[str, str]) -> dict[str, str]:
        headers: dict[str, str] = dict(extra)
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if route.host is not None:
            headers["Host"] = route.host
        if route.referer:
            headers["Referer"] = f"{self._scheme}://{route.host or self._default_host}/"
        return headers


class _LoginGuard:
    """The login lock, waited for no longer than the deadline allows."""

    def __init__(self, lock: threading.Lock, deadline: Deadline) -> None:
        self._lock = lock
        self._deadline = deadline

    def __enter__(self) -> None:
        wait = min(self._deadline.remaining(), threading.TIMEOUT_MAX)
        if not self._lock.acquire(timeout=wait):
            raise TimedOut("no time left while another thread was logging in")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


# --- helpers ---------------------------------------------------------------------------------
def _any_401(resp: Response) -> bool:
    return resp.status == 401


def _csrf_401(resp: Response) -> bool:
    """A login 401 with an empty body is the CSRF/Host check (< 4.3); with a body it may be 5.2's
    "wrong password", which must not be retried (each retry would count toward the ban)."""
    return resp.status == 401 and not resp.body.strip()


def _json_body(resp: Response, endpoint: str) -> bytes:
    if not resp.body.strip():
        raise BadResponse("empty body where JSON was expected", endpoint=endpoint)
    return resp.body


def _decoded(decode: Callable[[T], Any], data: T, endpoint: str) -> Any:
    """``decode(data)`` for the body's bytes or text; what is not JSON is ``BadResponse``."""
    try:
        return decode(data)
    except (ValueError, RecursionError) as exc:
        sample = data[:10_000]  # type: ignore[index]
        text = sample if isinstance(sample, str) else bytes(sample).decode("utf-8", "replace")
        raise BadResponse(f"not JSON ({exc}): {quote_reply(text, 60)}", endpoint=endpoint) from exc


def _host_value(netloc: str, scheme: str) -> str:
    """The Host header ``requests`` sends for this URL: no credentials, no default port."""
    host = netloc.rpartition("@")[2]
    bare = _strip_port(host)
    if bare != host and host[len(bare) + 1 :] == str(DEFAULT_PORTS.get(scheme)):
        return bare
    return host


def _strip_port(host: str) -> str:
    if host.startswith("["):  # IPv6 literal
        return host[: host.index("]") + 1] if "]" in host else host
    return host.partition(":")[0]


def _explain(resp: Response) -> str:
    """Why an authenticated call's non-2xx reply failed, in words an operator can act on."""
    if resp.status == 401:
        return "401 Unauthorized: qBittorrent's CSRF/Host check refused us (see --qbittorrent.host-header)"
    if resp.status == 403:
        return "403 Forbidden even after logging in again"
    if resp.status == 404:
        return f"404 Not Found: {quote_reply(resp.text, 100)}"
    return _describe_status(resp)


def _describe_status(resp: Response) -> str:
    text = f"HTTP {resp.status}"
    location = resp.headers.get("location")
    if location:
        text += f" (redirect to {location}: use that URL as --qbittorrent.url)"
    elif resp.body:
        text += f": {quote_reply(resp.text, 100)}"
    return text
