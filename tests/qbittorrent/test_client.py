"""Tests of the qBittorrent transport/session client.

Replies come from the real recordings (``tests/recording.py``) replayed with ``responses``; what
``responses`` cannot model (timeouts, servers that close connections, path prefixes on the wire) is
tested against tiny socket servers on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import socket
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.errors import (
    BackingOff,
    BadResponse,
    Banned,
    Forbidden,
    HttpError,
    LoginRejected,
    NotFound,
    QbtError,
    TimedOut,
    Unauthorized,
    Unreachable,
)
from qbt_exporter.stats import Stats
from tests import counters
from tests.recording import Recording, add, load
from tests.waiting import eventually

BASE = "http://qbt.test:8080"
PASSWORD = "s3cret-Pa55word"
LEGACY = ("/login", "/logout")
V2 = ("/api/v2/auth/login", "/api/v2/auth/logout")
BAN_TEXT = "Your IP address has been banned after too many failed authentication attempts."


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_client(
    stats: Stats | None = None, dialect: tuple[str, str] = LEGACY, url: str = BASE, **kwargs: Any
) -> Client:
    client = Client(url, "admin", PASSWORD, stats=stats or Stats(), **kwargs)
    client.set_dialect(*dialect)
    return client


def cookie_pair(rec: Recording) -> str:
    """``name=value`` of the recording's first Set-Cookie: the test never assumes the name."""
    return rec.set_cookies[0].split(";", 1)[0]


def soon() -> Deadline:
    return Deadline(10.0)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def calls_to(rsps: responses.RequestsMock, path: str) -> list[Any]:
    return [c for c in rsps.calls if c.request.path_url.split("?")[0].endswith(path)]


# --- login and cookies -----------------------------------------------------------------------
def test_legacy_login_from_recording_and_cookie_reused(rsps: responses.RequestsMock) -> None:
    login = load("4.0.4", "04-login-ok")
    add(rsps, "POST", BASE + "/login", login)
    add(rsps, "GET", BASE + "/query/torrents", load("4.0.4", "09-torrents-empty"))
    stats = Stats()
    client = make_client(stats)

    assert client.get_json("/query/torrents", endpoint="torrents", deadline=soon()) == []
    assert client.get_json("/query/torrents", endpoint="torrents", deadline=soon()) == []

    login_call, *gets = rsps.calls
    assert login_call.request.method == "POST"
    assert login_call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert login_call.request.body == f"username=admin&password={PASSWORD}"
    assert "Origin" not in login_call.request.headers and "Referer" not in login_call.request.headers
    assert len(gets) == 2
    assert all(c.request.headers["Cookie"] == cookie_pair(login) for c in gets)
    assert counters.logins(stats, "ok") == 1
    assert counters.requests(stats, "login", "ok") == 1
    assert counters.requests(stats, "torrents", "ok") == 2
    assert client.session_generation == 1 and client.has_session()


def test_v2_login_from_recording_and_cookie_reused(rsps: responses.RequestsMock) -> None:
    login = load("4.5.2", "07-login-ok")
    add(rsps, "POST", BASE + "/api/v2/auth/login", login)
    add(rsps, "GET", BASE + "/api/v2/torrents/info", load("4.5.2", "11-torrents-info"))
    client = make_client(dialect=V2)

    torrents = client.get_json("/api/v2/torrents/info", endpoint="torrents", deadline=soon())

    assert isinstance(torrents, list) and len(torrents) == 12
    assert rsps.calls[1].request.headers["Cookie"] == cookie_pair(login)


def test_qbittorrent_5_2_login_204_with_port_cookie(rsps: responses.RequestsMock) -> None:
    rsps.add(
        "POST",
        BASE + "/api/v2/auth/login",
        status=204,
        body=b"",
        headers={"Set-Cookie": "QBT_SID_8080=Zm9vYmFyYmF6; Expires=Fri, 01 Jan 2100 00:00:00 GMT; path=/"},
    )
    rsps.add("GET", BASE + "/api/v2/app/version", body=b"v5.2.3")
    client = make_client(dialect=V2)

    assert client.get("/api/v2/app/version", endpoint="version", deadline=soon()).text == "v5.2.3"
    assert rsps.calls[1].request.headers["Cookie"] == "QBT_SID_8080=Zm9vYmFyYmF6"


