"""The simulator's /query/propertiesTrackers: the shape of the 4.0.4 recordings, the 1.5 s cache trap,
and failures with the messages real trackers send (unregistered ones included), so that the demo and
the benchmarks exercise the exporter's trackers pass."""

from __future__ import annotations

import json
import re
from collections import Counter

from qbt_exporter.simulator import Simulator, SimulatorConfig
from qbt_exporter.tracker_messages import classify
from tests.simulator.wire import get, recording, same_shape, session_cookie


def test_trackers_carry_passkeys_in_urls(sim: Simulator, cookie: str) -> None:
    urls = []
    for h in sim.torrent_hashes():
        status, headers, body = get(sim, f"/query/propertiesTrackers/{h}", {"Cookie": cookie})
        assert status == "HTTP/1.1 200 OK" and headers["content-type"] == "application/json"
        for entry in json.loads(body):
            assert list(entry) == ["msg", "num_peers", "status", "url"]
            assert entry["status"] in ("Working", "Updating...", "Not working", "Not contacted yet")
            urls.append(entry["url"])
    assert any(re.match(r"^http://tracker\.example\.org:6969/[0-9a-f]{32}/announce$", u) for u in urls)
    assert list(json.loads(recording("51-propertiesTrackers-alpha.http")[2])[0]) == [
        "msg",
        "num_peers",
        "status",
        "url",
    ]


def test_trackers_of_an_unknown_hash_are_empty_then_brackets_within_1_5_s(
    sim: Simulator, cookie: str
) -> None:
    """The cache trap of the WebUI on a second endpoint: one slot per endpoint."""
    unknown = "0" * 40
    same_shape(
        get(sim, f"/query/propertiesTrackers/{unknown}", {"Cookie": cookie}),
        "70-propertiesTrackers-unknown-hash.http",
    )
    assert get(sim, f"/query/propertiesTrackers/{unknown}", {"Cookie": cookie})[2] == b"[]"


def test_failing_trackers_say_why_in_the_form_of_the_recordings() -> None:
    """Before: every failure read "<host>: Connection refused"; now some torrents are unregistered."""
    with Simulator(SimulatorConfig(torrents=400, latency=False, churn=False, time_scale=0.0)) as sim:
        cookie = session_cookie(sim)
        classes: Counter[str] = Counter()
        for h in sim.torrent_hashes():
            for entry in json.loads(get(sim, f"/query/propertiesTrackers/{h}", {"Cookie": cookie})[2]):
                if entry["status"] == "Not working":
                    # as recorded: 'alpha.bin (http://127.0.0.1:6969/announce) (-1) Connection refused "" (2)'
                    form = r'^.* \(\w+://\S+\) \(-?\d+\) .* ".*" \(\d+\)$'  # names may hold newlines
                    assert re.match(form, entry["msg"], re.DOTALL), entry["msg"]
                    classes[classify(entry["msg"])] += 1
    assert classes["unregistered"] >= 1 and classes["unreachable"] >= 1, classes
