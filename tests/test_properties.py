import hashlib

from qbt_exporter.properties import PropertiesCache, _refresh_age
from qbt_exporter.qbittorrent.model import TorrentProperties
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
    # Every hash is due again somewhere in [max_age/2, max_age], and surely by max_age.
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


def test_refresh_ages_spread_over_the_second_half_of_the_window() -> None:
    ages = [_refresh_age(hashlib.sha1(str(n).encode()).hexdigest(), 300) for n in range(2000)]
    assert min(ages) >= 150 and max(ages) <= 300
    # Spread, not bunched: each quarter of the window gets a fair share.
    quarters = [sum(150 + 37.5 * q <= a < 150 + 37.5 * (q + 1) for a in ages) for q in range(4)]
    assert all(q > 300 for q in quarters), quarters


def test_retain_forgets_vanished_torrents() -> None:
    cache = PropertiesCache(max_age=60)
    a, b = torrent(1), torrent(2)
    cache.store(a.hash, PROPS, a.state, now=0)
    cache.store(b.hash, PROPS, b.state, now=0)
    cache.retain([a.hash])
    assert len(cache) == 1 and cache.get(b.hash, now=1) is None
