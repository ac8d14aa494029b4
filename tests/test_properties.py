import hashlib

import pytest

from qbt_exporter.deadline import Deadline
from qbt_exporter.pertorrent import refresh_age
from qbt_exporter.properties import PropertiesCache, PropertiesPass, PropertiesPolicy
from qbt_exporter.qbittorrent.errors import HttpError
from qbt_exporter.qbittorrent.model import Torrent, TorrentProperties
from qbt_exporter.stats import Stats
from tests.fakes import torrent

PROPS = TorrentProperties(wasted=1, seeding_seconds=2, connections=3)


def test_new_torrents_are_due_then_not_until_they_age() -> None:
    cache = PropertiesCache(max_age=300)
    torrents = [torrent(1), torrent(2)]
    assert [(d.hash, d.reason) for d in cache.due(torrents, now=0)] == [
        (torrents[0].hash, "new"),
        (torrents[1].hash, "new"),
    ]
    for t in torrents:
        cache.store(t.hash, PROPS, t.state, now=0)
    assert cache.due(torrents, now=100) == []
    # Every hash is due again somewhere in [max_age/2, 0.9 max_age], and surely by max_age.
    assert {d.reason for d in cache.due(torrents, now=300)} == {"aged"}


def test_state_change_and_busy_torrents_are_due_before_aged_ones() -> None:
    cache = PropertiesCache(max_age=300)
    idle, changing, busy = torrent(1), torrent(2), torrent(3, download_speed=100.0)
    for t in (idle, changing, busy):
        cache.store(t.hash, PROPS, t.state, now=0)
    changed = torrent(2, state="stoppedUP")
    due = cache.due([idle, changed, busy], now=301)
    assert [(d.hash, d.reason) for d in due] == [
        (changed.hash, "changed"),
        (busy.hash, "busy"),
        (idle.hash, "aged"),
    ]


def test_never_serves_values_older_than_max_age() -> None:
    cache = PropertiesCache(max_age=60)
    t = torrent(7)
    cache.store(t.hash, PROPS, t.state, now=1000)
    assert cache.get(t.hash, now=1060) == (PROPS, 60)
    assert cache.get(t.hash, now=1060.001) is None


def test_torrents_with_every_value_in_the_list_need_no_call() -> None:
    cache = PropertiesCache(max_age=60)
    complete = torrent(1, wasted=0.0, seeding_seconds=1.0, connections=2)
    assert cache.due([complete], now=0) == []


def test_refresh_ages_spread_from_half_to_nine_tenths_of_the_window() -> None:
    ages = [refresh_age(hashlib.sha1(str(n).encode()).hexdigest(), 300) for n in range(2000)]
    assert min(ages) >= 150 and max(ages) <= 270  # the last tenth is the margin for the pass's calls
    # Spread, not bunched: each quarter of the range gets a fair share.
    quarters = [sum(150 + 30 * q <= a < 150 + 30 * (q + 1) for a in ages) for q in range(4)]
    assert all(q > 300 for q in quarters), quarters


def test_retain_forgets_vanished_torrents() -> None:
    cache = PropertiesCache(max_age=60)
    a, b = torrent(1), torrent(2)
    cache.store(a.hash, PROPS, a.state, now=0)
    cache.store(b.hash, PROPS, b.state, now=0)
    cache.retain([a.hash])
    assert len(cache) == 1 and cache.get(b.hash, now=1) is None


