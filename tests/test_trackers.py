"""Tracker health: a torrent's status from its trackers, the calls the pass makes, and the series the
trackers collector emits (host labels only, no series for a torrent whose trackers are unknown)."""

from __future__ import annotations

import logging

import pytest

from qbt_exporter.collectors import Collectors
from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.errors import HttpError
from qbt_exporter.qbittorrent.flavours.common import tracker_host
from qbt_exporter.qbittorrent.model import TrackerEntry
from qbt_exporter.scraper import Scraper
from qbt_exporter.stats import Stats
from qbt_exporter.trackers import TorrentTrackers, summarise
from tests.clocks import FakeClock
from tests.collectors.test_registry import by_collector, samples
from tests.fakes import FakeClient, FakeFlavour, torrent

PASSKEY_URL = "https://user:pw@tracker.example.org:8443/0123456789abcdef0123456789abcdef/announce?passkey=abc"


def entry(status: str, message: str = "", host: str = "t.example") -> TrackerEntry:
    return TrackerEntry(host, status, message)


@pytest.mark.parametrize(
    ("entries", "status"),
    [
        ([], "no_tracker"),
        ([entry("not_working", "Unregistered torrent"), entry("working")], "working"),
        ([entry("not_working", "Unregistered torrent"), entry("unreachable")], "unregistered"),
        ([entry("error", "Invalid passkey"), entry("not_working", "Connection refused")], "auth"),
        ([entry("not_working", "Connection refused"), entry("updating")], "unreachable"),
        ([entry("not_working", ""), entry("not_contacted")], "other"),
        ([entry("updating"), entry("not_contacted")], "updating"),
        ([entry("not_contacted")], "not_contacted"),
        # A status the exporter cannot read may be a working tracker: no failure is claimed.
        ([entry("unknown"), entry("not_working", "Unregistered torrent")], "unknown"),
    ],
)
def test_a_torrents_status_is_the_best_of_its_trackers(entries: list[TrackerEntry], status: str) -> None:
    assert summarise(entries).status == status


def test_a_host_used_twice_counts_once_with_its_better_status() -> None:
    summary = summarise(
        [
            entry("not_working", "timed out", "a.example"),
            entry("working", "", "a.example"),
            entry("updating", "", ""),
        ]
    )
    assert summary == TorrentTrackers("working", (("a.example", "working"),))
    assert TorrentTrackers("unknown").working is None and TorrentTrackers("no_tracker").working == 0.0


def make(flavour: FakeFlavour, clock: FakeClock | None = None) -> Collectors:
    stats = Stats()
    scraper = Scraper(FakeClient(), stats, detect=lambda *_: flavour, clock=clock or FakeClock())  # type: ignore[arg-type]
    return Collectors(scraper, stats)


def test_series_per_torrent_and_per_host_with_every_status_for_each_host() -> None:
    one, two, three, bare = torrent(1), torrent(2), torrent(3), torrent(4)
    flavour = FakeFlavour(
        torrents=[one, two, three, bare],
        trackers_of={
            one.hash: [TrackerEntry(tracker_host(PASSKEY_URL), "not_working", "Unregistered torrent")],
            two.hash: [
                TrackerEntry("tracker.example.org", "working"),
                TrackerEntry("b.example", "unreachable"),
            ],
            three.hash: [TrackerEntry("b.example", "unknown")],
            bare.hash: [],
        },
    )
    got = samples(make(flavour).collect_within(Deadline(5)))
    assert got["qbittorrent_torrent_tracker_working"] == {
        (("hash", one.hash),): 0.0,
        (("hash", two.hash),): 1.0,
        (("hash", bare.hash),): 0.0,  # no tracker: none works; three's is unknown: no series
    }
    assert {dict(k)["hash"]: dict(k)["status"] for k in got["qbittorrent_torrent_tracker_status"]} == {
        one.hash: "unregistered",
        two.hash: "working",
        three.hash: "unknown",
        bare.hash: "no_tracker",
    }
    hosts = got["qbittorrent_torrents_by_tracker_status"]
    assert {dict(k)["tracker"] for k in hosts} == {"tracker.example.org", "b.example"}
    assert len(hosts) == 2 * 8  # every status, 0 included, for each host
    assert hosts[(("status", "unregistered"), ("tracker", "tracker.example.org"))] == 1.0
    assert hosts[(("status", "working"), ("tracker", "tracker.example.org"))] == 1.0
    assert hosts[(("status", "unreachable"), ("tracker", "b.example"))] == 1.0
    assert hosts[(("status", "unknown"), ("tracker", "b.example"))] == 1.0
    assert by_collector(got, "qbittorrent_exporter_collector_success")["trackers"] == 1.0


def test_no_label_value_anywhere_carries_the_announce_urls_secrets() -> None:
    one = torrent(1, tracker=tracker_host(PASSKEY_URL))
    flavour = FakeFlavour(
        torrents=[one], trackers_of={one.hash: [TrackerEntry(tracker_host(PASSKEY_URL), "working")]}
    )
    got = samples(make(flavour).collect_within(Deadline(5)))
    values = {value for series in got.values() for labels in series for _, value in labels}
    assert "tracker.example.org" in values
    assert not [v for v in values if "abc" in v or "0123456789abcdef" in v or "pw" in v or "/" in v]