def test_qbittorrent_5_2_rejects_with_401_once_without_csrf_retries(rsps: responses.RequestsMock) -> None:
    rsps.add("POST", BASE + "/api/v2/auth/login", status=401, body=b"Unauthorized")
    stats = Stats()
    client = make_client(stats, dialect=V2)

    with pytest.raises(LoginRejected):
        client.login(soon())

    assert len(rsps.calls) == 1  # a retry with a Referer would be a 2nd failed login toward the ban
    assert counters.logins(stats, "rejected") == 1
    assert not client.has_session()


def test_fails_body_is_a_rejection_and_starts_backoff(rsps: responses.RequestsMock) -> None:
    add(rsps, "POST", BASE + "/api/v2/auth/login", load("4.5.2", "05-login-wrong-password"))
    clock = FakeClock()
    stats = Stats()
    client = make_client(stats, dialect=V2, clock=clock)

    with pytest.raises(LoginRejected):
        client.get("/api/v2/app/version", endpoint="version", deadline=soon())

    assert client.login_backoff_remaining() == 300.0
    assert counters.logins(stats, "rejected") == 1
    assert counters.requests(stats, "version", "rejected") == 0  # the endpoint itself was never asked
    assert len(rsps.calls) == 1


def test_session_generation_changes_only_on_a_successful_login(rsps: responses.RequestsMock) -> None:
    """The scraper re-detects the version when the generation changes: a rejected login (nothing
    restarted) must leave it alone, each accepted one must move it."""
    add(rsps, "POST", BASE + "/api/v2/auth/login", load("4.5.2", "05-login-wrong-password"))
    add(rsps, "POST", BASE + "/api/v2/auth/login", load("4.5.2", "07-login-ok"))
    clock = FakeClock()
    client = make_client(dialect=V2, clock=clock)
    assert client.session_generation == 0

    with pytest.raises(LoginRejected):
        client.login(soon())
    assert client.session_generation == 0

    clock.now += client.login_backoff_remaining()
    client.login(soon())
    assert client.session_generation == 1


def test_login_with_unexpected_body_is_an_error_not_a_rejection(rsps: responses.RequestsMock) -> None:
    rsps.add("POST", BASE + "/login", body=b"<html>proxy login</html>")
    stats = Stats()
    client = make_client(stats)

    with pytest.raises(BadResponse):
        client.login(soon())

    assert counters.logins(stats, "error") == 1
    assert client.login_backoff_remaining() == 0.0


# --- back-off and ban ------------------------------------------------------------------------
def test_wrong_password_over_three_hours_never_risks_a_ban(rsps: responses.RequestsMock) -> None:
    clock = FakeClock()
    attempts: list[float] = []
    fails = load("4.0.4", "91-src127.0.0.2-login-wrong-1")

    def login_reply(_request: Any) -> tuple[int, dict[str, str], bytes]:
        attempts.append(clock.now)
        return fails.status, {}, fails.body

    rsps.add_callback("POST", BASE + "/login", callback=login_reply)
    client = make_client(clock=clock)

    outcomes: list[str] = []
    for scrape in range(100):  # one scrape every 108 s: 3 hours
        clock.now = scrape * 108.0
        with pytest.raises(QbtError) as info:
            client.get("/query/torrents", endpoint="torrents", deadline=soon())
        outcomes.append(info.value.outcome)

    # back-off 300, then 600 s, each attempt at the first scrape after it; then no more attempts
    # (max_rejections, see test_login_policy.py)
    assert attempts == [0.0, 324.0, 972.0]
    assert outcomes.count("rejected") == len(attempts)
    assert outcomes.count("backoff") == 100 - len(attempts)
    assert len(rsps.calls) == len(attempts)  # backing off makes no request at all


def test_backing_off_raises_retry_in_and_success_resets(rsps: responses.RequestsMock) -> None:
    clock = FakeClock()
    wrong = load("4.0.4", "91-src127.0.0.2-login-wrong-1")
    ok = load("4.0.4", "04-login-ok")
    add(rsps, "POST", BASE + "/login", wrong)
    client = make_client(clock=clock)
    with pytest.raises(LoginRejected):
        client.login(soon())
    clock.now = 100.0
    with pytest.raises(BackingOff) as info:
        client.login(soon())
    assert info.value.retry_in == 200.0

    clock.now = 300.0
    rsps.replace("POST", BASE + "/login", body=ok.body, headers={"Set-Cookie": ok.set_cookies[0]})
    client.login(soon())
    assert client.login_backoff_remaining() == 0.0

    rsps.replace("POST", BASE + "/login", body=wrong.body)
    with pytest.raises(LoginRejected):
        client.login(soon())
    assert client.login_backoff_remaining() == 300.0  # the doubling started over


