"""The shared per-torrent policy with a plan other than the properties one: its own change key, no
busy refresh, values served by hash."""

from qbt_exporter.deadline import Deadline
from qbt_exporter.pertorrent import PassReport, PerTorrentPolicy, Plan, refresh_pace
from qbt_exporter.qbittorrent.model import Torrent
from tests.fakes import torrent

PLAN = Plan(wants=lambda t: t.identified, key=lambda t: (t.state, t.tracker))


class Calls:
    def __init__(self) -> None:
        self.hashes: list[str] = []
        self.reasons: list[str] = []

    def fetch(self, torrent_hash: str, deadline: Deadline) -> str | None:
        self.hashes.append(torrent_hash)
        return "value of " + torrent_hash


def test_a_change_of_the_plans_key_makes_a_torrent_due_and_busy_does_not_without_a_busy_rule() -> None:
    calls = Calls()
    now = [0.0]
    policy: PerTorrentPolicy[str] = PerTorrentPolicy(600, PLAN, calls.reasons.append, lambda: now[0])
    quiet, moved, busy = torrent(1), torrent(2), torrent(3, "uploading", upload_speed=5.0)
    first = policy.run(calls.fetch, [quiet, moved, busy], Deadline.never(), 0.0)
    assert calls.reasons == ["new"] * 3 and first.values[quiet.hash] == "value of " + quiet.hash
    calls.hashes.clear()
    calls.reasons.clear()
    now[0] = 10.0
    moved_host = moved._replace(tracker="other.example")
    second = policy.run(calls.fetch, [quiet, moved_host, busy], Deadline.never(), 0.0)
    assert calls.hashes == [moved.hash] and calls.reasons == ["changed"]
    assert second.report == PassReport(skipped=0, max_age=10.0)


def test_values_are_served_by_hash_only_for_wanted_torrents_and_vanished_ones_are_reported() -> None:
    unidentified = Torrent(hash="", name="", state="stalledUP")
    gone, kept = torrent(1), torrent(2)

    def fetch(torrent_hash: str, deadline: Deadline) -> str | None:
        return None if torrent_hash == gone.hash else "v"

    policy: PerTorrentPolicy[str] = PerTorrentPolicy(600, PLAN, lambda reason: None, lambda: 0.0)
    done = policy.run(fetch, [unidentified, gone, kept], Deadline.never(), 0.0)
    assert done.values == {kept.hash: "v"} and done.vanished == {gone.hash}


def test_refresh_pace_is_what_keeps_each_value_within_the_shortest_refresh_age() -> None:
    assert refresh_pace(0, 60, 300) == 0 and refresh_pace(10_000, 0, 300) == 0
    assert refresh_pace(10_000, 60, 300) == 6000  # 10,000 values within 150 s each, and half again
    assert refresh_pace(10_000, 5, 300) == 500
    assert refresh_pace(100, 3600, 300) == 300  # a long gap counts as one max age, not twelve


def _spread(n: int) -> str:
    """A hash whose first eight digits (which set its refresh age) spread over the whole range."""
    return f"{(n * 2654435761) % 2**32:08x}{n:032x}"


def test_a_library_larger_than_the_time_budget_keeps_every_value_within_max_age() -> None:
    """1,000 torrents scraped once a minute, each call costing 10 ms: the time budget (0.2 s) fits
    20 refreshes a scrape, far fewer than 1,000 values within 5 minutes need. With the budget alone
    most values expired and their series went absent for good; the pace keeps all of them, and no
    scrape makes more calls than the pace and the budget allow together."""
    now = [0.0]

    def fetch(torrent_hash: str, deadline: Deadline) -> str:
        now[0] += 0.01
        return "v"

    reasons: list[str] = []
    policy: PerTorrentPolicy[str] = PerTorrentPolicy(300, PLAN, reasons.append, lambda: now[0])
    torrents = [torrent(n, hash=_spread(n)) for n in range(1, 1001)]
    policy.run(fetch, torrents, Deadline.never(), 0.0)
    served, calls = [], []
    for minute in range(1, 121):
        now[0] = minute * 60.0
        before = len(reasons)
        served.append(len(policy.run(fetch, torrents, Deadline.never(), 0.0).values))
        calls.append(len(reasons) - before)
    assert min(served) == 1000, served
    assert max(calls) <= refresh_pace(1000, 60, 300) + 20 + 1


def test_past_the_time_budget_only_values_at_their_refresh_age_are_refreshed() -> None:
    """A busy torrent refreshed recently waits for the next scrape once the budget is spent; an
    idle one whose value reached its refresh age is refreshed anyway (else it would expire)."""
    now = [0.0]

    def fetch(torrent_hash: str, deadline: Deadline) -> str:
        now[0] += 1.0  # every call spends the whole 0.2 s budget
        return "v"

    hashes: list[str] = []
    plan = Plan(wants=PLAN.wants, key=PLAN.key, busy=lambda t: (t.upload_speed or 0) > 0)
    policy: PerTorrentPolicy[str] = PerTorrentPolicy(20, plan, lambda reason: None, lambda: now[0])
    busy1 = torrent(1, "uploading", upload_speed=5.0, hash="f" * 40)  # refresh age 20 s
    busy2 = torrent(2, "uploading", upload_speed=5.0, hash="f" * 8 + "2" * 32)
    idle = torrent(3, hash="0" * 8 + "3" * 32)  # refresh age 10 s
    policy.run(fetch, [busy1, busy2, idle], Deadline.never(), 0.0)  # known at 1, 2 and 3 s
    now[0] = 14.0

    def tracked(torrent_hash: str, deadline: Deadline) -> str:
        hashes.append(torrent_hash)
        return fetch(torrent_hash, deadline)

    done = policy.run(tracked, [busy1, busy2, idle], Deadline.never(), 0.0)
    assert hashes == [busy1.hash, idle.hash]
    assert done.report.skipped == 1 and set(done.values) == {busy1.hash, busy2.hash, idle.hash}