class FailingTrackers(FakeFlavour):
    def trackers(self, torrent_hash: str, deadline: Deadline) -> list[TrackerEntry] | None:
        self.tracker_calls.append(torrent_hash)
        if torrent_hash == torrent(1).hash:
            raise HttpError("500 Internal Server Error")
        return [TrackerEntry("t.example", "working")]


def test_a_failing_trackers_call_costs_that_torrents_tracker_series_and_the_collectors_success() -> None:
    flavour = FailingTrackers(torrents=[torrent(1), torrent(2)])
    got = samples(make(flavour).collect_within(Deadline(5)))
    assert got["qbittorrent_up"] == {(): 1.0}
    success = by_collector(got, "qbittorrent_exporter_collector_success")
    assert success["trackers"] == 0.0 and success["torrents"] == 1.0 and success["torrent_properties"] == 1.0
    assert got["qbittorrent_torrent_tracker_working"] == {(("hash", torrent(2).hash),): 1.0}
    assert len(got["qbittorrent_torrent_info"]) == 2


def test_calls_are_made_when_new_when_the_tracker_field_changes_and_when_aged() -> None:
    clock = FakeClock()
    one, two = torrent(1, tracker="t.example"), torrent(2, tracker="t.example")
    flavour = FakeFlavour(torrents=[one, two], clock=clock)
    coll = make(flavour, clock)
    coll.collect_within(Deadline(5, clock))
    assert flavour.tracker_calls == [one.hash, two.hash]
    flavour.tracker_calls.clear()
    clock.advance(60)
    coll.collect_within(Deadline(5, clock))
    assert flavour.tracker_calls == []  # nothing changed, nothing aged: no call
    flavour.torrents = [one._replace(tracker=""), two]  # qBittorrent: no tracker works now
    coll.collect_within(Deadline(5, clock))
    assert flavour.tracker_calls == [one.hash]
    flavour.tracker_calls.clear()
    clock.advance(1800)  # the default max age: every reading is due again
    got = samples(coll.collect_within(Deadline(5, clock)))
    assert sorted(flavour.tracker_calls) == sorted([one.hash, two.hash])
    assert coll.stats.get("trackers_refreshes", "changed") == 1
    assert coll.stats.get("trackers_refreshes", "aged") == 2
    assert got["qbittorrent_exporter_torrent_trackers_skipped"] == {(): 0.0}


def test_a_failing_torrents_messages_are_logged_at_debug_only_without_url_or_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    one = torrent(1)
    message = f'n ({PASSKEY_URL}) (200) tracker sent a failure message "Unregistered torrent" (2)'
    flavour = FakeFlavour(
        torrents=[one], trackers_of={one.hash: [TrackerEntry("tracker.example.org", "not_working", message)]}
    )
    with caplog.at_level(logging.INFO, logger="qbt_exporter.trackers"):
        make(flavour).collect_within(Deadline(5))
    assert not caplog.records  # nothing above debug
    flavour.torrents = [torrent(2)]
    flavour.trackers_of = {torrent(2).hash: [TrackerEntry("tracker.example.org", "not_working", message)]}
    with caplog.at_level(logging.DEBUG, logger="qbt_exporter.trackers"):
        make(flavour).collect_within(Deadline(5))
    (record,) = [r for r in caplog.records if r.name == "qbt_exporter.trackers"]
    text = record.getMessage()
    assert "unregistered" in text and "Unregistered torrent" in text and "tracker.example.org" in text
    assert "passkey=abc" not in text and "0123456789abcdef" not in text and "pw@" not in text


def test_moving_between_running_states_makes_no_call_and_starting_or_stopping_does() -> None:
    """Peers coming and going (stalledUP <-> uploading, completion) is not something a torrent's
    trackers see; being stopped, queued or checked is."""
    clock = FakeClock()
    one, two = torrent(1, "stalledUP", tracker="t.example"), torrent(2, "downloading", tracker="t.example")
    flavour = FakeFlavour(torrents=[one, two], clock=clock)
    coll = make(flavour, clock)
    coll.collect_within(Deadline(5, clock))
    flavour.tracker_calls.clear()
    for states in (("uploading", "stalledDL"), ("stalledUP", "uploading"), ("forcedUP", "metaDL")):
        clock.advance(5)
        flavour.torrents = [
            one._replace(state=states[0]),
            two._replace(state=states[1]),
        ]
        coll.collect_within(Deadline(5, clock))
        assert flavour.tracker_calls == []
    clock.advance(5)
    flavour.torrents = [
        one._replace(state="stoppedUP"),
        two._replace(state="queuedDL"),
    ]
    coll.collect_within(Deadline(5, clock))
    assert flavour.tracker_calls == [one.hash, two.hash]
    assert coll.stats.get("trackers_refreshes", "changed") == 2
