"""The v2 flavour against the real 4.5.2 recordings and replies of 4.1.x, 4.6 and 5.2 derived from
them by qbittorrent-api.md section 8."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from responses import matchers

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.errors import BadResponse
from qbt_exporter.qbittorrent.flavours.v2 import V2Flavour
from qbt_exporter.qbittorrent.model import ServerInfo, Torrent, TorrentProperties, Transfer
from qbt_exporter.stats import Stats
from tests.qbittorrent.flavours.helpers import BASE, edited, invalid, raw
from tests.recording import add, load

V = "4.5.2"
MAINDATA = BASE + "/api/v2/sync/maindata"
PROPERTIES = BASE + "/api/v2/torrents/properties"
STALLED_UP = "3f0eda0d1e2c2fdffe4eaa1496bd18a8ceab1398"
RECORDED_PROPERTIES = {
    "19-properties-pausedDL": "a61c9f24cdd8d256cd9b05ddcd8b97c15e3cee93",
    "21-properties-pausedUP": "3eff00da74e5a701415541f610b03ac100c193ca",
    "23-properties-missingFiles": "08332ea3da1537132ff66126531d1d0522f899f7",
    "25-properties-stalledUP": STALLED_UP,
    "27-properties-stalledDL": "8f1c76c17f9ac938918aad717c5f89ae07b0385a",
}


def maindata() -> dict[str, Any]:
    return load(V, "14-sync-maindata-rid0").json()


def serve(rsps: responses.RequestsMock, data: Any = None) -> None:
    """Login + maindata (rid=0 required), from the 4.5.2 recordings unless replaced."""
    add(rsps, "POST", BASE + "/api/v2/auth/login", load(V, "07-login-ok"))
    rec = load(V, "14-sync-maindata-rid0")
    reply = rec if data is None else edited(rec, data)
    add(rsps, "GET", MAINDATA, reply, match=[matchers.query_param_matcher({"rid": "0"})])


def flavour(client: Client, stats: Stats) -> V2Flavour:
    f = V2Flavour(client, stats, "")
    client.set_dialect(f.login_path, f.logout_path)
    return f


def test_server_info(rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline) -> None:
    add(rsps, "POST", BASE + "/api/v2/auth/login", load(V, "07-login-ok"))
    add(rsps, "GET", BASE + "/api/v2/app/version", load(V, "08-app-version"))
    add(rsps, "GET", BASE + "/api/v2/app/webapiVersion", load(V, "09-webapiVersion"))
    f = flavour(client, stats)
    assert f.server_info(deadline) == ServerInfo("v4.5.2", "v2", "2.8.19")
    assert f.api_version == "2.8.19"


def test_server_info_rejects_an_html_page(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "POST", BASE + "/api/v2/auth/login", load(V, "07-login-ok"))
    add(rsps, "GET", BASE + "/api/v2/app/version", raw(load(V, "08-app-version"), b"<html>login</html>"))
    with pytest.raises(BadResponse):
        flavour(client, stats).server_info(deadline)


def test_transfer_from_server_state(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    serve(rsps)
    transfer, _ = flavour(client, stats).snapshot(deadline)
    state = maindata()["server_state"]
    assert transfer == Transfer(
        connection_status="firewalled",
        dht_nodes=state["dht_nodes"],
        download_speed=state["dl_info_speed"],
        upload_speed=state["up_info_speed"],
        download_limit=state["dl_rate_limit"],
        upload_limit=state["up_rate_limit"],
        session_downloaded=state["dl_info_data"],
        session_uploaded=state["up_info_data"],
        alltime_downloaded=state["alltime_dl"],
        alltime_uploaded=state["alltime_ul"],
        peer_connections=state["total_peer_connections"],
        free_disk_space=None,  # the recording has -1: the disk checker had not run yet
        alt_speed_limits=False,
    )
    assert len(rsps.calls) == 2  # login + one maindata call for everything


def test_free_space_and_alt_speed(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    data = maindata()
    data["server_state"].update(free_space_on_disk=987654321098, use_alt_speed_limits=True)
    serve(rsps, data)
    transfer, _ = flavour(client, stats).snapshot(deadline)
    assert transfer.free_disk_space == 987654321098 and transfer.alt_speed_limits is True


def test_every_field_of_one_torrent(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    serve(rsps)
    _, torrents = flavour(client, stats).snapshot(deadline)
    wire = maindata()["torrents"][STALLED_UP]
    t = next(t for t in torrents if t.hash == STALLED_UP)
    assert t == Torrent(
        hash=STALLED_UP,
        name="t00001-Ünïcødé файл 日本語",
        state="stalledUP",
        category="linux-isos",
        tags="public",
        tracker="",
        size=wire["size"],
        amount_left=wire["amount_left"],
        progress=wire["progress"],
        download_speed=wire["dlspeed"],
        upload_speed=wire["upspeed"],
        eta=None,  # 8640000
        ratio=wire["ratio"],
        seeds=wire["num_seeds"],
        leechers=wire["num_leechs"],
        swarm_seeds=wire["num_complete"],
        swarm_leechers=wire["num_incomplete"],
        added=wire["added_on"],
        completed=wire["completion_on"],
        last_activity=wire["last_activity"],
        downloaded=wire["downloaded"],
        uploaded=wire["uploaded"],
        wasted=None,  # total_wasted is in the list from 5.2 only
        active_seconds=wire["time_active"],
        seeding_seconds=wire["seeding_time"],
        connections=None,  # connections_count is in the list from 5.2 only
    )
    assert (t.size, t.progress, t.seeding_seconds, t.completed) == (32768, 1, 1, 1795714650)
    assert invalid(stats, "maindata") == 0


def test_all_torrents_match_torrents_info(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    """maindata's torrents (keyed by hash) carry what torrents/info lists, recorded the same minute."""
    serve(rsps)
    _, torrents = flavour(client, stats).snapshot(deadline)
    listing = {obj["hash"]: obj for obj in load(V, "11-torrents-info").json()}
    assert {t.hash for t in torrents} == set(listing) and len(torrents) == 12
    for t in torrents:
        wire = listing[t.hash]
        assert t.name == wire["name"]
        assert t.size == wire["size"] and t.amount_left == wire["amount_left"]
        assert t.category == wire["category"]
        assert t.tags == ",".join(sorted(wire["tags"].split(", "))) if wire["tags"] else t.tags == ""
        assert t.state == {"pausedUP": "stoppedUP", "pausedDL": "stoppedDL"}.get(wire["state"], wire["state"])
        assert t.completed is None if wire["completion_on"] <= 0 else t.completed == wire["completion_on"]
    names = {t.name for t in torrents}
    assert 't00005-ubuntu-24.04 "desktop" amd64' in names  # quotes preserved
    assert {t.tags for t in torrents} == {"", "public", "hd,private"}


