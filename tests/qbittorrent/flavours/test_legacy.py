"""The legacy flavour (qBittorrent 3.2.0 - 4.0.4) against the real 4.0.4 recordings and replies of
older API versions derived from them by the field table of qbittorrent-api.md section 7."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.errors import BadResponse
from qbt_exporter.qbittorrent.flavours.legacy import LegacyFlavour
from qbt_exporter.qbittorrent.model import ServerInfo, Torrent, TorrentProperties, Transfer
from qbt_exporter.stats import Stats
from tests.qbittorrent.flavours.helpers import BASE, edited, invalid, raw
from tests.recording import RECORDINGS, add, load

V = "4.0.4"
ALPHA = "783473f45d4b3d9b4713f2f40a8e77a09bb8fd32"
UNKNOWN = "0000000000000000000000000000000000000000"

# /query/torrents keys per version, from the table in qbittorrent-api.md section 7.1.
KEYS_3_2_0 = frozenset(
    [
        "hash",
        "name",
        "size",
        "progress",
        "dlspeed",
        "upspeed",
        "priority",
        "num_seeds",
        "num_complete",
        "num_leechs",
        "num_incomplete",
        "ratio",
        "eta",
        "state",
        "seq_dl",
        "f_l_piece_prio",
        "label",
        "super_seeding",
        "force_start",
    ]
)
KEYS_3_3_2 = KEYS_3_2_0 | {"save_path"}  # save_path from 3.2.4
KEYS_3_3_11 = (KEYS_3_2_0 - {"label"}) | {
    "save_path", "added_on", "completion_on", "category", "tracker", "dl_limit", "up_limit",
    "downloaded", "uploaded", "downloaded_session", "uploaded_session", "remaining", "completed",
    "ratio_limit", "seen_complete", "last_activity", "total_size",
}  # fmt: skip
KEYS_3_3_12 = (KEYS_3_3_11 - {"remaining"}) | {"amount_left"}
KEYS_4_0_4 = KEYS_3_3_12 | {"magnet_uri", "auto_tmm", "tags", "time_active"}
TRANSFER_BASIC = frozenset(
    [
        "dl_info_speed",
        "up_info_speed",
        "dl_info_data",
        "up_info_data",
        "dl_rate_limit",
        "up_rate_limit",
        "dht_nodes",
        "connection_status",
    ]
)
RENAMED = {"category": "label", "amount_left": "remaining"}


def as_version(obj: dict[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """A 4.0.4 torrent object as an older version sends it: renamed back, later fields dropped."""
    out = {}
    for key, value in obj.items():
        if key in keys:
            out[key] = value
        elif RENAMED.get(key) in keys:
            out[RENAMED[key]] = value
    return out


def recorded_hash(name: str) -> str:
    """The hash a recording asked for, from the curl command line in INDEX.tsv."""
    for line in (RECORDINGS / f"qbittorrent-{V}" / "INDEX.tsv").read_text().splitlines():
        file_name, _what, command = line.split("\t")
        if file_name == f"{name}.http":
            return command.rsplit("/", 1)[1]
    raise LookupError(name)


def torrents_json() -> list[dict[str, Any]]:
    return load(V, "44-torrents-all").json()


def serve(rsps: responses.RequestsMock, torrents: Any = None, transfer: Any = None, **recs: Any) -> None:
    """Login + transferInfo + torrents, from the 4.0.4 recordings unless replaced."""
    add(rsps, "POST", BASE + "/login", load(V, "04-login-ok"))
    info = load(V, "43-transferInfo")
    add(rsps, "GET", BASE + "/query/transferInfo", info if transfer is None else edited(info, transfer))
    listing = load(V, "44-torrents-all")
    add(rsps, "GET", BASE + "/query/torrents", listing if torrents is None else edited(listing, torrents))


def flavour(client: Client, stats: Stats, api: int = 17) -> LegacyFlavour:
    f = LegacyFlavour(client, stats, str(api))
    client.set_dialect(f.login_path, f.logout_path)
    return f


# --- 4.0.4, as recorded -----------------------------------------------------------------------


def test_derived_key_sets_match_the_recording() -> None:
    """The version tables used below reproduce the real 4.0.4 reply, so they are not made up."""
    assert {frozenset(obj) for obj in torrents_json()} == {KEYS_4_0_4}


def test_server_info(rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline) -> None:
    add(rsps, "GET", BASE + "/version/qbittorrent", load(V, "42-version-qbittorrent"))
    assert flavour(client, stats).server_info(deadline) == ServerInfo("v4.0.4", "legacy", "17")
    assert not client.has_session()  # /version/* is public: no login for it


def test_transfer_from_recording(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    serve(rsps)
    transfer, _ = flavour(client, stats).snapshot(deadline)
    wire = load(V, "43-transferInfo").json()
    assert transfer == Transfer(
        connection_status="firewalled",
        dht_nodes=wire["dht_nodes"],
        download_speed=wire["dl_info_speed"],
        upload_speed=wire["up_info_speed"],
        download_limit=wire["dl_rate_limit"],
        upload_limit=wire["up_rate_limit"],
        session_downloaded=wire["dl_info_data"],
        session_uploaded=wire["up_info_data"],
        alltime_downloaded=wire["alltime_dl"],
        alltime_uploaded=wire["alltime_ul"],
        peer_connections=wire["total_peer_connections"],
        free_disk_space=None,  # v2 only
        alt_speed_limits=None,  # not in legacy transferInfo
    )
    assert transfer.alltime_downloaded == 0 and transfer.peer_connections == 0  # zero is a value


def test_every_field_of_one_torrent(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    serve(rsps)
    _, torrents = flavour(client, stats).snapshot(deadline)
    wire = next(obj for obj in torrents_json() if obj["hash"] == ALPHA)
    alpha = next(t for t in torrents if t.hash == ALPHA)
    assert alpha == Torrent(
        hash=ALPHA,
        name="alpha.bin",
        state="stalledUP",
        category="",
        tags="",
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
        wasted=None,  # only in propertiesGeneral on legacy
        active_seconds=wire["time_active"],
        seeding_seconds=None,  # only in propertiesGeneral on legacy
        connections=None,  # only in propertiesGeneral on legacy
    )
    assert (alpha.size, alpha.added, alpha.active_seconds) == (300000, 1795714660, 35)
    assert alpha.missing_properties()
    assert invalid(stats, "torrents") == 0 and invalid(stats, "transfer_info") == 0


def test_all_torrents_states_and_sentinels(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    serve(rsps)
    _, torrents = flavour(client, stats).snapshot(deadline)
    wire = {obj["hash"]: obj for obj in torrents_json()}
    assert [t.hash for t in torrents] == list(wire)
    assert {t.name: t.state for t in torrents} == {
        "hotel.bin": "missingFiles",
        "alpha.bin": "stalledUP",
        "foxtrot.bin": "error",
        "charlie.iso": "stalledDL",
        "golf.bin": "queuedDL",
        "echo.bin": "forcedUP",
        "delta.bin": "stoppedDL",  # pausedDL, under its 5.x name
        "bravo-pack": "stoppedUP",  # pausedUP
    }
    by_name = {t.name: t for t in torrents}
    assert by_name["golf.bin"].category == "tv"
    assert by_name["bravo-pack"].category == "linux"
    for t in torrents:
        assert t.eta is None  # all 8640000
        if wire[t.hash]["completion_on"] == 4294967295:
            assert t.completed is None
        else:
            assert t.completed == wire[t.hash]["completion_on"]
        if wire[t.hash]["last_activity"] == 0:
            assert t.last_activity is None
        else:
            assert t.last_activity == wire[t.hash]["last_activity"]
    assert by_name["charlie.iso"].completed is None
    assert by_name["delta.bin"].last_activity is None


def test_properties_from_recording(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "POST", BASE + "/login", load(V, "04-login-ok"))
    rec = load(V, "50-propertiesGeneral-alpha")
    add(rsps, "GET", f"{BASE}/query/propertiesGeneral/{ALPHA}", rec)  # hash as a path segment
    props = flavour(client, stats).properties(ALPHA, deadline)
    wire = rec.json()
    assert props == TorrentProperties(
        downloaded=wire["total_downloaded"],
        uploaded=wire["total_uploaded"],
        wasted=wire["total_wasted"],
        active_seconds=wire["time_elapsed"],
        seeding_seconds=wire["seeding_time"],
        connections=wire["nb_connections"],
    )
    assert props is not None and props.seeding_seconds == 74 and props.active_seconds == 35


@pytest.mark.parametrize("name", ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"])
def test_every_recorded_properties_reply_reads_clean(
    name: str, rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "POST", BASE + "/login", load(V, "04-login-ok"))
    torrent_hash = recorded_hash(f"50-propertiesGeneral-{name}")
    add(
        rsps, "GET", f"{BASE}/query/propertiesGeneral/{torrent_hash}", load(V, f"50-propertiesGeneral-{name}")
    )
    props = flavour(client, stats).properties(torrent_hash, deadline)
    assert props is not None
    assert None not in (props.downloaded, props.uploaded, props.wasted, props.active_seconds)
    assert invalid(stats, "torrent_properties") == 0


def test_vanished_torrent_empty_body_is_none(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "POST", BASE + "/login", load(V, "04-login-ok"))
    add(
        rsps, "GET", f"{BASE}/query/propertiesGeneral/{UNKNOWN}", load(V, "70-propertiesGeneral-unknown-hash")
    )
    assert flavour(client, stats).properties(UNKNOWN, deadline) is None


def test_vanished_torrent_cached_empty_object_is_none(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    """qBittorrent's 1.5 s cache answers a repeated unknown hash with {} instead of nothing."""
    add(rsps, "POST", BASE + "/login", load(V, "04-login-ok"))
    rec = load(V, "70-propertiesGeneral-unknown-hash")
    add(rsps, "GET", f"{BASE}/query/propertiesGeneral/{UNKNOWN}", rec)
    add(rsps, "GET", f"{BASE}/query/propertiesGeneral/{UNKNOWN}", raw(rec, b"{}"))
    f = flavour(client, stats)
    assert f.properties(UNKNOWN, deadline) is None
    assert f.properties(UNKNOWN, deadline) is None
    assert len([c for c in rsps.calls if "propertiesGeneral" in c.request.url]) == 2


