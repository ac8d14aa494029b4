"""The per-torrent passes' whole-list shortcuts agree with their per-torrent definitions.

Each scrape asks every listed torrent which calls it wants and fills every one from its cached
properties, so those steps run as C-level passes over the whole list (``Plan.select``,
``properties.completed``); the per-torrent methods (``Plan.wants``, ``Torrent.with_properties``)
stay the definition. Any torrent and any properties, including odd values (NaN, 0, absent), the
unusable hash and duplicates, must get the same answer both ways, and a pass with the shortcut
must report and serve what the same pass without it does, scrape after scrape.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from qbt_exporter import properties, trackers
from qbt_exporter.deadline import Deadline
from qbt_exporter.pertorrent import PerTorrentPolicy, Plan
from qbt_exporter.qbittorrent.model import PROPERTY_FIELDS, TORRENT_STATES, Torrent, TorrentProperties

HASHES = ["", *(f"{n:08x}" + "0" * 32 for n in (1, 2, 3, 0x7FFFFFFF, 0xFFFFFFFF))]
values = st.one_of(st.none(), st.just(0), st.just(math.nan), st.floats(0, 1e12), st.integers(0, 60))
torrent = st.builds(
    lambda h, state, speed, props: Torrent(
        hash=h, name="n", state=state, upload_speed=speed, **dict(zip(PROPERTY_FIELDS, props, strict=True))
    ),
    st.sampled_from(HASHES),
    st.sampled_from(TORRENT_STATES),
    st.one_of(st.none(), st.just(0.0), st.just(5.0)),
    st.tuples(*[values] * len(PROPERTY_FIELDS)),
)
torrent_properties = st.builds(
    lambda props: TorrentProperties(**dict(zip(PROPERTY_FIELDS, props, strict=True))),
    st.tuples(*[values] * len(PROPERTY_FIELDS)),
)


@settings(max_examples=200)
@given(st.lists(torrent, max_size=8), st.data())
def test_completed_is_with_properties_for_each_torrent(torrents: list[Torrent], data: st.DataObject) -> None:
    props = data.draw(
        st.lists(st.one_of(st.none(), torrent_properties), min_size=len(torrents), max_size=len(torrents))
    )
    expected = [t.with_properties(p) for t, p in zip(torrents, props, strict=True)]
    filled = properties.completed(torrents, [TorrentProperties() if p is None else p for p in props])
    assert filled == expected and all(type(t) is Torrent for t in filled)


@settings(max_examples=200)
@given(st.lists(torrent, max_size=8))
def test_each_plans_select_is_its_wants_over_the_list(torrents: list[Torrent]) -> None:
    for plan in (properties.PLAN, trackers.PLAN):
        assert plan.select is not None
        assert plan.wanted(torrents) == [t for t in torrents if plan.wants(t)]


class Recorder:
    """A per-torrent pass's fetch and reason counter on one fake clock, recording what it was asked."""

    def __init__(self, now: list[float]) -> None:
        self.now = now
        self.calls: list[tuple[str, str]] = []

    def counted(self, reason: str) -> None:
        self.calls.append(("reason", reason))

    def fetch(self, torrent_hash: str, deadline: Deadline) -> str | None:
        self.calls.append(("fetch", torrent_hash))
        return None if torrent_hash.startswith("00000003") else f"v{self.now[0]}"


def _ran(torrents: list[Torrent]) -> list[Torrent]:
    """The torrents a second later, had each of them run: their active time moved on."""
    return [
        t if t.active_seconds is None else t._replace(active_seconds=t.active_seconds + 1) for t in torrents
    ]


def _same_passes(plan: Plan, scrapes: list[list[Torrent]], step: float) -> None:
    now = [0.0]
    fast, slow = Recorder(now), Recorder(now)
    without = Plan(wants=plan.wants, key=plan.key, busy=plan.busy, settled=plan.settled)  # no shortcut
    fast_policy = PerTorrentPolicy[str](300, plan, fast.counted, lambda: now[0])
    slow_policy = PerTorrentPolicy[str](300, without, slow.counted, lambda: now[0])
    # Each list three times: as drawn; again, when it proves the held torrents' values unchanged;
    # then with every active time moved on, when it proves nothing.
    for torrents in (torrents for listed in scrapes for torrents in (listed, listed, _ran(listed))):
        now[0] += step
        done = fast_policy.run(fast.fetch, torrents, Deadline.never(), 0.0)
        assert done == slow_policy.run(slow.fetch, torrents, Deadline.never(), 0.0)
        # and what is served is what ``get`` says, torrent by torrent
        got = {t.hash: fast_policy.cache.get(t.hash, now[0]) for t in torrents if plan.wants(t)}
        served = {h: value_age for h, value_age in got.items() if value_age is not None}
        assert done.values == {h: value for h, (value, _) in served.items()}
        ages = [age for _, age in served.values()]
        assert done.report.max_age == (max(ages) if ages else None)
    assert fast.calls == slow.calls


@settings(max_examples=100)
@given(st.lists(st.lists(torrent, max_size=6), min_size=1, max_size=5), st.floats(1, 400))
def test_a_pass_with_the_shortcut_serves_and_reports_what_one_without_it_does(
    scrapes: list[list[Torrent]], step: float
) -> None:
    _same_passes(properties.PLAN, scrapes, step)
    _same_passes(trackers.PLAN, scrapes, step)
