"""Refresh ahead (``refresher.py``): between scrapes, the values the next scrape would refresh for age.

The unit tests run the window's calls in the test's own thread (``spawn=False``, ``work()``) on a
fake clock, so what is picked and when it stops is exact. The threaded tests run the real worker
against the in-process simulator (behind a fault proxy for the hostile one), with the scrapes' clock
fake and the network's real, and stop every thread they start.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import requests

from qbt_exporter import properties
from qbt_exporter.collectors import Collectors
from qbt_exporter.deadline import Deadline
from qbt_exporter.pertorrent import REASONS, PerTorrentPolicy, Plan, refresh_age
from qbt_exporter.qbittorrent import flavours
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.errors import BadResponse, QbtError, Unreachable
from qbt_exporter.qbittorrent.model import TorrentProperties
from qbt_exporter.refresher import CALL_SECONDS, GRACE_SECONDS, Job, Refresher
from qbt_exporter.scraper import Scraper
from qbt_exporter.simulator import Simulator, SimulatorConfig
from qbt_exporter.simulator.faults import Exchange, FaultProxy
from qbt_exporter.stats import Stats
from qbt_exporter.web import ExporterApp, serve
from tests.clocks import FakeClock
from tests.fakes import FakeClient, FakeFlavour, torrent
from tests.waiting import eventually

MAX_AGE = 300.0  # refresh ages between 150 s and 270 s, by hash


def _spread(n: int) -> str:
    """A hash whose first eight digits (which set its refresh age) spread over the whole range."""
    return f"{(n * 2654435761) % 2**32:08x}{n:032x}"


LIBRARY = [torrent(n, hash=_spread(n)) for n in range(1, 41)]


@dataclass
class Flaky(FakeFlavour):
    """A flavour whose properties call fails with ``errors`` (popped one per call, None: answers)."""

    errors: list[QbtError | None] = field(default_factory=list)

    def properties(self, torrent_hash: str, deadline: Deadline) -> TorrentProperties | None:
        error = self.errors.pop(0) if self.errors else None
        if error is not None:
            self.property_calls.append(torrent_hash)
            raise error
        return super().properties(torrent_hash, deadline)


def make(flavour: FakeFlavour, wait: object = None) -> tuple[Scraper, Refresher, Stats]:
    stats = Stats()
    kwargs = {} if wait is None else {"wait": wait}
    refresher = Refresher(clock=flavour.clock, spawn=False, **kwargs)  # type: ignore[arg-type]
    scraper = Scraper(
        FakeClient(),  # type: ignore[arg-type]
        stats,
        properties_max_age=MAX_AGE,
        trackers_max_age=MAX_AGE,
        detect=lambda client, stats, deadline: flavour,
        clock=flavour.clock,
        refresher=refresher,
    )
    return scraper, refresher, stats


def without_refresher(flavour: FakeFlavour) -> Scraper:
    """A scraper of the properties alone, with no refresh between scrapes."""
    return Scraper(
        FakeClient(),  # type: ignore[arg-type]
        Stats(),
        properties_max_age=MAX_AGE,
        detect=lambda client, stats, deadline: flavour,
        clock=flavour.clock,
        trackers=False,
    )


def due_by(seconds: float) -> set[str]:
    """The library's hashes whose refresh age is at most ``seconds``."""
    return {t.hash for t in LIBRARY if refresh_age(t.hash, MAX_AGE) <= seconds}


def two_scrapes(flavour: FakeFlavour, scraper: Scraper, apart: float = 100.0) -> None:
    """The library fetched at 1000 (new), then a scrape ``apart`` seconds later that finds every value
    fresh: the window after it looks ``apart`` seconds ahead."""
    scraper.scrape(Deadline.never())
    flavour.clock.advance(apart)
    scraper.scrape(Deadline.never())
    flavour.property_calls.clear()
    flavour.tracker_calls.clear()