def test_3_2_x_empty_properties_mean_no_metadata_not_vanished(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    """3.2.x answers nothing for a torrent still fetching its metadata: keep it listed."""
    add(rsps, "POST", BASE + "/login", load(V, "04-login-ok"))
    add(rsps, "GET", f"{BASE}/query/propertiesGeneral/{ALPHA}", load(V, "70-propertiesGeneral-unknown-hash"))
    assert flavour(client, stats, api=2).properties(ALPHA, deadline) == TorrentProperties()


def test_properties_with_bad_fields_keep_the_good_ones(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "POST", BASE + "/login", load(V, "04-login-ok"))
    rec = load(V, "50-propertiesGeneral-alpha")
    wire = {**rec.json(), "total_wasted": "lots", "nb_connections": [1], "total_uploaded": -1}
    add(rsps, "GET", f"{BASE}/query/propertiesGeneral/{ALPHA}", edited(rec, wire))
    props = flavour(client, stats).properties(ALPHA, deadline)
    assert props == TorrentProperties(
        downloaded=0, uploaded=None, wasted=None, active_seconds=35, seeding_seconds=74, connections=None
    )
    assert invalid(stats, "torrent_properties") == 2  # -1 is a sentinel, not an error


def test_properties_not_an_object(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "POST", BASE + "/login", load(V, "04-login-ok"))
    rec = load(V, "50-propertiesGeneral-alpha")
    add(rsps, "GET", f"{BASE}/query/propertiesGeneral/{ALPHA}", raw(rec, b"[1, 2]"))
    with pytest.raises(BadResponse):
        flavour(client, stats).properties(ALPHA, deadline)


# --- older API versions, derived from the 4.0.4 reply ---------------------------------------


def test_api_2_qbittorrent_3_2_0(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    """label instead of category, no dates, ratio -1 = infinite, -1 swarm counts, text/javascript."""
    objs = [as_version(obj, KEYS_3_2_0) for obj in torrents_json()]
    bravo = next(obj for obj in objs if obj["name"] == "bravo-pack")
    bravo.update(ratio=-1, num_complete=-1, num_incomplete=-1, priority=-1)
    transfer = {k: v for k, v in load(V, "43-transferInfo").json().items() if k in TRANSFER_BASIC}
    js = "text/javascript; charset=UTF-8"
    add(rsps, "POST", BASE + "/login", load(V, "04-login-ok"))
    add(rsps, "GET", BASE + "/query/transferInfo", edited(load(V, "43-transferInfo"), transfer, js))
    add(rsps, "GET", BASE + "/query/torrents", edited(load(V, "44-torrents-all"), objs, js))
    info, torrents = flavour(client, stats, api=2).snapshot(deadline)

    assert info.connection_status == "firewalled" and info.dht_nodes == 0
    assert (info.alltime_downloaded, info.alltime_uploaded, info.peer_connections) == (None, None, None)
    t = next(t for t in torrents if t.name == "bravo-pack")
    assert t.category == "linux"  # from label
    assert t.ratio is None and t.swarm_seeds is None and t.swarm_leechers is None
    assert t.size == 170013 and t.progress == 1 and t.seeds == 0
    assert (t.added, t.completed, t.last_activity, t.amount_left) == (None, None, None, None)
    assert (t.downloaded, t.uploaded, t.active_seconds, t.tags, t.tracker) == (None, None, None, "", "")
    assert len(torrents) == 8
    assert invalid(stats, "torrents") == 0  # fields a version does not send are not errors
    assert invalid(stats, "transfer_info") == 0


def test_api_8_qbittorrent_3_3_2(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    objs = [as_version(obj, KEYS_3_3_2) for obj in torrents_json()]
    serve(rsps, torrents=objs)
    _, torrents = flavour(client, stats, api=8).snapshot(deadline)
    golf = next(t for t in torrents if t.name == "golf.bin")
    assert golf.category == "tv" and golf.added is None and golf.state == "queuedDL"
    assert golf.size == 40000 and golf.amount_left is None
    assert invalid(stats, "torrents") == 0


def test_api_12_qbittorrent_3_3_11_remaining(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    objs = [as_version(obj, KEYS_3_3_11) for obj in torrents_json()]
    transfer = {k: v for k, v in load(V, "43-transferInfo").json().items() if k in TRANSFER_BASIC}
    assert all("remaining" in obj and "amount_left" not in obj for obj in objs)
    serve(rsps, torrents=objs, transfer=transfer)
    info, torrents = flavour(client, stats, api=12).snapshot(deadline)
    charlie = next(t for t in torrents if t.name == "charlie.iso")
    assert charlie.amount_left == 200000
    assert charlie.added == 1795714660 and charlie.last_activity == 1795714717
    assert charlie.downloaded == 0 and charlie.active_seconds is None  # time_active is 4.0.4+
    assert info.alltime_downloaded is None
    assert invalid(stats, "torrents") == 0


@pytest.mark.parametrize("api", [13, 15])  # 3.3.12 and 3.3.14 send the same fields
def test_api_13_and_15_amount_left_and_alltime(
    api: int, rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    objs = [as_version(obj, KEYS_3_3_12) for obj in torrents_json()]
    objs[0]["tracker"] = "http://tracker.example.org:6969/a1b2c3d4passkey/announce?uk=SECRET"
    transfer = {**load(V, "43-transferInfo").json(), "alltime_dl": 123456789012, "alltime_ul": 42}
    serve(rsps, torrents=objs, transfer=transfer)
    info, torrents = flavour(client, stats, api=api).snapshot(deadline)
    assert (info.alltime_downloaded, info.alltime_uploaded, info.peer_connections) == (123456789012, 42, 0)
    hotel = torrents[0]
    assert hotel.tracker == "tracker.example.org"
    assert "passkey" not in repr(torrents) and "SECRET" not in repr(torrents)
    assert hotel.amount_left == 50000 and hotel.completed == 1795714688
    assert (hotel.tags, hotel.active_seconds) == ("", None)  # both 4.0.4+
    assert invalid(stats, "torrents") == 0


# --- bad input costs only what it touches -----------------------------------------------------


def test_name_is_preserved_exactly_and_tags_normalised(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    name = 'ubuntu "desktop" C:\\path\\ new\nline Ünïcødé файл 日本語 🎉'
    objs = torrents_json()
    objs[1].update(name=name, tags="zeta, alpha,  beta ", category="linux isos")
    serve(rsps, torrents=objs)
    _, torrents = flavour(client, stats).snapshot(deadline)
    assert torrents[1].name == name
    assert torrents[1].tags == "alpha,beta,zeta"
    assert torrents[1].category == "linux isos"


def test_unknown_state_is_unknown_and_counted(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    objs = torrents_json()
    objs[0]["state"] = "teleporting"
    objs[1]["state"] = 7
    del objs[2]["state"]
    serve(rsps, torrents=objs)
    _, torrents = flavour(client, stats).snapshot(deadline)
    assert [t.state for t in torrents[:3]] == ["unknown", "unknown", "unknown"]
    assert torrents[0].size == 50000  # the rest of the torrent is still read
    assert invalid(stats, "torrents") == 3


def test_wrong_types_cost_only_their_field(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    objs = torrents_json()
    good = objs[1]
    good.update(size="huge", dlspeed=True, num_seeds=1.5, name=None, tags=["a"], progress="0,75", eta="3600")
    serve(rsps, torrents=objs)
    _, torrents = flavour(client, stats).snapshot(deadline)
    alpha = torrents[1]
    assert alpha.hash == ALPHA
    assert (alpha.size, alpha.download_speed, alpha.seeds) == (None, None, None)
    assert alpha.name == "" and alpha.tags == ""
    assert alpha.progress == 0.75  # a locale-formatted string is still a number
    assert alpha.eta == 3600
    assert alpha.amount_left == 0 and alpha.added == 1795714660 and alpha.state == "stalledUP"
    assert invalid(stats, "torrents") == 5


def test_torrent_without_usable_hash_is_kept_for_the_totals_only(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    """It is still one of qBittorrent's torrents (qbittorrent_torrents counts it), but without an
    identity it can have no per-torrent series; an item that is no object is no torrent at all."""
    objs: list[Any] = torrents_json()
    del objs[0]["hash"]
    objs[1]["hash"] = "../../command/shutdown"
    objs[2]["hash"] = 12345
    objs[2]["state"] = "warping"
    unusable = [(obj["state"], obj["category"]) for obj in objs[:2]]
    objs.append("not an object")
    objs.append(None)
    serve(rsps, torrents=objs)
    _, torrents = flavour(client, stats).snapshot(deadline)
    assert len(torrents) == 8
    anonymous = [t for t in torrents if not t.identified]
    assert [(t.state, t.category) for t in anonymous] == [*unusable, ("unknown", objs[2]["category"])]
    assert all(t.name == "" and t.size is None and not t.missing_properties() for t in anonymous)
    assert invalid(stats, "torrents") == 3 + 1 + 2  # three hashes, one state, two non-objects


def test_locale_strings_in_transfer(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    transfer = {
        **load(V, "43-transferInfo").json(),
        "alltime_dl": "1.234,00",  # a German locale's grouping
        "dl_info_speed": "1,25",
        "dht_nodes": "x",
        "connection_status": "sleeping",
        "global_ratio": "1,25",  # not in the model; read by no one
    }
    serve(rsps, transfer=transfer)
    info, _ = flavour(client, stats).snapshot(deadline)
    assert info.alltime_downloaded == 1234 and info.download_speed == 1.25
    assert info.dht_nodes is None and info.connection_status is None
    assert info.upload_speed == 0
    assert invalid(stats, "transfer_info") == 2


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b'[{"hash": "783473f45d4b3d9b4713f2f40a8e77a09bb8fd32", "name": "al',  # truncated
        b'{"hash": "783473f45d4b3d9b4713f2f40a8e77a09bb8fd32"}',  # an object, not an array
        b'"just a string"',
        b"",
    ],
)
def test_broken_torrent_list_fails_the_snapshot(
    body: bytes, rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    serve(rsps)
    rsps.replace("GET", BASE + "/query/torrents", body=body, content_type="application/json")
    with pytest.raises(BadResponse):
        flavour(client, stats).snapshot(deadline)


@pytest.mark.parametrize("body", [b"[]", b"<!DOCTYPE html><html></html>", b'{"dht_nodes": 3'])
def test_broken_transfer_info_fails_the_snapshot(
    body: bytes, rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    serve(rsps)
    rsps.replace("GET", BASE + "/query/transferInfo", body=body)
    with pytest.raises(BadResponse):
        flavour(client, stats).snapshot(deadline)


def test_empty_library(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "POST", BASE + "/login", load(V, "04-login-ok"))
    add(rsps, "GET", BASE + "/query/transferInfo", load(V, "08-transferInfo-empty"))
    add(rsps, "GET", BASE + "/query/torrents", load(V, "09-torrents-empty"))
    info, torrents = flavour(client, stats).snapshot(deadline)
    assert torrents == [] and info.connection_status is not None