def test_properties_from_recording(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "POST", BASE + "/api/v2/auth/login", load(V, "07-login-ok"))
    rec = load(V, "25-properties-stalledUP")
    add(rsps, "GET", PROPERTIES, rec, match=[matchers.query_param_matcher({"hash": STALLED_UP})])
    wire = rec.json()
    assert flavour(client, stats).properties(STALLED_UP, deadline) == TorrentProperties(
        downloaded=wire["total_downloaded"],
        uploaded=wire["total_uploaded"],
        wasted=wire["total_wasted"],
        active_seconds=wire["time_elapsed"],
        seeding_seconds=wire["seeding_time"],
        connections=wire["nb_connections"],
    )


@pytest.mark.parametrize(("name", "torrent_hash"), sorted(RECORDED_PROPERTIES.items()))
def test_every_recorded_properties_reply_reads_clean(
    name: str,
    torrent_hash: str,
    rsps: responses.RequestsMock,
    client: Client,
    stats: Stats,
    deadline: Deadline,
) -> None:
    add(rsps, "POST", BASE + "/api/v2/auth/login", load(V, "07-login-ok"))
    add(rsps, "GET", PROPERTIES, load(V, name), match=[matchers.query_param_matcher({"hash": torrent_hash})])
    props = flavour(client, stats).properties(torrent_hash, deadline)
    assert props is not None and None not in (props.downloaded, props.wasted, props.connections)
    assert invalid(stats, "torrent_properties") == 0