def test_the_values_due_before_the_next_scrape_are_fetched_between_scrapes_and_it_makes_none() -> None:
    flavour = FakeFlavour(torrents=list(LIBRARY))
    scraper, refresher, stats = make(flavour)
    two_scrapes(flavour, scraper)  # at 1000 and 1100: the next one is expected at 1200
    expected = due_by(200.0)
    assert 0 < len(expected) < len(LIBRARY)  # some come due by then, the others later
    flavour.clock.advance(10)
    assert refresher.work() == 2 * len(expected)
    # exactly those, properties then trackers, oldest first (all were fetched at once: list order)
    order = [t.hash for t in LIBRARY if t.hash in expected]
    assert flavour.property_calls == order and flavour.tracker_calls == order
    assert stats.get("properties_refreshes", "ahead") == len(expected)
    assert stats.get("trackers_refreshes", "ahead") == len(expected)
    assert refresher.work() == 0  # nothing is fetched twice

    flavour.property_calls.clear()
    flavour.tracker_calls.clear()
    flavour.clock.advance(90)  # the next scrape, when expected
    result = scraper.scrape(Deadline.never())
    assert flavour.property_calls == [] and flavour.tracker_calls == []
    assert stats.get("properties_refreshes", "aged") == 0 and stats.get("trackers_refreshes", "aged") == 0
    # the values fetched ahead are served, with their age from the background fetch
    assert all(t.wasted == 1 for t in result.per_torrent())
    assert result.trackers is not None and set(result.trackers.torrents) == {t.hash for t in LIBRARY}
    assert result.properties is not None and result.properties.max_age == 200.0  # the rest, from 1000


def test_without_the_refresher_the_same_scrape_makes_the_aged_calls() -> None:
    """The baseline of the test above: those calls land in the scrape."""
    flavour = FakeFlavour(torrents=list(LIBRARY))
    scraper = without_refresher(flavour)
    two_scrapes(flavour, scraper)
    flavour.clock.advance(100)
    scraper.scrape(Deadline.never())
    assert set(flavour.property_calls) == due_by(200.0)


def left_by(seconds: float) -> set[str]:
    """The library's hashes a scrape may no longer leave to the refresh between scrapes once their
    values are ``seconds`` old: halfway from their refresh age to the max age."""
    return {t.hash for t in LIBRARY if (refresh_age(t.hash, MAX_AGE) + MAX_AGE) / 2 <= seconds}


def every_10_s_without_the_worker(
    flavour: FakeFlavour, scraper: Scraper, until: float
) -> dict[float, set[str]]:
    """Scrapes every 10 s from 1000 (the library fetched then) up to ``until``, the refresh between
    scrapes never getting to run (``work`` is not called): the calls each scrape made."""
    calls: dict[float, set[str]] = {}
    scraper.scrape(Deadline.never())
    while flavour.clock() < until:
        flavour.clock.advance(10)
        flavour.property_calls.clear()
        result = scraper.scrape(Deadline.never())
        calls[flavour.clock()] = set(flavour.property_calls)
        # whatever the scrapes leave, no value is ever served past its max age
        assert len(result.per_torrent()) == len(LIBRARY)
        assert all(t.wasted == 1 for t in result.per_torrent())
    return calls


def test_a_scrape_leaves_aged_values_to_the_refresh_between_scrapes_while_it_runs() -> None:
    """Made in the scrape, the aged calls lengthen it and shorten the time left between scrapes: a
    scrape leaves them to that refresh, until halfway from their refresh age to the max age."""
    flavour = FakeFlavour(torrents=list(LIBRARY))
    scraper, _, stats = make(flavour)
    calls = every_10_s_without_the_worker(flavour, scraper, 1300)
    # each scrape takes only the values it may no longer leave (the next one is expected 10 s
    # later, and a spare interval: 20 s ahead), each once, and all of them before they expire
    fetched: set[str] = set()
    left_aged = 0
    for at, made in sorted(calls.items()):
        if at < 1300:
            assert made == left_by(at + 20 - 1000) - fetched, at
            fetched |= made
            left_aged += len({t.hash for t in LIBRARY if refresh_age(t.hash, MAX_AGE) <= at - 1000} - fetched)
    assert fetched == {t.hash for t in LIBRARY}
    assert left_aged > 0  # some aged values were left for a while
    assert stats.get("properties_refreshes", "aged") == len(LIBRARY)


