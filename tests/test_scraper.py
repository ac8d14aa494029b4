import threading

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.errors import LoginRejected, NotFound, Unreachable
from qbt_exporter.qbittorrent.model import TorrentProperties
from qbt_exporter.scraper import Scraper, ScrapeResult
from qbt_exporter.stats import Stats
from tests.counters import counter
from tests.fakes import FakeClient, FakeFlavour, torrent


class Detections:
    """A detector that hands out the given flavour and counts how often it was asked."""

    def __init__(self, flavour: FakeFlavour) -> None:
        self.flavour = flavour
        self.calls = 0

    def __call__(self, client, stats, deadline):  # type: ignore[no-untyped-def]
        self.calls += 1
        return self.flavour


def make(flavour: FakeFlavour, **kwargs: object) -> tuple[Scraper, FakeClient, Detections, Stats]:
    client, stats, detect = FakeClient(), Stats(), Detections(flavour)
    kwargs.setdefault("clock", flavour.clock)  # property calls take time on this clock, not by sleeping
    scraper = Scraper(client, stats, detect=detect, **kwargs)  # type: ignore[arg-type]
    return scraper, client, detect, stats


def test_snapshot_is_completed_from_properties() -> None:
    flavour = FakeFlavour(torrents=[torrent(1), torrent(2)])
    scraper, _, detect, stats = make(flavour)
    result = scraper.scrape(Deadline(5))
    assert result.snapshot is not None and not result.cut_short
    assert result.snapshot.server.version == "v4.0.4"
    assert [(t.wasted, t.seeding_seconds, t.connections) for t in result.per_torrent()] == [(1, 2, 3)] * 2
    # the snapshot keeps the list as qBittorrent listed it, for the totals
    assert [(t.wasted, t.seeding_seconds) for t in result.snapshot.torrents] == [(None, None)] * 2
    assert counter(stats, "qbittorrent_exporter_torrent_properties_refreshes_total", reason="new") == 2
    # The second scrape needs no properties and no new detection.
    scraper.scrape(Deadline(5))
    assert len(flavour.property_calls) == 2 and detect.calls == 1


def test_vanished_torrent_is_dropped_from_the_output() -> None:
    gone = torrent(2)
    flavour = FakeFlavour(torrents=[torrent(1), gone], props={gone.hash: None})
    scraper, *_ = make(flavour)
    result = scraper.scrape(Deadline(5))
    assert result.snapshot is not None
    assert [t.hash for t in result.per_torrent()] == [torrent(1).hash]


def test_property_calls_stop_at_the_deadline_and_say_so() -> None:
    flavour = FakeFlavour(torrents=[torrent(n) for n in range(1, 51)], property_delay=0.01)
    scraper, *_ = make(flavour)
    result = scraper.scrape(Deadline(0.1, flavour.clock))
    assert result.snapshot is not None and result.cut_short
    assert 0 < len(flavour.property_calls) < 50
    assert 9 <= len(flavour.property_calls) <= 11  # 0.1 s of 10 ms calls (float rounding aside)
    assert result.properties.skipped == 50 - len(flavour.property_calls)
    # Torrents without properties yet are still exported, without the property-only values.
    assert len(result.per_torrent()) == 50
    assert sum(t.wasted is None for t in result.per_torrent()) == result.properties.skipped
    # The next scrapes pick up where this one stopped instead of starting over.
    for _ in range(20):
        if not scraper.scrape(Deadline(0.1, flavour.clock)).cut_short:
            break
    assert sorted(flavour.property_calls) == sorted(t.hash for t in flavour.torrents)


def test_failure_gives_no_snapshot_and_redetects_next_time() -> None:
    flavour = FakeFlavour(torrents=[torrent(1)])
    scraper, _, detect, _ = make(flavour)
    assert scraper.scrape(Deadline(5)).snapshot is not None
    flavour.fail = NotFound("gone", endpoint="torrents")
    failed = scraper.scrape(Deadline(5))
    assert failed.snapshot is None and failed.error
    flavour.fail = None
    assert scraper.scrape(Deadline(5)).snapshot is not None
    assert detect.calls == 2


def test_rejected_login_does_not_force_redetection() -> None:
    flavour = FakeFlavour(torrents=[torrent(1)])
    scraper, _, detect, _ = make(flavour)
    scraper.scrape(Deadline(5))
    flavour.fail = LoginRejected("wrong password")
    assert scraper.scrape(Deadline(5)).snapshot is None
    assert detect.calls == 1