def test_ban_reply_stops_every_request_for_an_hour(rsps: responses.RequestsMock) -> None:
    clock = FakeClock()
    add(rsps, "POST", BASE + "/login", load("4.0.4", "91-src127.0.0.2-login-wrong-6"))
    stats = Stats()
    client = make_client(stats, clock=clock)

    with pytest.raises(Banned):
        client.get("/query/torrents", endpoint="torrents", deadline=soon())
    assert counters.logins(stats, "banned") == 1

    for clock.now in (1.0, 1800.0, 3599.0):
        with pytest.raises(BackingOff):
            client.get_public("/version/api", endpoint="version_api", deadline=soon())
        with pytest.raises(BackingOff):
            client.get("/query/torrents", endpoint="torrents", deadline=soon())
        with pytest.raises(BackingOff):
            client.login(soon())
    assert len(rsps.calls) == 1
    assert client.login_backoff_remaining() == 1.0

    clock.now = 3600.0
    add(rsps, "GET", BASE + "/version/api", load("4.0.4", "00-version-api-noauth"))
    assert client.get_public("/version/api", endpoint="version_api", deadline=soon()).text == "17"
    assert len(rsps.calls) == 2


def test_ban_on_a_public_path_also_blocks(rsps: responses.RequestsMock) -> None:
    clock = FakeClock()
    add(rsps, "GET", BASE + "/version/api", load("4.0.4", "92-src127.0.0.2-version-api-while-banned"))
    stats = Stats()
    client = make_client(stats, clock=clock)

    with pytest.raises(Banned):
        client.get_public("/version/api", endpoint="version_api", deadline=soon())
    clock.now = 10.0
    with pytest.raises(BackingOff):
        client.get_public("/version/api", endpoint="version_api", deadline=soon())

    assert len(rsps.calls) == 1
    assert counters.requests(stats, "version_api", "banned") == 1


def test_ban_with_a_valid_session_is_banned_not_relogin(rsps: responses.RequestsMock) -> None:
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    add(rsps, "GET", BASE + "/query/torrents", load("4.0.4", "92-src127.0.0.2-valid-sid-while-banned"))
    client = make_client()

    with pytest.raises(Banned):
        client.get("/query/torrents", endpoint="torrents", deadline=soon())
    assert len(calls_to(rsps, "/login")) == 1


# --- 403 mid-session -------------------------------------------------------------------------
def test_403_mid_session_logs_in_again_once_and_retries(rsps: responses.RequestsMock) -> None:
    first, second = load("4.0.4", "04-login-ok"), load("4.0.4", "40-login-ok-after-restart")
    add(rsps, "POST", BASE + "/login", first)
    add(rsps, "POST", BASE + "/login", second)
    add(rsps, "GET", BASE + "/query/torrents", load("4.0.4", "09-torrents-empty"))
    add(rsps, "GET", BASE + "/query/torrents", load("4.0.4", "03-query-torrents-nocookie"))
    add(rsps, "GET", BASE + "/query/torrents", load("4.0.4", "09-torrents-empty"))
    stats = Stats()
    client = make_client(stats)

    client.get_json("/query/torrents", endpoint="torrents", deadline=soon())
    assert client.get_json("/query/torrents", endpoint="torrents", deadline=soon()) == []

    methods = [(c.request.method, c.request.path_url) for c in rsps.calls]
    assert methods == [
        ("POST", "/login"),
        ("GET", "/query/torrents"),
        ("GET", "/query/torrents"),
        ("POST", "/login"),
        ("GET", "/query/torrents"),
    ]
    assert "Cookie" not in rsps.calls[3].request.headers  # the stale cookie was dropped first
    assert rsps.calls[4].request.headers["Cookie"] == cookie_pair(second)
    assert client.session_generation == 2
    assert counters.requests(stats, "torrents", "ok") == 2
    assert counters.requests(stats, "torrents", "forbidden") == 0


def test_403_twice_is_forbidden_not_a_loop(rsps: responses.RequestsMock) -> None:
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    add(rsps, "GET", BASE + "/query/torrents", load("4.0.4", "03-query-torrents-nocookie"))
    stats = Stats()
    client = make_client(stats)

    with pytest.raises(Forbidden):
        client.get("/query/torrents", endpoint="torrents", deadline=soon())

    assert len(calls_to(rsps, "/login")) == 2
    assert len(calls_to(rsps, "/query/torrents")) == 2
    assert counters.requests(stats, "torrents", "forbidden") == 1