def test_without_the_refresh_between_scrapes_a_scrape_makes_its_aged_calls_as_they_come_due() -> None:
    """The baseline of the test above: no refresher, every value refreshed at its refresh age."""
    flavour = FakeFlavour(torrents=list(LIBRARY))
    scraper = without_refresher(flavour)
    calls = every_10_s_without_the_worker(flavour, scraper, 1270)
    assert calls[1200] == {t.hash for t in LIBRARY if 190 < refresh_age(t.hash, MAX_AGE) <= 200}


def test_after_a_failure_ended_the_window_the_next_scrape_leaves_nothing_to_it() -> None:
    """The refresh between scrapes stopped at its first call: the scrape after it does not count on
    it, and makes its aged calls as they come due."""
    flavour = Flaky(torrents=list(LIBRARY))
    scraper, refresher, _ = make(flavour)
    scraper.scrape(Deadline.never())
    flavour.clock.advance(10)
    scraper.scrape(Deadline.never())  # at 1010: a window is open
    assert refresher.leave_until(1020.0) == 1040.0
    flavour.clock.advance(180)
    for _ in range(3):  # scrapes at 1190, 1200, 1210, each followed by a window whose first call fails
        flavour.clock.advance(10)
        flavour.property_calls.clear()
        scraper.scrape(Deadline.never())
        at = flavour.clock()
        aged = {t.hash for t in LIBRARY if refresh_age(t.hash, MAX_AGE) <= at - 1000}
        if at == 1190:  # the window after 1010 opened: this scrape left its aged values to it
            assert set(flavour.property_calls) == set() and aged
        elif at == 1200:  # that window failed: every aged value is taken now, none left
            assert set(flavour.property_calls) == aged
        else:  # and then as they come due
            assert set(flavour.property_calls) == aged - {
                t.hash for t in LIBRARY if refresh_age(t.hash, MAX_AGE) <= at - 1000 - 10
            }
        flavour.errors = [Unreachable("connection refused")]
        refresher.work()
        assert refresher.leave_until(at + 10) is None


def test_leave_until_is_none_before_two_scrapes_and_after_one_that_found_qbittorrent_down() -> None:
    flavour = FakeFlavour(torrents=list(LIBRARY))
    scraper, refresher, _ = make(flavour)
    assert refresher.leave_until(1000.0) is None
    scraper.scrape(Deadline.never())
    assert refresher.leave_until(1030.0) is None  # one scrape: no interval, no window
    flavour.clock.advance(30)
    scraper.scrape(Deadline.never())
    assert refresher.leave_until(1060.0) == 1120.0  # twice the interval ahead
    flavour.clock.advance(30)
    flavour.fail = Unreachable("connection refused")
    scraper.scrape(Deadline.never())
    assert refresher.leave_until(1090.0) is None
    refresher.close()


def test_nothing_is_fetched_before_two_scrapes_were_seen() -> None:
    flavour = FakeFlavour(torrents=list(LIBRARY))
    scraper, refresher, _ = make(flavour)
    scraper.scrape(Deadline.never())
    flavour.property_calls.clear()
    flavour.clock.advance(260)
    assert refresher.work() == 0 and flavour.property_calls == []


@pytest.mark.parametrize("later", [80.0, 150.0, 1000.0], ids=["window-end", "next-missed", "scrapes-stopped"])
def test_nothing_is_fetched_once_the_window_has_ended_or_scrapes_stopped_coming(later: float) -> None:
    flavour = FakeFlavour(torrents=list(LIBRARY))
    scraper, refresher, _ = make(flavour)
    two_scrapes(flavour, scraper)
    flavour.clock.advance(later)  # 80 % of the 100 s interval after the last start, and past it
    assert refresher.work() == 0 and flavour.property_calls == [] and flavour.tracker_calls == []


