"""The login policy on its own: no HTTP, a hand-moved clock (the client's tests cover the wire)."""

from __future__ import annotations

import math

import pytest

from qbt_exporter.qbittorrent.errors import BackingOff, LoginRejected
from qbt_exporter.qbittorrent.password import as_source
from qbt_exporter.qbittorrent.session import LOGIN_ENDPOINT, LoginPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def policy(clock: Clock, max_rejections: int = 2) -> LoginPolicy:
    return LoginPolicy(
        "http://qbt.test",
        "admin",
        as_source("wrong"),
        clock=clock,
        login_backoff=60,
        login_backoff_max=600,
        ban_duration=3600,
        max_rejections=max_rejections,
    )


def test_a_rejection_backs_off_then_suspends_until_an_accepted_login() -> None:
    clock = Clock()
    p = policy(clock)
    assert isinstance(p.rejected(p.current_password()), LoginRejected)
    assert p.backoff_remaining() == 60
    with pytest.raises(BackingOff):
        p.check(LOGIN_ENDPOINT)
    p.check("torrents")  # only logins wait; a request with a live session goes on
    clock.now = 60
    p.check(LOGIN_ENDPOINT)
    p.rejected(p.current_password())
    assert p.suspended() == {"rejected": True, "banned": False}
    assert p.backoff_remaining() == math.inf
    assert p.generation == 0
    p.accepted()  # e.g. the password file was fixed and qBittorrent took it
    assert p.generation == 1 and p.backoff_remaining() == 0 and not any(p.suspended().values())


def test_a_ban_stops_every_request_and_counts_even_without_logins() -> None:
    clock = Clock()
    p = policy(clock)
    p.banned("torrents")
    with pytest.raises(BackingOff):
        p.check("torrents")
    assert p.backoff_remaining(logins=False) == 3600  # an API key does not escape the ban
    assert p.suspended(logins=False) == {"rejected": False, "banned": False}
    clock.now = 3600
    p.check("torrents")
    p.check(LOGIN_ENDPOINT)  # someone else's failures earned the ban: one login is allowed after it


@pytest.mark.parametrize("bad", [0, 5])
def test_max_rejections_never_allows_the_fifth_failure(bad: int) -> None:
    with pytest.raises(ValueError, match="max_rejections"):
        policy(Clock(), max_rejections=bad)