def test_403_then_rejected_relogin_counts_the_call_forbidden(rsps: responses.RequestsMock) -> None:
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    add(rsps, "POST", BASE + "/login", load("4.0.4", "91-src127.0.0.2-login-wrong-1"))
    add(rsps, "GET", BASE + "/query/torrents", load("4.0.4", "03-query-torrents-nocookie"))
    stats = Stats()
    client = make_client(stats)
    client.login(soon())

    with pytest.raises(LoginRejected):
        client.get("/query/torrents", endpoint="torrents", deadline=soon())

    assert counters.requests(stats, "torrents", "forbidden") == 1
    assert counters.logins(stats, "rejected") == 1
    assert len(calls_to(rsps, "/query/torrents")) == 1


def test_403_then_other_error_after_relogin_counts_that_error(rsps: responses.RequestsMock) -> None:
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    add(rsps, "GET", BASE + "/query/torrents", load("4.0.4", "03-query-torrents-nocookie"))
    rsps.add("GET", BASE + "/query/torrents", status=500, body=b"")
    stats = Stats()
    client = make_client(stats)

    with pytest.raises(HttpError):
        client.get("/query/torrents", endpoint="torrents", deadline=soon())

    assert counters.all_requests(stats) == {
        ("login", "ok"): 2,
        ("torrents", "http_error"): 1,
    }


