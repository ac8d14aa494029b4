"""The shared per-torrent policy with a plan other than the properties one: its own change key, no
busy refresh, values served by hash."""

from qbt_exporter.deadline import Deadline
from qbt_exporter.pertorrent import PassReport, PerTorrentPolicy, Plan
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
