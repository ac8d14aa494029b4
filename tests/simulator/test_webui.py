"""The routes of the simulated 4.0.4 the exporter calls, and its checks, against the recordings.

Why: the exporter's legacy flavour is written against these answers (the keys and their order, the
403/401/404 with empty bodies, the unknown-hash trap of the 1.5 s cache); a drift from the real
server must show up here and not as a puzzling exporter failure later.
"""

from __future__ import annotations

import json
import re

import pytest

from qbt_exporter.simulator import STATES, Simulator, webui
from tests.clocks import FakeClock, fake_module_time
from tests.simulator.wire import canonical, get, recording, same_shape


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/version/api", "00-version-api-noauth.http"),
        ("/version/api_min", "01-version-api_min-noauth.http"),
        ("/version/qbittorrent", "02-version-qbittorrent-noauth.http"),
    ],
)
def test_version_endpoints_match_recordings(sim: Simulator, path: str, name: str) -> None:
    same_shape(get(sim, path), name)


def test_protected_without_cookie_is_403_empty_without_content_type(sim: Simulator) -> None:
    for path in ("/query/torrents", "/sync/maindata", "/command/pause", "/query/doesNotExist"):
        same_shape(get(sim, path), "03-query-torrents-nocookie.http")
    same_shape(get(sim, "/query/torrents", {"Cookie": "SID=bogus"}), "73-query-torrents-bogus-cookie.http")


@pytest.mark.parametrize(
    ("headers", "name"),
    [
        ({"Referer": "http://evil.example/"}, "75-query-torrents-bad-referer.http"),
        ({"Referer": "http://127.0.0.1:9999/"}, "75-query-torrents-bad-referer-port.http"),
        ({"Referer": "http://localhost:{port}"}, "75-query-torrents-referer-localhost-name.http"),
        ({"Origin": "http://evil.example"}, "76-query-torrents-bad-origin.http"),
        ({"Host": "127.0.0.1:9999"}, "78-host-header-wrong-port.http"),
    ],
)
def test_cross_site_and_host_port_are_401(
    sim: Simulator, cookie: str, headers: dict[str, str], name: str
) -> None:
    headers = {k: v.format(port=sim.port) for k, v in headers.items()}
    same_shape(get(sim, "/query/torrents", {"Cookie": cookie, **headers}), name)


def test_public_paths_are_checked_too(sim: Simulator) -> None:
    same_shape(
        get(sim, "/version/api", {"Origin": "http://evil.example"}), "76-version-api-bad-origin-public.http"
    )
    same_shape(get(sim, "/version/api", {"Host": "127.0.0.1:9999"}), "78-host-header-wrong-port.http")
    same_shape(
        get(
            sim,
            "/login",
            {"Referer": "http://evil.example/"},
            method="POST",
            body="username=admin&password=adminadmin",
        ),
        "77-login-bad-referer.http",
    )


def test_accepted_host_and_referer_variants(sim: Simulator, cookie: str) -> None:
    port = sim.port
    accepted = [
        {},
        {"Referer": f"http://127.0.0.1:{port}/"},
        {"Origin": f"http://127.0.0.1:{port}"},
        {"Host": "127.0.0.1"},
        {"Host": f"localhost:{port}", "Referer": f"http://localhost:{port}/"},
        {"Host": f"evil.example:{port}"},
        {"X-Forwarded-Host": "proxy.example:8080", "Referer": "http://proxy.example:8080/"},
        {"Host": ""},
    ]
    for headers in accepted:
        status, _, _ = get(sim, "/query/torrents?limit=1", {"Cookie": cookie, **headers})
        assert status == "HTTP/1.1 200 OK", headers


def test_unknown_paths_are_404_empty(sim: Simulator, cookie: str) -> None:
    same_shape(get(sim, "/api/v2/app/webapiVersion"), "72-api-v2-app-webapiVersion-nocookie.http")
    same_shape(
        get(sim, "/api/v2/auth/login", method="POST", body="username=admin&password=adminadmin"),
        "72-api-v2-auth-login.http",
    )
    same_shape(get(sim, "/query/doesNotExist", {"Cookie": cookie}), "72-query-unknown-action.http")
    same_shape(get(sim, "/query/propertiesGeneral", {"Cookie": cookie}), "71-propertiesGeneral-no-hash.http")
    h = sim.torrent_hashes()[0]
    same_shape(
        get(sim, f"/query/propertiesGeneral?hash={h}", {"Cookie": cookie}),
        "71-propertiesGeneral-querystring-hash.http",
    )


def test_transfer_info_has_the_20_keys_of_4_0_4(sim: Simulator, cookie: str) -> None:
    result = get(sim, "/query/transferInfo", {"Cookie": cookie})
    same_shape(result, "43-transferInfo.http", body=False)
    recorded = json.loads(recording("43-transferInfo.http")[2])
    data = json.loads(result[2])
    assert list(data) == list(recorded) and len(data) == 20
    assert canonical(result[2]) == result[2]
    assert data["connection_status"] in ("connected", "firewalled", "disconnected")
    assert re.match(r"^(-|\d+\.\d\d)$", data["global_ratio"])