def test_vanished_torrent_404_is_none(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    unknown = "0" * 40
    add(rsps, "POST", BASE + "/api/v2/auth/login", load(V, "07-login-ok"))
    add(rsps, "GET", PROPERTIES, load(V, "29-properties-unknown-hash"))
    assert flavour(client, stats).properties(unknown, deadline) is None


def test_properties_html_is_bad_response(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "POST", BASE + "/api/v2/auth/login", load(V, "07-login-ok"))
    add(rsps, "GET", PROPERTIES, raw(load(V, "25-properties-stalledUP"), b"<html>oops</html>"))
    with pytest.raises(BadResponse):
        flavour(client, stats).properties(STALLED_UP, deadline)


# --- other v2 versions ----------------------------------------------------------------------


def test_qbittorrent_4_6_omits_empty_torrents(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    data = {key: value for key, value in maindata().items() if key not in ("torrents", "categories")}
    serve(rsps, data)
    transfer, torrents = flavour(client, stats).snapshot(deadline)
    assert torrents == [] and transfer.connection_status == "firewalled"


def test_qbittorrent_4_1_0_categories_array(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    data = maindata()
    data["categories"] = ["linux-isos", "movies"]
    del data["server_state"]["free_space_on_disk"]  # 4.1.4+
    for obj in data["torrents"].values():
        del obj["seeding_time"]  # 4.3.4+
    serve(rsps, data)
    transfer, torrents = flavour(client, stats).snapshot(deadline)
    assert len(torrents) == 12 and transfer.free_disk_space is None
    assert all(t.seeding_seconds is None and t.missing_properties() for t in torrents)
    assert invalid(stats, "maindata") == 0


def test_qbittorrent_5_2(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    """stoppedUP, ratio -1 (infinite from 5.1.1), dates -1 (5.0+), and the list's own
    total_wasted/connections_count (5.2): no properties call is needed any more."""
    data = maindata()
    wire = data["torrents"][STALLED_UP]
    wire.update(
        state="stoppedUP",
        ratio=-1,
        completion_on=-1,
        seen_complete=-1,
        total_wasted=4096,
        connections_count=3,
        seeding_time=7200,
        time_active=7300,
        downloaded=0,
        uploaded=1 << 40,
        has_tracker_warning=False,
        popularity=None,
        private=None,
    )
    data["torrents"]["8f1c76c17f9ac938918aad717c5f89ae07b0385a"]["state"] = "forcedMetaDL"
    data["torrents"]["a61c9f24cdd8d256cd9b05ddcd8b97c15e3cee93"]["state"] = "moving"
    serve(rsps, data)
    _, torrents = flavour(client, stats).snapshot(deadline)
    t = next(t for t in torrents if t.hash == STALLED_UP)
    assert t.state == "stoppedUP"
    assert t.ratio is None and t.completed is None
    assert (t.wasted, t.connections, t.seeding_seconds, t.active_seconds) == (4096, 3, 7200, 7300)
    assert (t.downloaded, t.uploaded) == (0, 1 << 40)
    assert not t.missing_properties()
    states = {t.hash: t.state for t in torrents}
    assert states["8f1c76c17f9ac938918aad717c5f89ae07b0385a"] == "forcedMetaDL"
    assert states["a61c9f24cdd8d256cd9b05ddcd8b97c15e3cee93"] == "moving"
    assert invalid(stats, "maindata") == 0


@pytest.mark.parametrize("value", [4294967295, 0, -3600])
def test_unset_completion_dates_of_every_era(
    value: int, rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    """4.1.x 4294967295, 4.2-4.6 0 or a negative time-zone offset, 5.x -1."""
    data = maindata()
    data["torrents"][STALLED_UP].update(completion_on=value, last_activity=0)
    serve(rsps, data)
    _, torrents = flavour(client, stats).snapshot(deadline)
    t = next(t for t in torrents if t.hash == STALLED_UP)
    assert t.completed is None and t.last_activity is None and t.added == 1795714650


# --- bad input -------------------------------------------------------------------------------


def test_bad_torrents_cost_only_themselves(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    data = maindata()
    torrents_in = data["torrents"]
    torrents_in[STALLED_UP].update(state="warping", size="big", num_seeds=False)
    torrents_in["not-a-hash"] = dict(torrents_in[STALLED_UP])
    torrents_in["a" * 40] = ["not", "an", "object"]
    data["server_state"]["dht_nodes"] = "many"
    serve(rsps, data)
    transfer, torrents = flavour(client, stats).snapshot(deadline)
    assert len(torrents) == 13  # the one with an unusable hash still counts in the totals
    t = next(t for t in torrents if t.hash == STALLED_UP)
    assert (t.state, t.size, t.seeds) == ("unknown", None, None)
    assert t.name == "t00001-Ünïcødé файл 日本語" and t.amount_left == 0
    anonymous = next(t for t in torrents if not t.identified)
    assert (anonymous.hash, anonymous.state, anonymous.size) == ("", "unknown", None)
    assert transfer.dht_nodes is None and transfer.connection_status == "firewalled"
    # three bad fields; the copy's hash and state; the list; dht_nodes
    assert invalid(stats, "maindata") == 3 + 2 + 1 + 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html><head><title>qBittorrent Web UI</title></head></html>",
        b'{"full_update":true,"rid":1,"server_state":{"alltime_dl":0',  # truncated
        b"[]",
        b'{"rid": 5}',  # an incremental reply: no server_state
        b'{"rid": 1, "server_state": {}, "torrents": []}',  # torrents not keyed by hash
        b'{"rid": 1, "server_state": "firewalled"}',
    ],
)
def test_broken_maindata_fails_the_snapshot(
    body: bytes, rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "POST", BASE + "/api/v2/auth/login", load(V, "07-login-ok"))
    add(rsps, "GET", MAINDATA, raw(load(V, "14-sync-maindata-rid0"), body))
    with pytest.raises(BadResponse):
        flavour(client, stats).snapshot(deadline)