def test_nothing_is_fetched_after_a_scrape_that_found_qbittorrent_down() -> None:
    flavour = FakeFlavour(torrents=list(LIBRARY))
    scraper, refresher, _ = make(flavour)
    two_scrapes(flavour, scraper)
    flavour.clock.advance(100)
    flavour.fail = Unreachable("connection refused")
    assert scraper.scrape(Deadline.never()).snapshot is None
    flavour.clock.advance(1)
    assert refresher.work() == 0 and flavour.property_calls == []


def test_the_first_failure_of_qbittorrent_ends_the_window_until_the_next_scrape() -> None:
    flavour = Flaky(torrents=list(LIBRARY))
    scraper, refresher, stats = make(flavour)
    two_scrapes(flavour, scraper)
    flavour.errors = [None, Unreachable("connection refused")]
    assert refresher.work() == 1  # the first call answered, the second failed: no third
    assert len(flavour.property_calls) == 2 and flavour.tracker_calls == []
    assert refresher.work() == 0 and len(flavour.property_calls) == 2  # not again in this window
    assert stats.get("properties_refreshes", "ahead") == 1


def test_a_failure_of_one_torrent_alone_does_not_end_the_window() -> None:
    flavour = Flaky(torrents=list(LIBRARY))
    scraper, refresher, _ = make(flavour)
    two_scrapes(flavour, scraper)
    flavour.errors = [BadResponse("not JSON")]
    assert refresher.work() == 2 * len(due_by(200.0)) - 1


def test_a_scrape_arriving_stops_the_work_after_the_call_in_flight() -> None:
    """The scrape waits for the call in flight (at most its deadline and the grace), keeps its value
    and then has the caches to itself: no further background call is made."""
    waits: list[float] = []
    scrape_waits = threading.Event()

    def wait(event: threading.Event, timeout: float) -> bool:
        waits.append(timeout)
        scrape_waits.set()
        return event.wait(timeout)

    flavour = FakeFlavour(torrents=list(LIBRARY))
    scraper, refresher, stats = make(flavour, wait)
    scrapes: list[threading.Thread] = []
    armed = [False]
    real_properties = flavour.properties

    def properties(torrent_hash: str, deadline: Deadline) -> TorrentProperties | None:
        if armed[0] and len(flavour.property_calls) == 1:  # the second background call: a scrape comes
            armed[0] = False
            scrape = threading.Thread(target=scraper.scrape, args=(Deadline.never(),))
            scrapes.append(scrape)
            scrape.start()
            assert scrape_waits.wait(10), "the scrape never waited for the call in flight"
        return real_properties(torrent_hash, deadline)

    flavour.properties = properties  # type: ignore[method-assign]
    two_scrapes(flavour, scraper)
    armed[0] = True
    try:
        stored = refresher.work()
    finally:
        for scrape in scrapes:
            scrape.join(10)
    assert stored == 2 and stats.get("properties_refreshes", "ahead") == 2
    assert waits == [CALL_SECONDS + GRACE_SECONDS]
    assert not any(scrape.is_alive() for scrape in scrapes)
    # the scrape's own calls came after the two background ones, and no background call after it
    assert flavour.tracker_calls == [] and refresher.work() == 0


PLAN = Plan(wants=lambda t: t.identified, key=lambda t: t.state, settled=lambda t: t.downloaded)


def test_settled_entries_are_never_known_true_as_of_a_time_to_come() -> None:
    """``due_wanted`` proves a settled entry true as of the time it is given; the lookahead reads a
    time not yet come, and must neither write it nor pick the entry."""
    now = [1000.0]
    policy: PerTorrentPolicy[str] = PerTorrentPolicy(MAX_AGE, PLAN, lambda reason: None, lambda: now[0])
    held = torrent(1, "pausedUP")
    policy.run(lambda h, d: "v", [held], Deadline.never(), 0.0)
    assert policy.ahead([held], until=5000.0) == []
    entry = policy.cache._entries[held.hash]
    assert entry.known_at == 1000.0
    now[0] = 1100.0
    assert policy.cache.get(held.hash, 1100.0) == ("v", 100.0)


