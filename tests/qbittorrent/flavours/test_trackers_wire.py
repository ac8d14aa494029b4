"""Both flavours' trackers call, from the real 4.0.4 and 4.5.2 recordings and from replies of other
versions made from them by qbittorrent-api.md sections 7.4 and 8.6 (4.1.0's strings, 5.0's codes 5
and 6, 5.2's ``updating`` flag and ``endpoints``)."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from responses import matchers

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.errors import BadResponse
from qbt_exporter.qbittorrent.flavours.legacy import LegacyFlavour
from qbt_exporter.qbittorrent.flavours.v2 import V2Flavour
from qbt_exporter.qbittorrent.model import TrackerEntry
from qbt_exporter.stats import Stats
from tests.qbittorrent.flavours.helpers import BASE, edited, invalid, raw
from tests.recording import add, load

ALPHA = "783473f45d4b3d9b4713f2f40a8e77a09bb8fd32"
BRAVO = "e2216c38a06fff7d21e78ef78197199d1349d291"
DELTA = "730fd4d0d325248eca2bda64ecd74892205ca20d"
UNKNOWN = "0000000000000000000000000000000000000000"
STALLED_UP = "3f0eda0d1e2c2fdffe4eaa1496bd18a8ceab1398"
PAUSED_DL = "a61c9f24cdd8d256cd9b05ddcd8b97c15e3cee93"
V2_TRACKERS = BASE + "/api/v2/torrents/trackers"
PASSKEY_URL = "https://tracker.example.org:443/a1b2c3d4e5f60718293a4b5c6d7e8f90/announce?passkey=a1b2c3d4e5f6"


def legacy(client: Client, stats: Stats) -> LegacyFlavour:
    f = LegacyFlavour(client, stats, "17")
    client.set_dialect(f.login_path, f.logout_path)
    return f


def v2(client: Client, stats: Stats) -> V2Flavour:
    f = V2Flavour(client, stats, "2.8.19")
    client.set_dialect(f.login_path, f.logout_path)
    return f


def legacy_reply(
    rsps: responses.RequestsMock,
    client: Client,
    stats: Stats,
    deadline: Deadline,
    torrent_hash: str,
    body: Any,
) -> list[TrackerEntry] | None:
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    recording = load("4.0.4", "51-propertiesTrackers-alpha")
    add(rsps, "GET", f"{BASE}/query/propertiesTrackers/{torrent_hash}", edited(recording, body))
    return legacy(client, stats).trackers(torrent_hash, deadline)


def v2_reply(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline, body: Any
) -> list[TrackerEntry] | None:
    add(rsps, "POST", BASE + "/api/v2/auth/login", load("4.5.2", "07-login-ok"))
    recording = load("4.5.2", "26-trackers-stalledUP")
    match = [matchers.query_param_matcher({"hash": STALLED_UP})]
    add(rsps, "GET", V2_TRACKERS, edited(recording, body), match=match)
    return v2(client, stats).trackers(STALLED_UP, deadline)


# --- legacy 4.0.4, as recorded ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "torrent_hash", "expected"),
    [
        (
            "alpha",
            ALPHA,
            [
                TrackerEntry(
                    "127.0.0.1",
                    "not_working",
                    'alpha.bin (http://127.0.0.1:6969/announce) (-1) Connection refused "" (2)',
                )
            ],
        ),
        ("bravo", BRAVO, [TrackerEntry("127.0.0.1", "not_contacted")] * 2),
        ("delta", DELTA, []),  # a torrent without trackers
    ],
)
def test_legacy_recorded_trackers(
    name: str,
    torrent_hash: str,
    expected: list[TrackerEntry],
    rsps: responses.RequestsMock,
    client: Client,
    stats: Stats,
    deadline: Deadline,
) -> None:
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    add(
        rsps,
        "GET",
        f"{BASE}/query/propertiesTrackers/{torrent_hash}",
        load("4.0.4", f"51-propertiesTrackers-{name}"),
    )
    assert legacy(client, stats).trackers(torrent_hash, deadline) == expected
    assert invalid(stats, "torrent_trackers") == 0


def test_legacy_unknown_hash_is_a_vanished_torrent(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    add(
        rsps,
        "GET",
        f"{BASE}/query/propertiesTrackers/{UNKNOWN}",
        load("4.0.4", "70-propertiesTrackers-unknown-hash"),
    )
    assert legacy(client, stats).trackers(UNKNOWN, deadline) is None


def test_legacy_translated_status_is_unknown_not_invalid(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    """A German WebUI sends "Arbeitet" for Working: not a fault, but not a status to guess at."""
    body = [{"msg": "", "num_peers": 3, "status": "Arbeitet", "url": "http://tracker.example.org/announce"}]
    got = legacy_reply(rsps, client, stats, deadline, ALPHA, body)
    assert got == [TrackerEntry("tracker.example.org", "unknown")]
    assert invalid(stats, "torrent_trackers") == 0


def test_only_the_host_of_a_passkey_url_is_kept(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    body = [{"msg": "", "num_peers": 0, "status": "Working", "url": PASSKEY_URL}]
    (entry,) = legacy_reply(rsps, client, stats, deadline, ALPHA, body) or []
    assert entry == TrackerEntry("tracker.example.org", "working")
    assert "a1b2c3" not in repr(entry)


# --- v2 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "torrent_hash", "expected"),
    [
        (
            "26-trackers-stalledUP",
            STALLED_UP,
            [TrackerEntry("127.0.0.1", "not_working", "Connection refused")],
        ),
        ("20-trackers-pausedDL", PAUSED_DL, [TrackerEntry("127.0.0.1", "not_contacted")]),
    ],
)
def test_v2_recorded_trackers_skip_the_pseudo_entries(
    name: str,
    torrent_hash: str,
    expected: list[TrackerEntry],
    rsps: responses.RequestsMock,
    client: Client,
    stats: Stats,
    deadline: Deadline,
) -> None:
    add(rsps, "POST", BASE + "/api/v2/auth/login", load("4.5.2", "07-login-ok"))
    match = [matchers.query_param_matcher({"hash": torrent_hash})]
    add(rsps, "GET", V2_TRACKERS, load("4.5.2", name), match=match)
    assert v2(client, stats).trackers(torrent_hash, deadline) == expected
    assert invalid(stats, "torrent_trackers") == 0


def test_v2_4_1_0_string_statuses(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    """4.1.0 - 4.1.4: the legacy keys and translated strings, no pseudo-entries."""
    body = [
        {"url": "http://a.example/announce", "status": "Working", "num_peers": 4, "msg": ""},
        {"url": "udp://b.example:80", "status": "Updating...", "num_peers": 0, "msg": ""},
        {"url": "http://c.example/x", "status": "Not working", "num_peers": 0, "msg": "Unregistered torrent"},
        {"url": "http://d.example/x", "status": "Not contacted yet", "num_peers": 0, "msg": ""},
    ]
    assert v2_reply(rsps, client, stats, deadline, body) == [
        TrackerEntry("a.example", "working"),
        TrackerEntry("b.example", "updating"),
        TrackerEntry("c.example", "not_working", "Unregistered torrent"),
        TrackerEntry("d.example", "not_contacted"),
    ]


def test_v2_5_0_error_and_unreachable_codes(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    recorded = load("4.5.2", "26-trackers-stalledUP").json()
    pseudo, real = recorded[:3], recorded[3]
    body = [
        *pseudo,
        {**real, "status": 5, "msg": "Torrent not registered with this tracker", "url": PASSKEY_URL},
        {**real, "status": 6, "msg": "Host not found (authoritative)", "url": "udp://open.example:1337"},
    ]
    assert v2_reply(rsps, client, stats, deadline, body) == [
        TrackerEntry("tracker.example.org", "error", "Torrent not registered with this tracker"),
        TrackerEntry("open.example", "unreachable", "Host not found (authoritative)"),
    ]


def test_v2_5_2_updating_flag_and_endpoint_messages(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    """5.2 sends no code 3: an announce in flight is ``updating``; a failure's text may be only in
    its ``endpoints``."""
    real = load("4.5.2", "26-trackers-stalledUP").json()[3]
    endpoint = {"name": "127.0.0.1:6881", "updating": False, "status": 5, "msg": "Unregistered torrent"}
    body = [
        {**real, "status": 1, "updating": True, "msg": "", "endpoints": []},
        {**real, "status": 5, "updating": False, "msg": "", "endpoints": [{"msg": ""}, endpoint]},
        {**real, "status": 2, "updating": True, "msg": "", "endpoints": []},
    ]
    assert v2_reply(rsps, client, stats, deadline, body) == [
        TrackerEntry("127.0.0.1", "updating"),
        TrackerEntry("127.0.0.1", "error", "Unregistered torrent"),
        TrackerEntry("127.0.0.1", "working"),
    ]


def test_v2_unknown_hash_is_a_vanished_torrent(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "POST", BASE + "/api/v2/auth/login", load("4.5.2", "07-login-ok"))
    add(rsps, "GET", V2_TRACKERS, raw(load("4.5.2", "26-trackers-stalledUP"), b"Not Found", status=404))
    assert v2(client, stats).trackers(STALLED_UP, deadline) is None


@pytest.mark.parametrize(
    "body",
    [
        {"url": "x"},
        "Working",
        [["http://a/announce", 2]],
        [{"status": 2, "msg": ""}],
        [{"url": 7, "status": 2}],
    ],
)
def test_a_reply_of_the_wrong_shape_fails_that_call(
    body: Any, rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    with pytest.raises(BadResponse):
        v2_reply(rsps, client, stats, deadline, body)


def test_unreadable_status_and_message_are_counted(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    body = [
        {"url": "http://a.example/", "status": 99, "msg": ""},
        {"url": "http://b.example/", "status": True, "msg": 5},
        {"url": "http://c.example/", "status": 2.0, "msg": None},
    ]
    assert v2_reply(rsps, client, stats, deadline, body) == [
        TrackerEntry("a.example", "unknown"),
        TrackerEntry("b.example", "unknown"),
        TrackerEntry("c.example", "working"),
    ]
    assert invalid(stats, "torrent_trackers") == 3
