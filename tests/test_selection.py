"""--torrents.max: which torrents the cap keeps (a documented, stable rule) and how many it leaves out."""

from __future__ import annotations

import random

from qbt_exporter.filters import Filters, parse
from qbt_exporter.selection import Selection, relevance
from tests.fakes import torrent

IDLE_OLD = torrent(1, "stalledUP", last_activity=100.0, added=10.0)
IDLE_RECENT = torrent(2, "stalledUP", last_activity=900.0, added=20.0)
DOWNLOADING = torrent(3, "downloading", last_activity=50.0, added=30.0)
UPLOADING_STALLED = torrent(
    4, "stalledDL", upload_speed=1.0, last_activity=60.0
)  # active, as qBittorrent says
SEEDING_WITH_SPEED = torrent(5, "stalledUP", upload_speed=2.0, last_activity=70.0)  # data moving
NEVER_ACTIVE_NEW = torrent(6, "stoppedDL", last_activity=None, added=500.0)
NEVER_ACTIVE_OLD = torrent(7, "stoppedDL", last_activity=None, added=None)
TWIN_A = torrent(8, "stalledUP", last_activity=900.0, added=20.0)  # ties IDLE_RECENT: hash decides
LIBRARY = [IDLE_OLD, IDLE_RECENT, DOWNLOADING, UPLOADING_STALLED, SEEDING_WITH_SPEED, NEVER_ACTIVE_NEW,
           NEVER_ACTIVE_OLD, TWIN_A]  # fmt: skip


def test_the_cap_keeps_active_then_recently_active_then_recently_added_then_by_hash() -> None:
    ranked = sorted(LIBRARY, key=relevance)
    assert ranked == [
        SEEDING_WITH_SPEED,  # active ones first, then by last activity, newest first
        UPLOADING_STALLED,
        DOWNLOADING,
        IDLE_RECENT,  # idle: most recently active first; a tie goes to the lower hash
        TWIN_A,
        IDLE_OLD,
        NEVER_ACTIVE_NEW,  # never active: most recently added first, unknown last
        NEVER_ACTIVE_OLD,
    ]
    for n in range(len(LIBRARY) + 2):
        kept, report = Selection(max=n or None).choose(LIBRARY)
        expected = ranked[:n] if n else ranked
        assert kept == [t for t in LIBRARY if t in expected]  # the list's own order, not the rank's
        assert report.capped == (max(0, len(LIBRARY) - n) if n else 0)
        assert report.filtered_out == 0


def test_the_choice_does_not_depend_on_the_order_qbittorrent_lists_in() -> None:
    kept, _ = Selection(max=4).choose(LIBRARY)
    shuffled = list(LIBRARY)
    random.Random(7).shuffle(shuffled)
    again, _ = Selection(max=4).choose(shuffled)
    assert {t.hash for t in again} == {t.hash for t in kept}


def test_filters_come_first_and_the_cap_counts_only_what_passed_them() -> None:
    selection = Selection(Filters(exclude=parse("status=stopped")), max=2)
    kept, report = selection.choose([*LIBRARY, torrent(9, hash="")])  # no hash: never counted
    assert [t.hash for t in kept] == [UPLOADING_STALLED.hash, SEEDING_WITH_SPEED.hash]
    assert (report.filtered_out, report.capped) == (2, 4)
    assert (report.include, report.exclude, report.max) == ("", "status=stopped", 2)