def test_a_value_fetched_ahead_is_stored_with_the_torrent_as_listed_and_a_new_key_refetches() -> None:
    flavour = FakeFlavour(torrents=list(LIBRARY))
    scraper, refresher, stats = make(flavour)
    two_scrapes(flavour, scraper)
    refresher.work()
    first = next(t for t in LIBRARY if t.hash in due_by(200.0))
    flavour.torrents = [t._replace(state="pausedUP") if t.hash == first.hash else t for t in LIBRARY]
    flavour.property_calls.clear()
    flavour.clock.advance(100)
    scraper.scrape(Deadline.never())
    assert flavour.property_calls == [first.hash] and stats.get("properties_refreshes", "changed") == 1


def test_the_window_looks_ahead_by_the_interval_between_the_last_two_scrape_starts() -> None:
    now = [1000.0]
    reasons: list[str] = []
    plain = Plan(wants=lambda t: t.identified, key=lambda t: t.state)
    policy: PerTorrentPolicy[str] = PerTorrentPolicy(MAX_AGE, plain, reasons.append, lambda: now[0])
    listed = [torrent(n, hash=_spread(n)) for n in range(1, 6)]
    policy.run(lambda h, d: "old", listed, Deadline.never(), 0.0)
    refresher = Refresher(clock=lambda: now[0], spawn=False)
    job = Job(policy, lambda h, d: "new", listed)
    refresher.pause()
    refresher.resume(900.0, 900.0, [job])
    refresher.pause()
    refresher.resume(1000.0, 1000.0, [job])  # 100 s apart: values due by 1100 + 0 s
    now[0] = 1001.0
    assert refresher.work() == 0  # none comes due within 100 s of its fetch at 1000
    refresher.pause()
    refresher.resume(1200.0, 1200.0, [job])  # 200 s apart: due by 1400, every one
    now[0] = 1201.0
    assert refresher.work() == len(listed) and reasons.count("ahead") == len(listed)
    assert all(policy.cache.get(t.hash, now[0]) == ("new", 0.0) for t in listed)


# --- threads and sockets --------------------------------------------------------------------------


class Stall:
    """A fault that holds the request unanswered (as ``Hang``) and says when one came in."""

    def __init__(self) -> None:
        self.entered = threading.Event()

    def respond(self, exchange: Exchange) -> None:
        self.entered.set()
        exchange.stall()


PROPERTIES = "^/query/propertiesGeneral/"  # the simulator's legacy API
TORRENTS = 20


@dataclass
class Running:
    url: str
    clock: FakeClock
    stats: Stats
    refresher: Refresher
    proxy: FaultProxy
    sim_url: str
    password: str

    def scrape(self) -> str:
        reply = requests.get(self.url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "5"}, timeout=15)
        assert reply.status_code == 200
        assert "\nqbittorrent_up 1.0\n" in reply.text
        return reply.text


@contextmanager
def running_exporter(client_timeout: float) -> Iterator[Running]:
    """The exporter over a fault proxy in front of the simulator: the scrapes' clock fake, the
    network's real, the refresher's worker a real thread; every thread stopped at the end."""
    config = SimulatorConfig(torrents=TORRENTS, latency=False, churn=False, time_scale=0)
    with Simulator(config) as sim, FaultProxy(sim.url) as proxy:
        clock = FakeClock()
        stats = Stats()
        client = Client(proxy.url, "admin", config.password, timeout=client_timeout, stats=stats)
        refresher = Refresher(clock=clock)
        scraper = Scraper(client, stats, properties_max_age=MAX_AGE, clock=clock, refresher=refresher)
        server = serve(ExporterApp(Collectors(scraper, stats)), "127.0.0.1", 0)
        try:
            yield Running(
                f"http://127.0.0.1:{server.port}/metrics",
                clock,
                stats,
                refresher,
                proxy,
                sim.url,
                config.password,
            )
        finally:
            stopped = refresher.close(timeout=10)
            server.stop()
            client.close()
            assert stopped, "the refresher's worker did not stop"