def test_new_login_means_restart_so_version_is_read_again() -> None:
    flavour = FakeFlavour(torrents=[torrent(1)])
    scraper, client, detect, _ = make(flavour)
    scraper.scrape(Deadline(5))
    client.session_generation += 1  # qBittorrent forgot our session and the client logged in again
    scraper.scrape(Deadline(5))
    assert detect.calls == 2


def test_failure_is_logged_once_per_cause(caplog) -> None:  # type: ignore[no-untyped-def]
    flavour = FakeFlavour(fail=Unreachable("connection refused"))
    scraper, *_ = make(flavour)
    for _ in range(5):
        scraper.scrape(Deadline(5))
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "connection refused" in warnings[0].getMessage()


class ArrivalDeadline(Deadline):
    """A deadline that tells the test when a scrape has come to wait for the running one: joining
    callers read remaining() once, just before they wait, so the test needs no sleep to know."""

    def __init__(self, arrived: threading.Semaphore) -> None:
        super().__init__(5)
        self._arrived = arrived

    def remaining(self) -> float:
        self._arrived.release()
        return super().remaining()


def test_concurrent_scrapes_share_one_round_of_calls() -> None:
    flavour = FakeFlavour(torrents=[torrent(1)], hold=threading.Event())
    scraper, *_ = make(flavour, properties=False)
    results: list[ScrapeResult] = []
    leader = threading.Thread(target=lambda: results.append(scraper.scrape(Deadline(5))))
    leader.start()
    assert flavour.entered.wait(30)  # the first scrape is inside its list call
    arrived = threading.Semaphore(0)
    followers = [
        threading.Thread(target=lambda: results.append(scraper.scrape(ArrivalDeadline(arrived))))
        for _ in range(3)
    ]
    for thread in followers:
        thread.start()
    for _ in followers:
        assert arrived.acquire(timeout=30)  # every follower is waiting for the running scrape
    assert flavour.hold is not None
    flavour.hold.set()
    for thread in [leader, *followers]:
        thread.join()
    assert flavour.snapshot_calls == 1
    assert len(results) == 4 and all(r is results[0] for r in results)


def test_properties_off_makes_no_property_calls() -> None:
    flavour = FakeFlavour(torrents=[torrent(1)], props={torrent(1).hash: TorrentProperties(wasted=9)})
    scraper, *_ = make(flavour, properties=False)
    result = scraper.scrape(Deadline(5))
    assert flavour.property_calls == [] and result.snapshot is not None
    assert result.per_torrent()[0].wasted is None


def test_refreshes_of_busy_torrents_stop_at_the_refresh_budget_but_new_ones_do_not() -> None:
    busy = [torrent(n, "uploading", upload_speed=10.0) for n in range(1, 41)]
    flavour = FakeFlavour(torrents=busy, property_delay=0.01)
    scraper, *_ = make(flavour)
    first = scraper.scrape(Deadline(10))
    assert len(flavour.property_calls) == 40 and first.properties.skipped == 0  # all new: no budget
    flavour.property_calls.clear()
    second = scraper.scrape(Deadline(10))
    # REFRESH_MIN_SECONDS (0.2 s) of 10 ms calls: 20 of the 40 busy torrents (float rounding aside).
    assert 20 <= len(flavour.property_calls) <= 21
    assert second.properties.skipped == 40 - len(flavour.property_calls)
    assert not second.cut_short  # the budget is not the deadline
    refreshed_first = set(flavour.property_calls)
    flavour.property_calls.clear()
    scraper.scrape(Deadline(10))
    # The next scrape starts with the ones that waited longest.
    assert not refreshed_first & set(flavour.property_calls[: 40 - len(refreshed_first)])


def test_the_first_login_is_not_taken_for_a_restart() -> None:
    """The exporter logs in lazily during its first list call; that must not trigger a second detection."""
    client = FakeClient(session_generation=0)

    class LoggingIn(FakeFlavour):
        def snapshot(self, deadline):  # type: ignore[no-untyped-def]
            if client.session_generation == 0:
                client.session_generation = 1
            return super().snapshot(deadline)

    detect = Detections(LoggingIn(torrents=[torrent(1)]))
    scraper = Scraper(client, Stats(), detect=detect)  # type: ignore[arg-type]
    scraper.scrape(Deadline(5))
    scraper.scrape(Deadline(5))
    assert detect.calls == 1
    client.session_generation = 2  # now a real re-login: qBittorrent forgot the session
    scraper.scrape(Deadline(5))
    assert detect.calls == 2
