"""The login policy: no sequence of scrapes, however long, makes a 5th failed login (issue 8, defects 2, 8).

qBittorrent counts failed logins with no time window (≤ 4.0.4 never forgets one, 4.2.2+ only on a
success or when a ban ends) and bans the address at the 5th, so the tests run two simulated days
of scrapes every 15 s: first with ``responses`` and a fake clock, then against the simulator (which
counts like 4.0.4) over real sockets, its ban timed by the same virtual clock.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from qbt_exporter.collectors import Collectors
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import render_text
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.errors import BackingOff, Banned, LoginRejected, QbtError
from qbt_exporter.qbittorrent.password import FixedPassword, PasswordFile
from qbt_exporter.scraper import Scraper
from qbt_exporter.simulator import Simulator, SimulatorConfig
from qbt_exporter.stats import Stats
from tests.recording import load

BASE = "http://qbt.test:8080"
SCRAPE_INTERVAL = 15.0
TWO_DAYS = 48 * 3600.0
WRONG = "not-the-password"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


class LoginServer:
    """``POST /login`` of a 4.0.4 that accepts one password; records when each attempt came."""

    def __init__(self, rsps: responses.RequestsMock, clock: FakeClock, password: str = "right") -> None:
        self.clock = clock
        self.password = password
        self.attempts: list[float] = []
        self.ok = load("4.0.4", "04-login-ok")
        self.fails = load("4.0.4", "91-src127.0.0.2-login-wrong-1")
        rsps.add_callback("POST", BASE + "/login", callback=self.reply)
        rsps.add("GET", BASE + "/query/torrents", body=b"[]")

    def reply(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        self.attempts.append(self.clock.now)
        if request.body == f"username=admin&password={self.password}":
            return 200, {"Set-Cookie": self.ok.set_cookies[0]}, self.ok.body
        return self.fails.status, {}, self.fails.body


def scrape_for(client: Client, clock: FakeClock, seconds: float) -> list[str]:
    """One authenticated call every 15 s for ``seconds``; the outcome of each."""
    outcomes: list[str] = []
    end = clock.now + seconds
    while clock.now < end:
        try:
            client.get("/query/torrents", endpoint="torrents", deadline=Deadline(10.0))
            outcomes.append("ok")
        except QbtError as err:
            outcomes.append(err.outcome)
        clock.now += SCRAPE_INTERVAL
    return outcomes


def make_client(clock: FakeClock, password: Any, **kwargs: Any) -> Client:
    client = Client(BASE, "admin", password, stats=Stats(), clock=clock, **kwargs)
    client.set_dialect("/login", "/logout")
    return client


# --- defect 2: unit, fake clock ------------------------------------------------------------------
def test_wrong_password_for_two_days_makes_exactly_max_rejections_attempts(
    rsps: responses.RequestsMock,
) -> None:
    clock = FakeClock()
    server = LoginServer(rsps, clock)
    client = make_client(clock, WRONG)

    outcomes = scrape_for(client, clock, TWO_DAYS)

    # 5 and 10 minutes between the first rejections, then nothing (the old back-off went on at
    # 2100 and 4500 s: the 5th failure, a ban).
    assert server.attempts == [0.0, 300.0, 900.0]
    assert outcomes.count("rejected") == 3 and outcomes.count("backoff") == len(outcomes) - 3
    assert client.login_suspended() == {"rejected": True, "banned": False}
    assert client.login_backoff_remaining() == math.inf


@pytest.mark.parametrize("max_rejections", [1, 2, 3, 4])
def test_max_rejections_is_the_number_of_attempts(rsps: responses.RequestsMock, max_rejections: int) -> None:
    clock = FakeClock()
    server = LoginServer(rsps, clock)
    client = make_client(clock, WRONG, max_rejections=max_rejections, login_backoff=60, login_backoff_max=60)
    scrape_for(client, clock, TWO_DAYS)
    assert len(server.attempts) == max_rejections


def test_max_rejections_must_leave_the_fifth_failure_unmade() -> None:
    for bad in (0, 5):
        with pytest.raises(ValueError, match="max_rejections"):
            Client(BASE, "admin", WRONG, max_rejections=bad)


def test_changed_password_file_gets_one_attempt_then_waits_again(
    rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    clock = FakeClock()
    server = LoginServer(rsps, clock)
    secret = tmp_path / "password"
    secret.write_text(WRONG + "\n")
    client = make_client(clock, PasswordFile(str(secret)))
    scrape_for(client, clock, TWO_DAYS)
    assert len(server.attempts) == 3

    secret.write_text("another-wrong-one\n")
    changed_at = clock.now
    scrape_for(client, clock, TWO_DAYS)
    assert server.attempts[3:] == [changed_at]  # exactly one more, on the next scrape

    # Four failures in a row: a fifth could be the ban, so not even a new password is tried.
    secret.write_text("right\n")
    outcomes = scrape_for(client, clock, TWO_DAYS)
    assert len(server.attempts) == 4 and set(outcomes) == {"backoff"}
    with pytest.raises(BackingOff, match="restart the exporter"):
        client.login(Deadline(10.0))
    assert client.login_suspended() == {"rejected": True, "banned": False}


def test_fixed_password_file_logs_in_and_success_resets_everything(
    rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    clock = FakeClock()
    server = LoginServer(rsps, clock)
    secret = tmp_path / "password"
    secret.write_text(WRONG)
    client = make_client(clock, PasswordFile(str(secret)))
    scrape_for(client, clock, 3600.0)
    assert len(server.attempts) == 3

    secret.write_text("right")
    assert client.login_suspended()["rejected"] is False  # the gauge follows the file at once
    assert client.login_backoff_remaining() == 0.0
    assert scrape_for(client, clock, 60.0) == ["ok"] * 4
    assert len(server.attempts) == 4

    # A later rejection starts the whole policy over: 5 minutes, not a suspension.
    server.password = "rotated"
    client.forget_session()
    with pytest.raises(LoginRejected):
        client.login(Deadline(10.0))
    assert client.login_backoff_remaining() == 300.0
    assert client.login_suspended() == {"rejected": False, "banned": False}


def test_a_file_being_rewritten_never_sends_an_empty_password(
    rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    clock = FakeClock()
    server = LoginServer(rsps, clock)
    secret = tmp_path / "password"
    secret.write_text(WRONG)
    client = make_client(clock, PasswordFile(str(secret)))
    scrape_for(client, clock, 3600.0)
    secret.write_text("")  # an editor truncated it and has not written yet
    scrape_for(client, clock, 3600.0)
    secret.unlink()
    scrape_for(client, clock, 3600.0)
    assert len(server.attempts) == 3


def test_environment_password_suspension_is_logged_once_and_says_restart(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    LoginServer(rsps, clock)
    client = make_client(clock, FixedPassword(WRONG, "QBITTORRENT_PASSWORD"))
    scrape_for(client, clock, TWO_DAYS)

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "QBITTORRENT_PASSWORD" in errors[0] and "restart the exporter" in errors[0]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # the first two rejections, each with its back-off


def test_password_file_suspension_names_the_file(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    clock = FakeClock()
    LoginServer(rsps, clock)
    secret = tmp_path / "password"
    secret.write_text(WRONG)
    client = make_client(clock, PasswordFile(str(secret)))
    scrape_for(client, clock, TWO_DAYS)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert f"fix the password in {secret}; the exporter tries again when the file changes" in errors[0]


# --- bans ----------------------------------------------------------------------------------------
def test_ban_earned_by_our_rejected_password_waits_for_a_new_password(
    rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    clock = FakeClock()
    fails = load("4.0.4", "91-src127.0.0.2-login-wrong-1")
    ban = load("4.0.4", "91-src127.0.0.2-login-wrong-6")
    replies = [fails, ban]  # someone else's failures added up: our 2nd attempt meets a ban
    attempts: list[float] = []

    def reply(_request: Any) -> tuple[int, dict[str, str], bytes]:
        attempts.append(clock.now)
        rec = replies.pop(0) if replies else fails
        return rec.status, {}, rec.body

    rsps.add_callback("POST", BASE + "/login", callback=reply)
    secret = tmp_path / "password"
    secret.write_text(WRONG)
    client = make_client(clock, PasswordFile(str(secret)))
    outcomes = scrape_for(client, clock, TWO_DAYS)

    assert attempts == [0.0, 300.0] and outcomes.count("banned") == 1
    assert client.login_suspended() == {"rejected": False, "banned": True}
    assert client.login_backoff_remaining() == math.inf

    # A new password is tried on the next scrape (the ban is over); it is wrong too, and the
    # ordinary policy goes on: it was the 2nd rejection in a row, the 3rd ends the attempts.
    secret.write_text("new-password")
    changed_at = clock.now
    scrape_for(client, clock, TWO_DAYS)
    assert attempts[2:] == [changed_at, changed_at + 600.0]
    assert client.login_suspended() == {"rejected": True, "banned": False}


def test_ban_earned_by_someone_else_is_waited_out_then_one_login(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    ban = load("4.0.4", "91-src127.0.0.2-login-wrong-6")
    attempts: list[float] = []

    def reply(_request: Any) -> tuple[int, dict[str, str], bytes]:
        attempts.append(clock.now)
        return ban.status, {}, ban.body

    rsps.add_callback("POST", BASE + "/login", callback=reply)
    client = make_client(clock, "whatever")
    scrape_for(client, clock, 60.0)
    assert client.login_suspended() == {"rejected": False, "banned": True}
    assert 3500.0 < client.login_backoff_remaining() <= 3600.0  # the ban's end, not infinity

    scrape_for(client, clock, 3 * 3600.0)
    # One login an hour while banned: a banned login is refused before the credentials are
    # checked (§4.5), so it never counts as a failure.
    assert attempts == [0.0, 3600.0, 7200.0, 10800.0]
    bans = [r for r in caplog.records if r.levelno >= logging.WARNING and "banned" in r.getMessage()]
    assert len(bans) == 1  # said once, not at every hourly retry


# --- defect 2 against the simulator (counts like 4.0.4: never resets) ----------------------------
def test_two_days_of_scrapes_with_a_wrong_password_never_get_the_simulator_to_ban(tmp_path: Path) -> None:
    clock = FakeClock()
    config = SimulatorConfig(torrents=3, latency=False, churn=False, time_scale=0.0)
    with Simulator(config, clock=clock).start() as sim:
        secret = tmp_path / "password"
        secret.write_text(WRONG)
        stats = Stats()
        client = Client(sim.url, config.username, PasswordFile(str(secret)), stats=stats, clock=clock)
        scraper = Scraper(client, stats, clock=clock)
        collector = Collectors(scraper, stats)
        try:
            text = ""
            while clock.now < TWO_DAYS:
                text = render_text(collector.collect_within(Deadline(10.0))).decode()
                clock.now += SCRAPE_INTERVAL
            assert sim.bans == 0
            assert sim.logins_failed == 3
            assert 'qbittorrent_exporter_login_suspended{reason="rejected"} 1.0' in text
            assert 'qbittorrent_exporter_login_suspended{reason="banned"} 0.0' in text
            assert "qbittorrent_exporter_login_backoff_seconds +Inf" in text
            assert "qbittorrent_up 0.0" in text

            secret.write_text(config.password)
            text = render_text(collector.collect_within(Deadline(10.0))).decode()
            assert "qbittorrent_up 1.0" in text
            assert 'qbittorrent_exporter_login_suspended{reason="rejected"} 0.0' in text
            assert "qbittorrent_exporter_login_backoff_seconds 0.0" in text
            assert (sim.logins_ok, sim.logins_failed, sim.bans) == (1, 3, 0)
        finally:
            client.close()


def test_simulator_ban_follows_its_clock() -> None:
    """The simulator side of the test above: its ban really is timed by the injected clock."""
    clock = FakeClock()
    config = SimulatorConfig(torrents=1, latency=False, churn=False, time_scale=0.0)
    with Simulator(config, clock=clock).start() as sim:
        own_clock = FakeClock()
        client = Client(sim.url, "admin", WRONG, clock=own_clock, max_rejections=4, login_backoff=1)
        client.set_dialect("/login", "/logout")
        other = Client(sim.url, "admin", WRONG, clock=clock)  # someone else at the same address
        other.set_dialect("/login", "/logout")
        try:
            for attempt in range(4):
                own_clock.now = attempt * 10.0
                with pytest.raises(LoginRejected):
                    client.login(Deadline(10.0))
            with pytest.raises(LoginRejected):
                other.login(Deadline(10.0))  # the 5th failure, from 127.0.0.1 too: banned
            assert sim.bans == 1
            clock.now = config.ban_duration - 1
            with pytest.raises(Banned):
                other.get_public("/version/api", endpoint="v", deadline=Deadline(5))
            clock.now = 2 * config.ban_duration  # other's own ban wait is over too
            assert other.get_public("/version/api", endpoint="v", deadline=Deadline(5)).status == 200
        finally:
            client.close()
            other.close()


# --- defect 8: one line per cause -----------------------------------------------------------------
def test_a_hundred_scrapes_during_a_backoff_log_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    config = SimulatorConfig(torrents=1, latency=False, churn=False, time_scale=0.0)
    with Simulator(config, clock=clock).start() as sim:
        stats = Stats()
        client = Client(sim.url, "admin", WRONG, stats=stats, clock=clock)
        scraper = Scraper(client, stats, clock=clock)
        try:
            scraper.scrape(Deadline(10.0))  # the rejection: logged by the client and the scraper
            caplog.clear()
            caplog.set_level(logging.INFO)
            for _ in range(100):
                clock.now += 2.0  # 200 s: all inside the 300 s back-off
                assert scraper.scrape(Deadline(10.0)).snapshot is None
            assert sim.logins_failed == 1
            lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(lines) == 1, lines
            assert "waiting before the next attempt" in lines[0]
        finally:
            client.close()