class Ticking:
    """A clock that advances ``step`` seconds each time a properties call is made: the pass's
    time is measured without sleeping."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def fetch(self, torrent_hash: str, deadline: Deadline) -> TorrentProperties | None:
        self.calls.append(torrent_hash)
        self.now += self.step
        return PROPS


def test_refreshes_stop_at_the_budget_and_new_torrents_do_not() -> None:
    """The budget is a fifth of the list time, at least REFRESH_MIN_SECONDS (0.2 s). Calls take
    exactly 1/64 s (exact in binary): the 13th call passes 0.2 s, the 26th passes 0.4 s; new
    torrents are all fetched, whatever they cost."""
    clock = Ticking(1 / 64)
    policy = PropertiesPolicy(max_age=300, stats=Stats(), clock=clock)
    busy = [torrent(n, "uploading", upload_speed=10.0) for n in range(1, 41)]
    first = policy.complete(clock.fetch, busy, Deadline.never(), list_seconds=0.0)
    assert len(clock.calls) == 40 and first.report == PropertiesPass(skipped=0, max_age=39 / 64)
    clock.calls.clear()
    second = policy.complete(clock.fetch, busy, Deadline.never(), list_seconds=0.0)
    assert len(clock.calls) == 13 and second.report.skipped == 27 and not second.report.cut_short
    assert clock.calls == [t.hash for t in busy[:13]]  # oldest first
    clock.calls.clear()
    third = policy.complete(clock.fetch, busy, Deadline.never(), list_seconds=2.0)  # budget 0.4 s
    assert len(clock.calls) == 26 and clock.calls[0] == busy[13].hash  # resumes where it stopped
    assert third.report.skipped == 14


def test_a_failed_call_is_reported_and_the_pass_goes_on() -> None:
    stats = Stats()
    policy = PropertiesPolicy(max_age=300, stats=stats, clock=lambda: 0.0)

    def fetch(torrent_hash: str, deadline: Deadline) -> TorrentProperties | None:
        if torrent_hash == torrent(1).hash:
            raise HttpError("500 Internal Server Error")
        return PROPS

    done = policy.complete(fetch, [torrent(1), torrent(2)], Deadline.never(), list_seconds=0.0)
    assert done.report.failed == 1 and done.report.skipped == 0
    assert done.report.error is not None and "500" in done.report.error
    assert [t.wasted for t in done.torrents] == [None, 1]
    assert stats.get("properties_refreshes", "new") == 1


def test_a_held_torrent_whose_list_counters_stand_still_is_never_refetched_and_stays_served() -> None:
    """A stopped or queued torrent is paused in libtorrent: while its active time, downloaded and
    uploaded bytes in the list stay what they were at the fetch, its properties cannot have moved.
    They are served as known true now (age 0), with no call, however long that lasts."""
    clock = Ticking(0.0)
    stats = Stats()
    policy = PropertiesPolicy(max_age=300, stats=stats, clock=clock)
    queued, stopped = torrent(1, "queuedUP"), torrent(2, "stoppedUP")
    policy.complete(clock.fetch, [queued, stopped], Deadline.never(), list_seconds=0.0)
    assert clock.calls == [queued.hash, stopped.hash]
    clock.calls.clear()
    for _ in range(10):  # 10 x max_age: every value would have aged twice over
        clock.now += 300
        done = policy.complete(clock.fetch, [queued, stopped], Deadline.never(), list_seconds=0.0)
        assert clock.calls == []
        assert [t.wasted for t in done.torrents] == [1, 1] and done.report.max_age == 0.0
    assert stats.get("properties_refreshes", "aged") == 0


def test_a_held_torrent_whose_active_time_moved_ages_from_the_last_scrape_that_proved_it() -> None:
    """It ran between two scrapes (the same state, more active time): nothing is proved any more,
    so the value ages from the last scrape whose list proved it, and is refreshed by its age (not at
    once, beyond the budget: a held torrent whose counters move on every scrape is just idle)."""
    clock = Ticking(0.0)
    stats = Stats()
    policy = PropertiesPolicy(max_age=300, stats=stats, clock=clock)
    held = torrent(1, "stoppedUP")
    policy.complete(clock.fetch, [held], Deadline.never(), list_seconds=0.0)
    clock.calls.clear()
    clock.now = 1000.0
    policy.complete(clock.fetch, [held], Deadline.never(), list_seconds=0.0)  # proved at 1000
    ran = torrent(1, "stoppedUP", active_seconds=90.0)
    clock.now = 1000.0 + refresh_age(held.hash, 300) - 1
    done = policy.complete(clock.fetch, [ran], Deadline.never(), list_seconds=0.0)
    assert clock.calls == [] and done.report.max_age == refresh_age(held.hash, 300) - 1
    clock.now += 1
    policy.complete(clock.fetch, [ran], Deadline.never(), list_seconds=0.0)
    assert clock.calls == [held.hash] and stats.get("properties_refreshes", "aged") == 1


@pytest.mark.parametrize(
    "listed",
    [
        torrent(1, "stalledUP"),  # running: its counters move (connections too), so it ages
        torrent(1, "stoppedUP", active_seconds=None),  # the legacy list has no active time: no proof
    ],
)
def test_without_a_proof_from_the_list_idle_torrents_still_age(listed: Torrent) -> None:
    clock = Ticking(0.0)
    policy = PropertiesPolicy(max_age=300, stats=Stats(), clock=clock)
    policy.complete(clock.fetch, [listed], Deadline.never(), list_seconds=0.0)
    clock.calls.clear()
    clock.now += 300
    done = policy.complete(clock.fetch, [listed], Deadline.never(), list_seconds=0.0)
    assert clock.calls == [listed.hash] and done.report.max_age == 0.0