class _CountingLock:
    """The client's login lock, counting the threads blocked on it (so a test waits for them
    instead of sleeping)."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._waiting = 0
        self._changed = threading.Condition()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        with self._changed:
            self._waiting += 1
            self._changed.notify_all()
        try:
            return self._lock.acquire(blocking, timeout)
        finally:
            with self._changed:
                self._waiting -= 1

    def release(self) -> None:
        self._lock.release()

    def waiting_for(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._waiting >= count, timeout)


def test_concurrent_calls_without_session_log_in_once(rsps: responses.RequestsMock) -> None:
    login = load("4.0.4", "04-login-ok")

    client = make_client()
    lock = _CountingLock(client._login_lock)
    client._login_lock = lock

    def slow_login(_request: Any) -> tuple[int, dict[str, str], bytes]:
        # The login answers only once the 7 other threads wait for the login lock: each of them
        # must then find the session this login makes instead of logging in itself.
        assert lock.waiting_for(7, timeout=10)
        return 200, {"Set-Cookie": login.set_cookies[0]}, login.body

    rsps.add_callback("POST", BASE + "/login", callback=slow_login)
    add(rsps, "GET", BASE + "/query/torrents", load("4.0.4", "09-torrents-empty"))
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def scrape() -> None:
        barrier.wait()
        results.append(client.get_json("/query/torrents", endpoint="torrents", deadline=soon()))

    threads = [threading.Thread(target=scrape) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert results == [[]] * 8
    assert len(calls_to(rsps, "/login")) == 1
    gets = calls_to(rsps, "/query/torrents")
    assert len(gets) == 8 and all(c.request.headers["Cookie"] == cookie_pair(login) for c in gets)


# --- API key ---------------------------------------------------------------------------------
def test_api_key_is_sent_as_bearer_and_never_logs_in(rsps: responses.RequestsMock) -> None:
    rsps.add("GET", BASE + "/api/v2/app/version", body=b"v5.2.3")
    rsps.add("POST", BASE + "/api/v2/auth/login", body=b"Ok.")
    client = make_client(dialect=V2, api_key="qbt_abcdefghijklmnopqrstuvwxyz12")

    client.get("/api/v2/app/version", endpoint="version", deadline=soon())
    client.login(soon())
    client.logout()

    assert len(rsps.calls) == 1
    assert rsps.calls[0].request.headers["Authorization"] == "Bearer qbt_abcdefghijklmnopqrstuvwxyz12"


def test_api_key_403_is_forbidden_without_login(rsps: responses.RequestsMock) -> None:
    rsps.add("GET", BASE + "/api/v2/app/version", status=403, body=b"Forbidden")
    client = make_client(dialect=V2, api_key="qbt_abcdefghijklmnopqrstuvwxyz12")

    with pytest.raises(Forbidden):
        client.get("/api/v2/app/version", endpoint="version", deadline=soon())
    assert len(rsps.calls) == 1


# --- status and body handling ------------------------------------------------------------------
@pytest.fixture
def logged_in(rsps: responses.RequestsMock) -> tuple[Client, Stats]:
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    stats = Stats()
    return make_client(stats), stats


def test_empty_body_is_none_only_when_allowed(
    rsps: responses.RequestsMock, logged_in: tuple[Client, Stats]
) -> None:
    client, stats = logged_in
    path = "/query/propertiesGeneral/" + "0" * 40
    add(rsps, "GET", BASE + path, load("4.0.4", "70-propertiesGeneral-unknown-hash"))

    assert client.get_json(path, endpoint="properties", deadline=soon(), allow_empty=True) is None
    with pytest.raises(BadResponse):
        client.get_json(path, endpoint="properties", deadline=soon())
    assert counters.requests(stats, "properties", "ok") == 1
    assert counters.requests(stats, "properties", "bad_response") == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        load("4.5.2", "11-torrents-info").body[:-40],
    ],
    ids=["html", "truncated-json"],
)
def test_non_json_body_is_bad_response_and_counted(
    rsps: responses.RequestsMock, logged_in: tuple[Client, Stats], body: bytes
) -> None:
    client, stats = logged_in
    rsps.add("GET", BASE + "/query/torrents", body=body)

    with pytest.raises(BadResponse):
        client.get_json("/query/torrents", endpoint="torrents", deadline=soon())
    assert counters.requests(stats, "torrents", "bad_response") == 1
    assert counters.requests(stats, "torrents", "ok") == 0


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [(404, NotFound, "not_found"), (500, HttpError, "http_error"), (302, HttpError, "http_error")],
)
def test_error_statuses(
    rsps: responses.RequestsMock,
    logged_in: tuple[Client, Stats],
    status: int,
    error: type[QbtError],
    outcome: str,
) -> None:
    client, stats = logged_in
    rsps.add("GET", BASE + "/query/x", status=status, body=b"", headers={"Location": BASE + "/elsewhere"})

    with pytest.raises(error) as info:
        client.get("/query/x", endpoint="x", deadline=soon())
    assert type(info.value) is error
    assert counters.requests(stats, "x", outcome) == 1
    assert len(calls_to(rsps, "/query/x")) == 1  # never follows a redirect


def test_get_public_returns_any_status_without_login(rsps: responses.RequestsMock) -> None:
    add(rsps, "GET", BASE + "/version/api", load("4.5.2", "01-legacy-version-api-probe"))
    stats = Stats()
    client = make_client(stats)

    response = client.get_public("/version/api", endpoint="version_api", deadline=soon())

    assert response.status == 404
    assert len(rsps.calls) == 1 and not client.has_session()
    assert counters.requests(stats, "version_api", "not_found") == 1


# --- CSRF / Host ------------------------------------------------------------------------------
def test_401_then_referer_retry_succeeds_and_is_remembered(
    rsps: responses.RequestsMock, logged_in: tuple[Client, Stats]
) -> None:
    client, stats = logged_in

    def csrf(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        if request.headers.get("Referer") == "http://qbt.test:8080/":
            return 200, {}, b"[]"
        return 401, {}, b""

    rsps.add_callback("GET", BASE + "/query/torrents", callback=csrf)

    client.get("/query/torrents", endpoint="torrents", deadline=soon())
    client.get("/query/torrents", endpoint="torrents", deadline=soon())

    gets = calls_to(rsps, "/query/torrents")
    assert [c.response.status_code for c in gets] == [401, 200, 200]
    assert "Origin" not in gets[0].request.headers
    assert counters.requests(stats, "torrents", "ok") == 2
    assert counters.requests(stats, "torrents", "unauthorized") == 0


def test_401_with_host_port_retries_host_without_port(
    rsps: responses.RequestsMock, logged_in: tuple[Client, Stats]
) -> None:
    client, _stats = logged_in

    def host_check(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        if request.headers.get("Host") == "qbt.test" and request.headers.get("Referer") == "http://qbt.test/":
            return 200, {}, b"[]"
        return 401, {}, b"Unauthorized"

    rsps.add_callback("GET", BASE + "/query/torrents", callback=host_check)

    assert client.get_json("/query/torrents", endpoint="torrents", deadline=soon()) == []
    assert client.get_json("/query/torrents", endpoint="torrents", deadline=soon()) == []

    gets = calls_to(rsps, "/query/torrents")
    assert [c.response.status_code for c in gets] == [401, 401, 200, 200]
    assert "Host" not in gets[0].request.headers and "Referer" not in gets[0].request.headers
    assert gets[1].request.headers["Referer"] == "http://qbt.test:8080/"


def test_401_that_nothing_fixes_is_unauthorized(
    rsps: responses.RequestsMock, logged_in: tuple[Client, Stats]
) -> None:
    client, stats = logged_in
    rsps.add("GET", BASE + "/query/torrents", status=401, body=b"")

    with pytest.raises(Unauthorized):
        client.get("/query/torrents", endpoint="torrents", deadline=soon())
    assert len(calls_to(rsps, "/query/torrents")) == 3
    assert counters.requests(stats, "torrents", "unauthorized") == 1


def test_host_header_override_is_sent_from_the_start(rsps: responses.RequestsMock) -> None:
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    add(rsps, "GET", BASE + "/query/torrents", load("4.0.4", "09-torrents-empty"))
    client = make_client(host_header="qbittorrent.lan")

    client.get("/query/torrents", endpoint="torrents", deadline=soon())

    for call in rsps.calls:
        assert call.request.headers["Host"] == "qbittorrent.lan"
        assert call.request.headers["Referer"] == "http://qbittorrent.lan/"
    assert rsps.calls[1].request.headers["Cookie"] == cookie_pair(load("4.0.4", "04-login-ok"))


def test_login_401_with_empty_body_is_csrf_and_retried_with_referer(rsps: responses.RequestsMock) -> None:
    login = load("4.0.4", "04-login-ok")

    def strict_csrf(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        if "Referer" in request.headers:
            return 200, {"Set-Cookie": login.set_cookies[0]}, login.body
        return 401, {}, b""  # 3.3.13 wants a Referer

    rsps.add_callback("POST", BASE + "/login", callback=strict_csrf)
    stats = Stats()
    client = make_client(stats)

    client.login(soon())

    assert len(rsps.calls) == 2
    assert counters.logins(stats, "ok") == 1 and counters.logins(stats, "rejected") == 0


# --- session management -----------------------------------------------------------------------
def test_logout_posts_once_and_clears_cookies(rsps: responses.RequestsMock) -> None:
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    add(rsps, "POST", BASE + "/logout", load("4.0.4", "83-logout-second-session"))
    stats = Stats()
    client = make_client(stats)
    client.login(soon())

    client.logout()
    client.logout()  # no session: no request

    assert [c.request.path_url for c in rsps.calls] == ["/login", "/logout"]
    assert rsps.calls[1].request.headers["Cookie"] == cookie_pair(load("4.0.4", "04-login-ok"))
    assert rsps.calls[1].request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert not client.has_session() and len(client.session.cookies) == 0
    assert counters.requests(stats, "logout", "ok") == 1


def test_logout_never_raises(rsps: responses.RequestsMock) -> None:
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    rsps.add("POST", BASE + "/logout", body=requests.ConnectionError("boom"))
    client = make_client()
    client.login(soon())

    client.logout(Deadline(1.0))

    assert not client.has_session()


def test_changing_dialect_drops_the_session(rsps: responses.RequestsMock) -> None:
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    client = make_client()
    client.login(soon())
    client.set_dialect(*LEGACY)
    assert client.has_session()

    client.set_dialect(*V2)

    assert not client.has_session() and len(client.session.cookies) == 0


def test_no_time_left_means_no_request(rsps: responses.RequestsMock) -> None:
    clock = FakeClock()
    deadline = Deadline(1.0, clock=clock)
    clock.now = 2.0
    stats = Stats()
    client = make_client(stats)

    with pytest.raises(TimedOut):
        client.get_public("/version/api", endpoint="version_api", deadline=deadline)
    with pytest.raises(TimedOut):
        client.get("/query/torrents", endpoint="torrents", deadline=deadline)

    assert len(rsps.calls) == 0
    assert counters.all_requests(stats) == {}


def test_password_never_logged(rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    add(rsps, "POST", BASE + "/login", load("4.0.4", "91-src127.0.0.2-login-wrong-1"))
    add(rsps, "POST", BASE + "/login", load("4.0.4", "91-src127.0.0.2-login-wrong-6"))
    client = make_client(clock=clock)
    errors: list[str] = [repr(client)]

    for clock.now in (0.0, 10.0, 400.0, 401.0):
        with pytest.raises(QbtError) as info:
            client.get("/query/torrents", endpoint="torrents", deadline=soon())
        errors.append(str(info.value))

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2  # one line for the rejection, one for the ban
    assert PASSWORD not in caplog.text
    assert not any(PASSWORD in text for text in errors)


# --- real sockets ------------------------------------------------------------------------------
class TinyServer:
    """A minimal threaded TCP server on 127.0.0.1 with a free port; ``handle(conn)`` per connection."""

    def __init__(self, handle: Callable[[socket.socket, TinyServer], None]) -> None:
        self.handle = handle
        self.accepted = 0
        self.paths: list[str] = []
        self.stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> TinyServer:
        self._accept_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._accept_thread.join(5)
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.settimeout(0.2)
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.handle(conn, self)

    def read_request(self, conn: socket.socket) -> tuple[str, str] | None:
        """(method, path) of the next request on ``conn``, or None when the client closed it."""
        data = b""
        while b"\r\n\r\n" not in data:
            if self.stopping.is_set():
                return None
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            (int(v) for k, _, v in (ln.partition(":") for ln in lines) if k.lower() == "content-length"), 0
        )
        while len(body) < length:
            body += conn.recv(65536)
        method, path, _ = lines[0].split(" ", 2)
        self.paths.append(path)
        return method, path


def reply(path: str, keep_alive: bool = False) -> bytes:
    """What qBittorrent says: without any Connection header like 4.0.4, or with keep-alive like 4.1+."""
    if path.endswith("/login"):
        body, extra = b"Ok.", "Set-Cookie: SID=abcdefgh; HttpOnly; path=/\r\n"
    else:
        body, extra = b"[]", "Content-Type: application/json\r\n"
    if keep_alive:
        extra += "Connection: keep-alive\r\n"
    return f"HTTP/1.1 200 OK\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body


def close_after_each_reply(conn: socket.socket, server: TinyServer) -> None:
    """qBittorrent ≤ 4.0.4: one request per connection, closed after the reply, not announced."""
    request = server.read_request(conn)
    if request is not None:
        conn.sendall(reply(request[1]))
    conn.close()


def drop_on_reuse(conn: socket.socket, server: TinyServer) -> None:
    """4.1+ after its 7 s idle timeout: the reused connection is closed as the request arrives."""
    request = server.read_request(conn)
    if request is not None:
        conn.sendall(reply(request[1], keep_alive=True))
        server.read_request(conn)  # the client reuses the connection ...
    conn.close()  # ... and finds it dead: RemoteDisconnected


def never_answer(conn: socket.socket, server: TinyServer) -> None:
    """The rare 4.0.4 hang: the request is read and never answered."""
    server.read_request(conn)
    server.stopping.wait(30)


def test_legacy_server_closing_every_connection_keeps_working_with_path_prefix() -> None:
    """Without "Connection: keep-alive" the client never reuses a connection, so it never races
    the server's close: one connection per request, no resends."""
    with TinyServer(close_after_each_reply) as server:
        stats = Stats()
        client = make_client(stats, url=server.url + "/qbt/")
        try:
            for _ in range(30):
                assert client.get_json("/query/torrents", endpoint="torrents", deadline=soon()) == []
        finally:
            client.close()

    assert server.paths[0] == "/qbt/login"
    assert server.paths[1:] == ["/qbt/query/torrents"] * 30
    assert server.accepted == 31
    assert counters.requests(stats, "torrents", "ok") == 30
    assert counters.logins(stats, "ok") == 1


