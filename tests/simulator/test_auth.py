"""Login, sessions and the ban of the simulated 4.0.4 against the recordings of a real one.

Why: the exporter's login policy is judged against this (five failures ban an address on every path,
a success never resets the count, idle sessions expire); a simulator kinder than 4.0.4 would hide a
policy that gets real users banned.
"""

from __future__ import annotations

import re

import requests

from qbt_exporter.simulator import Simulator, SimulatorConfig
from tests.simulator.wire import (
    LOGIN,
    SID_COOKIE,
    cookie_of,
    get,
    login,
    same_shape,
    session_cookie,
    session_cookie_from,
)


def test_login_ok_sets_sid_cookie(sim: Simulator) -> None:
    result = login(sim)
    same_shape(result, "04-login-ok.http")
    assert SID_COOKIE.match(result[1]["set-cookie"])
    assert sim.logins_ok == 1


def test_login_again_with_cookie_is_ok_without_new_cookie(sim: Simulator, cookie: str) -> None:
    result = get(sim, "/login", {"Cookie": cookie}, method="POST", body="username=admin&password=wrong")
    same_shape(result, "05-login-again-with-cookie.http")
    assert sim.logins_ok == 1 and sim.logins_failed == 0


def test_wrong_credentials_answer_fails_with_200(sim: Simulator) -> None:
    same_shape(login(sim, password="wrongpass"), "91-src127.0.0.2-login-wrong-1.http")
    same_shape(get(sim, "/login"), "98-src127.0.0.4-GET-login-no-body.http")  # GET /login counts too
    same_shape(
        get(sim, "/login", method="POST", body="username=Admin&password=adminadmin"),
        "98-src127.0.0.4-login-wrong-username.http",
    )
    assert sim.logins_failed == 3


def test_cookie_is_reused_for_many_requests(sim: Simulator, cookie: str) -> None:
    for _ in range(5):
        status, _, _ = get(sim, "/query/transferInfo", {"Cookie": cookie})
        assert status == "HTTP/1.1 200 OK"
    assert sim.logins_ok == 1
    assert sim.requests_by_path["/query/transferInfo"] == 5


def test_pooled_client_must_retry_once_like_against_a_real_4_0_4(sim: Simulator) -> None:
    """The server closes without a ``Connection: close`` header, so a pooled connection may be dead
    when reused (``RemoteDisconnected``), exactly as the design notes for 4.0.4; one retry copes."""

    def fetch(http: requests.Session, path: str) -> requests.Response:
        try:
            return http.get(sim.url + path)
        except requests.ConnectionError:
            return http.get(sim.url + path)

    with requests.Session() as http:
        assert http.post(sim.url + "/login", data=LOGIN).text == "Ok."
        for _ in range(5):
            assert fetch(http, "/query/transferInfo").status_code == 200
    assert sim.logins_ok == 1


def test_ban_after_five_failures_on_every_path(sim: Simulator, cookie: str) -> None:
    source = "127.0.0.2"
    session = session_cookie_from(sim, source)
    for attempt in range(1, 6):
        same_shape(login(sim, source, "wrongpass"), f"91-src127.0.0.2-login-wrong-{attempt}.http")
    same_shape(login(sim, source, "wrongpass"), "91-src127.0.0.2-login-wrong-6.http")
    same_shape(login(sim, source), "92-src127.0.0.2-login-correct-while-banned.http")
    same_shape(get(sim, "/version/api", source=source), "92-src127.0.0.2-version-api-while-banned.http")
    same_shape(
        get(sim, "/query/torrents?limit=1", {"Cookie": session}, source=source),
        "92-src127.0.0.2-valid-sid-while-banned.http",
    )
    assert get(sim, "/", source=source)[0] == "HTTP/1.1 403 Forbidden"
    # another address is not affected
    assert get(sim, "/query/torrents?limit=1", {"Cookie": cookie})[0] == "HTTP/1.1 200 OK"
    sim.clear_bans()
    assert get(sim, "/version/api", source=source)[2] == b"17"


def test_failure_count_is_not_reset_by_success(sim: Simulator) -> None:
    source = "127.0.0.3"
    for attempt in range(1, 5):
        same_shape(login(sim, source, "wrongpass"), f"94-src127.0.0.3-login-wrong-{attempt}.http")
    ok = login(sim, source)
    same_shape(ok, "95-src127.0.0.3-login-correct-after-4-failures.http", body=True)
    session = cookie_of(ok[1])
    same_shape(login(sim, source, "wrongpass"), "96-src127.0.0.3-login-wrong-5-after-success.http")
    same_shape(
        get(sim, "/query/torrents?limit=1", {"Cookie": session}, source=source),
        "97-src127.0.0.3-query-with-sid-now-banned.http",
    )


def test_ban_expires_after_ban_duration() -> None:
    now = [0.0]
    config = SimulatorConfig(torrents=1, latency=False, churn=False, ban_duration=0.3)
    with Simulator(config, clock=lambda: now[0]) as sim:
        for _ in range(5):
            login(sim, "127.0.0.5", "wrong")
        assert get(sim, "/version/api", source="127.0.0.5")[0] == "HTTP/1.1 403 Forbidden"
        now[0] = 0.29
        assert get(sim, "/version/api", source="127.0.0.5")[0] == "HTTP/1.1 403 Forbidden"
        now[0] = 0.4
        assert get(sim, "/version/api", source="127.0.0.5")[2] == b"17"


def test_logout_expires_cookie_and_only_that_session(sim: Simulator, cookie: str) -> None:
    second = session_cookie(sim)
    result = get(sim, "/logout", {"Cookie": second})
    same_shape(result, "83-logout-second-session.http")
    assert re.match(
        r"^SID=; expires=\w{3}, \d\d-\w{3}-\d{4} \d\d:\d\d:\d\d GMT; path=/$", result[1]["set-cookie"]
    )
    same_shape(get(sim, "/query/torrents", {"Cookie": second}), "84-after-logout-old-sid.http")
    assert get(sim, "/query/torrents?limit=1", {"Cookie": cookie})[0] == "HTTP/1.1 200 OK"


def test_sessions_expire_when_idle() -> None:
    now = [0.0]
    config = SimulatorConfig(torrents=1, latency=False, churn=False, session_timeout=0.3)
    with Simulator(config, clock=lambda: now[0]) as sim:
        cookie = session_cookie(sim)
        now[0] = 0.29  # each use restarts the idle time
        assert get(sim, "/query/transferInfo", {"Cookie": cookie})[0] == "HTTP/1.1 200 OK"
        now[0] = 0.29 + 0.45
        assert get(sim, "/query/transferInfo", {"Cookie": cookie})[0] == "HTTP/1.1 403 Forbidden"


def test_drop_sessions_forces_a_new_login(sim: Simulator, cookie: str) -> None:
    sim.drop_sessions()
    assert get(sim, "/query/transferInfo", {"Cookie": cookie})[0] == "HTTP/1.1 403 Forbidden"
