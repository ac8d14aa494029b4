"""Tracker health against each real qBittorrent (4.5.2 and 5.1): a loopback tracker that answers every
announce with ``d14:failure reason20:Unregistered torrente``, a torrent announcing to it, one
announcing to a closed loopback port, and the healthy rest of the mix announcing to a working fake
tracker. Nothing leaves the machine: every tracker is on 127.0.0.1, and the harness's qBittorrent
profiles have DHT, PeX, LSD and UPnP off.
"""

from __future__ import annotations

import pytest

from harness.exporter import Exporter
from harness.processes import wait_until
from harness.torrents import PASSKEY
from tests.e2e.harness import Exposition, TorrentWorld, parse_exposition

pytestmark = pytest.mark.e2e


def tracker_scrape(exporter: Exporter, world: TorrentWorld) -> Exposition:
    """A scrape in which every torrent of the mix has its tracker status (the first scrapes may still
    be fetching them)."""

    def complete() -> Exposition | None:
        reply = exporter.scrape()
        assert reply.status_code == 200, reply.text[:500]
        got = parse_exposition(reply.text)
        statuses = got.named("qbittorrent_torrent_tracker_status")
        return got if {s.labels["hash"] for s in statuses} >= set(world.hashes.values()) else None

    return wait_until(complete, 30, what="a tracker status for every torrent")


def test_unregistered_and_unreachable_torrents_are_told_apart(
    exporter: Exporter, world: TorrentWorld
) -> None:
    scrape = tracker_scrape(exporter, world)
    status = {
        s.labels["hash"]: s.labels["status"] for s in scrape.named("qbittorrent_torrent_tracker_status")
    }
    working = scrape.by_hash("qbittorrent_torrent_tracker_working")
    hashes = world.hashes
    assert status[hashes["unregistered"]] == "unregistered", world.qbt.api.trackers(hashes["unregistered"])
    assert status[hashes["unreachable"]] == "unreachable", world.qbt.api.trackers(hashes["unreachable"])
    assert status[hashes["seeding"]] == "working"
    assert working[hashes["unregistered"]] == 0 and working[hashes["unreachable"]] == 0
    assert working[hashes["seeding"]] == 1
    # a paused torrent has not announced: not contacted, not a failure
    assert status[hashes["paused_up"]] == "not_contacted"
    assert world.rejecting.announces >= 1  # qBittorrent really asked the rejecting tracker


def test_per_host_counts_carry_the_host_only(exporter: Exporter, world: TorrentWorld) -> None:
    scrape = tracker_scrape(exporter, world)
    hosts = scrape.named("qbittorrent_torrents_by_tracker_status")
    assert {s.labels["tracker"] for s in hosts} == {"127.0.0.1"}  # every tracker here is on loopback
    counts = {s.labels["status"]: s.value for s in hosts}
    assert counts["unregistered"] == 1 and counts["unreachable"] >= 1 and counts["working"] >= 1
    assert PASSKEY not in scrape.text and "announce" not in scrape.text
    assert f":{world.rejecting.port}" not in scrape.text
    # the passkey really is in what qBittorrent reports for the rejected torrent
    urls = [t["url"] for t in world.qbt.api.trackers(world.hashes["unregistered"])]
    assert any(PASSKEY in url for url in urls)