def reply_then_wait_for_client_close(conn: socket.socket, server: TinyServer) -> None:
    """A reply without "Connection: keep-alive" whose FIN has not gone out yet: the socket stays
    open until the client closes it (counted in ``server.closed_by_client``)."""
    request = server.read_request(conn)
    if request is None:
        return
    conn.sendall(reply(request[1]))
    while not server.stopping.is_set():
        try:
            if not conn.recv(1):
                server.closed_by_client.append(conn)  # type: ignore[attr-defined]  # from each connection's thread
                return
        except TimeoutError:
            continue


def test_reply_without_keep_alive_closes_its_own_connection_and_keeps_the_pool() -> None:
    """The connection of a reply the server did not promise to keep open is closed by the client
    (never reused) while the pool it came from stays: dropping every pool after each such reply,
    as before, made each of the thousands of properties calls of a 4.0.4 scrape build a new pool."""
    with TinyServer(reply_then_wait_for_client_close) as server:
        server.closed_by_client = []  # type: ignore[attr-defined]
        client = make_client(url=server.url)
        manager = client.session.get_adapter(server.url).poolmanager
        pools = []
        try:
            for _ in range(5):
                assert client.get_json("/query/torrents", endpoint="torrents", deadline=soon()) == []
                pools.append(manager.connection_from_url(server.url))  # kept: ids are never reused
        finally:
            client.close()
        # Each closed by the client as soon as its reply was read; each connection's thread sees
        # that on its own time (read at once, the last one was sometimes not counted yet).
        closed = server.closed_by_client  # type: ignore[attr-defined]
        assert eventually(lambda: len(closed) >= 5, 5.0)

    assert all(pool is pools[0] for pool in pools)
    assert server.accepted == 6  # login + 5 calls: no connection reused


