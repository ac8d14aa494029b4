"""The per-scrape time budget, on a fake clock: no sleeping, exact figures.

Why: every call to qBittorrent takes its timeout from here; a budget that goes negative, forgets to
cap, or never expires turns into a scrape Prometheus has already abandoned.
"""

from __future__ import annotations

import math

from qbt_exporter.deadline import Deadline
from tests.clocks import FakeClock


def test_remaining_counts_down_on_the_given_clock_and_stops_at_zero() -> None:
    clock = FakeClock()
    deadline = Deadline(10, clock=clock)
    assert deadline.remaining() == 10
    clock.advance(2.5)
    assert deadline.remaining() == 7.5
    clock.advance(7.5)
    assert deadline.remaining() == 0.0
    clock.advance(100)
    assert deadline.remaining() == 0.0  # never negative: it becomes a request timeout


def test_expired_exactly_when_nothing_is_left() -> None:
    clock = FakeClock()
    deadline = Deadline(1, clock=clock)
    assert not deadline.expired()
    clock.advance(0.999)
    assert not deadline.expired()
    clock.advance(0.001)
    assert deadline.expired()


def test_zero_or_negative_budget_is_expired_at_once() -> None:
    clock = FakeClock()
    assert Deadline(0, clock=clock).expired()
    assert Deadline(-5, clock=clock).remaining() == 0.0


def test_cap_gives_the_smaller_of_timeout_and_what_is_left() -> None:
    clock = FakeClock()
    deadline = Deadline(3, clock=clock)
    assert deadline.cap(10) == 3
    assert deadline.cap(1) == 1
    clock.advance(2.5)
    assert deadline.cap(1) == 0.5
    clock.advance(5)
    assert deadline.cap(1) == 0.0


def test_never_has_no_end() -> None:
    deadline = Deadline.never()
    assert deadline.remaining() == math.inf
    assert not deadline.expired()
    assert deadline.cap(7.5) == 7.5
