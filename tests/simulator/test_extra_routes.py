"""The routes the exporter never calls, held to the recordings of a real 4.0.4 while they exist.

Why: ``extra_routes`` keeps /sync/maindata and /query/preferences only because recordings pin their
shape; these tests are that reason, and go with the module.
"""

from __future__ import annotations

import json

from qbt_exporter.simulator import Simulator
from tests.simulator.wire import canonical, get, recording, same_shape


def test_sync_maindata_full_and_incremental(sim: Simulator, cookie: str) -> None:
    recorded = json.loads(recording("60-sync-maindata-rid0.http")[2])
    result = get(sim, "/sync/maindata?rid=0", {"Cookie": cookie})
    same_shape(result, "60-sync-maindata-rid0.http", body=False)
    data = json.loads(result[2])
    assert list(data) == list(recorded)
    assert list(data["server_state"]) == list(recorded["server_state"])
    torrent_keys = list(next(iter(recorded["torrents"].values())))
    assert all(list(t) == torrent_keys for t in data["torrents"].values() if t["state"] != "metaDL")
    assert set(data["torrents"]) == set(sim.torrent_hashes())
    assert canonical(result[2]) == result[2]
    # frozen clock: nothing changed, so the incremental answer is just the next rid (rec 61)
    again = json.loads(get(sim, f"/sync/maindata?rid={data['rid']}", {"Cookie": cookie})[2])
    assert again == {"rid": data["rid"] + 1}
    victim = sim.torrent_hashes()[0]
    sim.remove_torrent(victim)
    third = json.loads(get(sim, f"/sync/maindata?rid={again['rid']}", {"Cookie": cookie})[2])
    assert third["rid"] == again["rid"] + 1 and third["torrents_removed"] == [victim]
    assert "full_update" not in third
    assert json.loads(get(sim, "/sync/maindata?rid=999", {"Cookie": cookie})[2])["full_update"] is True


def test_preferences_minimal(sim: Simulator, cookie: str) -> None:
    status, headers, body = get(sim, "/query/preferences", {"Cookie": cookie})
    prefs = json.loads(body)
    assert status == "HTTP/1.1 200 OK" and headers["content-type"] == "application/json"
    assert prefs["web_ui_port"] == sim.port and prefs["locale"] == "en"
    assert set(prefs) <= set(json.loads(recording("11-preferences.http")[2]))