def test_connection_dropped_on_reuse_is_retried_once_and_counted_once() -> None:
    with TinyServer(drop_on_reuse) as server:
        stats = Stats()
        client = make_client(stats, url=server.url)
        try:
            for _ in range(10):
                client.get("/query/torrents", endpoint="torrents", deadline=soon())
        finally:
            client.close()

    assert counters.requests(stats, "torrents", "ok") == 10
    assert counters.all_requests(stats) == {
        ("login", "ok"): 1,
        ("torrents", "ok"): 10,
    }
    assert server.accepted == 11  # every request after the first found its pooled connection dead
    assert server.paths.count("/query/torrents") == 20  # 10 dropped on arrival + 10 answered


def socket_timeouts(client: Client) -> list[float]:
    """The read timeout of every request the client sends from now on, in order: what it is willing
    to wait, read from its calls instead of timed on a (loaded) clock."""
    sent: list[float] = []
    adapter = client.session.get_adapter(client.base_url)
    send = adapter.send  # every request goes through it, whichever way the transport prepared it

    def spy(*args: Any, **kwargs: Any) -> Any:
        sent.append(kwargs["timeout"])
        return send(*args, **kwargs)

    adapter.send = spy  # type: ignore[method-assign]
    return sent


def test_server_that_never_answers_costs_one_timeout() -> None:
    """One attempt with the full request timeout, then TimedOut: a timeout is never resent."""
    with TinyServer(never_answer) as server:
        stats = Stats()
        client = make_client(stats, url=server.url, timeout=0.5)
        sent = socket_timeouts(client)
        try:
            with pytest.raises(TimedOut):
                client.get_public("/version/api", endpoint="version_api", deadline=soon())
        finally:
            client.close()
        assert server.accepted == 1

    assert sent == [0.5]
    assert counters.requests(stats, "version_api", "timeout") == 1