def sample(text: str, family: str, value: str, label: str | None = "reason") -> float:
    """One sample of ``qbittorrent_exporter_<family>_total`` in an exposition (0 when absent):
    ``value`` is the label's value, or all the labels when ``label`` is None."""
    labels = value if label is None else f'{label}="{value}"'
    name = "torrent_properties_refreshes" if family == "properties_refreshes" else family
    found = re.search(rf"^qbittorrent_exporter_{name}_total{{{re.escape(labels)}}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def calls(stats: Stats, outcome: str = "ok") -> float:
    return stats.get("requests", "torrent_properties", outcome)


def refreshed_for_age(url: str, password: str) -> list[str]:
    """How many of the simulator's torrents only age (neither busy nor proved unchanged by the list):
    asked of it directly, as the oracle of what the refresher may fetch."""
    stats = Stats()
    client = Client(url, "admin", password, stats=stats)
    try:
        _, torrents = flavours.detect(client, stats, Deadline(5)).snapshot(Deadline(5))
    finally:
        client.close()
    busy, settled = properties.PLAN.busy, properties.PLAN.settled
    assert busy is not None and settled is not None
    return [t.hash for t in torrents if not busy(t) and settled(t) is None]


def test_against_the_simulator_the_calls_are_made_between_scrapes_and_the_next_scrape_makes_none() -> None:
    with running_exporter(client_timeout=5.0) as exp:
        ageing = len(refreshed_for_age(exp.sim_url, exp.password))
        assert 0 < ageing < TORRENTS  # some are busy or held in the simulator: those are the scrape's
        exp.scrape()  # at 1000: every torrent is new
        assert calls(exp.stats) == TORRENTS
        exp.clock.advance(140)
        exp.scrape()  # nothing aged yet (refresh ages ≥ 150 s); every value due by 1280
        # The worker runs once this scrape's answer is sent: its calls (only a hang waits it out).
        assert eventually(lambda: exp.stats.get("properties_refreshes", "ahead") == ageing)
        before = {reason: exp.stats.get("properties_refreshes", reason) for reason in REASONS}
        calls_before = calls(exp.stats)
        exp.clock.advance(140)
        text = exp.scrape()  # when expected: the values that only age are fresh, no aged call
        # read from its answer: the work after it may have begun by now
        made = {reason: sample(text, "properties_refreshes", reason) - before[reason] for reason in REASONS}
        assert made["aged"] == 0 and made["ahead"] == 0
        props = sample(text, "requests", 'endpoint="torrent_properties",outcome="ok"', label=None)
        assert props - calls_before == made["busy"] + made["changed"] + made["new"]


def test_a_background_call_that_hangs_holds_the_next_scrape_for_at_most_its_own_deadline() -> None:
    """qBittorrent never answers a background properties call: the call ends at its own deadline
    (the client's timeout, 30 s, would hold it far longer), the next scrape answers, and the worker
    stops."""
    with running_exporter(client_timeout=30.0) as exp:
        ageing = refreshed_for_age(exp.sim_url, exp.password)
        exp.scrape()
        exp.clock.advance(140)
        stall = Stall()
        # only the torrents whose values merely age: the next scrape calls the busy ones itself
        exp.proxy.set_fault(f"{PROPERTIES}({'|'.join(ageing)})$", stall)
        exp.scrape()  # no call for those in it; after it, the worker's first call hangs
        assert stall.entered.wait(10), "no background call was made"
        exp.proxy.clear()
        exp.clock.advance(140)
        text = exp.scrape()  # within the reply's 15 s; would wait 30 s for the client's own timeout
        assert "qbittorrent_exporter_scrape_cut_short 0.0" in text
        assert exp.refresher.close(timeout=10), "the hung call held the worker"
        assert calls(exp.stats, "timeout") == 1
