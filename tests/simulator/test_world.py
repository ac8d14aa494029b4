"""The simulated torrents: realistic values by 4.0.4's rules, evolution over time, one seed one world.

Why: the exporter's series, alerts and dashboards are exercised against these torrents; values a
real 4.0.4 could not produce (or never produces) would test the wrong thing.
"""

from __future__ import annotations

import json
import re

import pytest

from qbt_exporter.simulator import Simulator, SimulatorConfig, world
from qbt_exporter.simulator.world import World
from tests.clocks import FakeClock, fake_module_time
from tests.simulator.wire import LOGIN, closing_session, get, session_cookie


def test_torrent_values_follow_the_real_servers_rules(sim: Simulator, cookie: str) -> None:
    torrents = json.loads(get(sim, "/query/torrents", {"Cookie": cookie})[2])
    for t in torrents:
        assert t["seen_complete"] == 4294967295
        assert 0 <= t["ratio"] <= 9999
        assert 0 <= t["progress"] <= 1
        if t["state"] not in ("downloading", "forcedDL"):
            assert t["eta"] == 8640000
            assert t["dlspeed"] == 0
        if t["state"] not in ("downloading", "forcedDL", "uploading", "forcedUP"):
            assert t["upspeed"] == 0
        if t["progress"] < 1:
            assert t["completion_on"] == 4294967295
        if t["state"] in ("pausedUP", "pausedDL", "error", "missingFiles", "checkingUP", "checkingDL"):
            assert t["last_activity"] == 0
        assert t["amount_left"] == t["size"] - t["completed"]
        assert t["priority"] == 0 if t["progress"] == 1 else t["priority"] >= 1
        assert t["tracker"] == "" or re.match(r"^(https?|udp)://[^/]+", t["tracker"])
        assert isinstance(t["tags"], str)
    states = {t["state"] for t in torrents}
    assert {"stalledUP", "pausedUP"} <= states


def test_names_exercise_escaping(cookie: str, sim: Simulator) -> None:
    names = [t["name"] for t in json.loads(get(sim, "/query/torrents", {"Cookie": cookie})[2])]
    assert any('"' in n for n in names)
    assert any("\\" in n for n in names)
    assert any("\n" in n for n in names)
    assert any(any(ord(c) > 127 for c in n) for n in names)
    assert {"", "linux"} <= {
        t["category"] for t in json.loads(get(sim, "/query/torrents", {"Cookie": cookie})[2])
    }


def test_counters_are_monotonic_over_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    fake_module_time(monkeypatch, clock, world)
    config = SimulatorConfig(torrents=300, latency=False, churn=True, time_scale=120.0, seed=3)
    with Simulator(config) as sim, closing_session() as http:
        http.post(sim.url + "/login", data=LOGIN)
        before = {t["hash"]: t for t in http.get(sim.url + "/query/torrents").json()}
        info_before = http.get(sim.url + "/query/transferInfo").json()
        clock.advance(1.0)  # two simulated minutes
        after = {t["hash"]: t for t in http.get(sim.url + "/query/torrents").json()}
        info_after = http.get(sim.url + "/query/transferInfo").json()
    common = before.keys() & after.keys()
    assert common
    grew = 0
    for h in common:
        for key in (
            "downloaded",
            "uploaded",
            "time_active",
            "completed",
            "downloaded_session",
            "uploaded_session",
        ):
            assert after[h][key] >= before[h][key], (h, key)
        grew += after[h]["downloaded"] > before[h]["downloaded"]
    assert grew > 0
    assert any(before[h]["state"] != after[h]["state"] for h in common)
    for key in ("alltime_dl", "alltime_ul", "dl_info_data", "up_info_data", "total_wasted_session"):
        assert info_after[key] >= info_before[key]
    assert info_after["up_info_data"] > info_before["up_info_data"]


def test_same_seed_same_torrents() -> None:
    config = SimulatorConfig(torrents=20, latency=False, churn=False, time_scale=0.0, seed=7)
    with Simulator(config) as a, Simulator(config) as b:
        assert a.torrent_hashes() == b.torrent_hashes()
        cookie_a, cookie_b = session_cookie(a), session_cookie(b)
        list_a = json.loads(get(a, "/query/torrents", {"Cookie": cookie_a})[2])
        list_b = json.loads(get(b, "/query/torrents", {"Cookie": cookie_b})[2])
        assert [(t["name"], t["size"], t["state"]) for t in list_a] == [
            (t["name"], t["size"], t["state"]) for t in list_b
        ]


def test_ten_thousand_torrents() -> None:
    """The simulator holds and lists 10,000 torrents (churn may add or drop a few meanwhile).

    How fast it does so is a figure, not a pass/fail: benchmarks/bench_simulator.py times
    ``/query/torrents`` at 10,000 torrents. The 60 s read timeout only turns a hang into a failure.
    """
    with Simulator(SimulatorConfig(torrents=10_000, latency=False)) as sim, closing_session() as http:
        http.post(sim.url + "/login", data=LOGIN, timeout=60)
        torrents = http.get(sim.url + "/query/torrents", timeout=60).json()
        assert sim.requests_by_path["/query/torrents"] == 1
    assert abs(len(torrents) - 10_000) <= 5
    assert len({t["hash"] for t in torrents}) == len(torrents)


def test_the_world_evolves_without_a_server() -> None:
    """No HTTP in the world: it is built, changed and read directly, and says when it changed."""
    config = SimulatorConfig(torrents=20, churn=False, time_scale=0.0, seed=7)
    world, twin = World(config), World(config)
    assert list(world.torrents) == list(twin.torrents)
    victim, other = list(world.torrents)[:2]
    version = world.version
    world.force_state(other, "pausedDL")
    assert world.version > version and world.torrents[other].state == "pausedDL"
    assert world.torrents[other].last_activity(world.tick_time()) == 0
    world.remove(victim)
    assert victim not in world.torrents and victim not in world.priority_map()
    with pytest.raises(ValueError):
        world.force_state(other, "stoppedDL")