def test_torrents_have_the_keys_of_4_0_4_in_order(sim: Simulator, cookie: str) -> None:
    result = get(sim, "/query/torrents", {"Cookie": cookie})
    same_shape(result, "44-torrents-all.http", body=False)
    recorded_keys = list(json.loads(recording("44-torrents-all.http")[2])[0])
    torrents = json.loads(result[2])
    assert len(torrents) == 60
    assert canonical(result[2]) == result[2]  # compact, sorted keys, raw UTF-8, no 1.0
    for item in torrents:
        expected = (
            recorded_keys
            if item["state"] != "metaDL"
            else [k for k in recorded_keys if k != "f_l_piece_prio"]
        )
        assert list(item) == expected
        assert re.fullmatch(r"[0-9a-f]{40}", item["hash"])
        assert item["state"] in STATES


def test_properties_general_keys_and_consistency_with_the_list(sim: Simulator, cookie: str) -> None:
    recorded_keys = list(json.loads(recording("50-propertiesGeneral-alpha.http")[2]))
    torrents = json.loads(get(sim, "/query/torrents", {"Cookie": cookie})[2])
    for t in torrents:
        result = get(sim, f"/query/propertiesGeneral/{t['hash']}", {"Cookie": cookie})
        same_shape(result, "50-propertiesGeneral-alpha.http", body=False)
        props = json.loads(result[2])
        assert list(props) == recorded_keys
        assert props["total_downloaded"] == t["downloaded"]
        assert props["total_uploaded"] == t["uploaded"]
        assert props["total_downloaded_session"] == t["downloaded_session"]
        assert props["total_uploaded_session"] == t["uploaded_session"]
        assert props["time_elapsed"] == t["time_active"]
        assert props["share_ratio"] == t["ratio"]
        assert props["dl_speed"] == t["dlspeed"] and props["up_speed"] == t["upspeed"]
        assert props["seeds"] == t["num_seeds"] and props["peers"] == t["num_leechs"]
        assert props["addition_date"] == t["added_on"]
        assert props["completion_date"] == (-1 if t["completion_on"] == 4294967295 else t["completion_on"])
        assert props["eta"] == t["eta"] and props["last_seen"] == -1
        assert props["total_size"] == t["total_size"]
    assert sim.requests_by_path["/query/propertiesGeneral"] == len(torrents)


def test_unknown_hash_is_empty_then_braces_within_1_5_s(
    sim: Simulator, cookie: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    fake_module_time(monkeypatch, clock, webui)
    unknown = "0" * 40
    same_shape(
        get(sim, f"/query/propertiesGeneral/{unknown}", {"Cookie": cookie}),
        "70-propertiesGeneral-unknown-hash.http",
    )
    assert get(sim, f"/query/propertiesGeneral/{unknown}", {"Cookie": cookie})[2] == b"{}"
    upper = sim.torrent_hashes()[0].upper()
    same_shape(
        get(sim, f"/query/propertiesGeneral/{upper}", {"Cookie": cookie}),
        "70-propertiesGeneral-uppercase-hash.http",
    )
    clock.advance(1.6)  # the one-slot cache holds for 1.5 s
    assert get(sim, f"/query/propertiesGeneral/{upper}", {"Cookie": cookie})[2] == b""


def test_removed_torrent_answers_like_an_unknown_hash(sim: Simulator, cookie: str) -> None:
    victim = sim.torrent_hashes()[3]
    sim.remove_torrent(victim)
    assert victim not in sim.torrent_hashes()
    assert get(sim, f"/query/propertiesGeneral/{victim}", {"Cookie": cookie})[2] == b""
    new = sim.add_torrents(2)
    assert len(new) == 2 and set(new) <= set(sim.torrent_hashes())
    sim.set_state(new[0], "pausedDL")
    listed = {t["hash"]: t for t in json.loads(get(sim, "/query/torrents", {"Cookie": cookie})[2])}
    assert listed[new[0]]["state"] == "pausedDL" and listed[new[0]]["last_activity"] == 0
    with pytest.raises(ValueError):
        sim.set_state(new[0], "stoppedDL")


@pytest.mark.parametrize(
    "path",
    [
        "/query/propertiesFiles/{hash}",
        "/query/propertiesWebSeeds/{hash}",
        "/command/pause",
        "/command/getSavePath",
        "/command/getGlobalDlLimit",
        "/",
        "/index.html",
    ],
)
def test_routes_nothing_calls_are_gone(sim: Simulator, cookie: str, path: str) -> None:
    """Removed from the simulator because neither the exporter, the benchmarks, --demo nor a test
    of the recordings asked for them: they answer like any unknown path."""
    url = path.format(hash=sim.torrent_hashes()[0])
    same_shape(
        get(sim, url, {"Cookie": cookie}, method="POST" if "pause" in url else "GET", body=""),
        "72-query-unknown-action.http",
    )


def test_query_parameters_of_the_list_are_ignored(sim: Simulator, cookie: str) -> None:
    """The exporter asks for the whole list; filters, sorting and paging were removed."""
    everything = get(sim, "/query/torrents", {"Cookie": cookie})[2]
    assert get(sim, "/query/torrents?filter=paused&sort=name&limit=1", {"Cookie": cookie})[2] == everything