def test_deadline_caps_the_request_timeout() -> None:
    with TinyServer(never_answer) as server:
        client = make_client(url=server.url, timeout=5.0)
        sent = socket_timeouts(client)
        try:
            with pytest.raises(TimedOut):
                client.get_public("/version/api", endpoint="version_api", deadline=Deadline(0.3))
        finally:
            client.close()
    assert len(sent) == 1 and 0 < sent[0] <= 0.3  # not the 5 s request timeout


def test_connection_refused_is_unreachable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    stats = Stats()
    client = make_client(stats, url=f"http://127.0.0.1:{port}")

    with pytest.raises(Unreachable) as info:
        client.get_public("/version/api", endpoint="version_api", deadline=soon())

    assert type(info.value) is Unreachable
    assert counters.requests(stats, "version_api", "connection_error") == 1


def test_json_reply_bytes_are_let_go_of_before_the_objects_are_built(rsps: responses.RequestsMock) -> None:
    """While the objects are built the client holds the reply's text, not its bytes as well: at the
    peak of a big list call, one body's size less (10 MB at 10,000 torrents). Above what the call
    returns, its peak is the text (one body) now, against text + bytes (two) before."""
    body = b"[" + b"0," * (2 * 1024 * 1024) + b"0]"
    rsps.add(
        "GET", BASE + "/api/v2/torrents/info", body=gzip.compress(body), headers={"Content-Encoding": "gzip"}
    )
    client = make_client(dialect=V2, api_key="qbt_abcdefghijklmnopqrstuvwxyz12")
    tracemalloc.start()
    try:
        value = client.get_json("/api/v2/torrents/info", endpoint="torrents", deadline=soon())
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(value) == 2 * 1024 * 1024 + 1
    assert peak - kept < 1.5 * len(body)
