"""The simulator's fault switch: each kind of failure of real legacy servers, once, on its path.

Why: the exporter's tests of a bad reply (an HTML page from a proxy, a cut body, a closed socket, a
reply that never comes) rely on the simulator failing exactly once and then serving normally.
"""

from __future__ import annotations

import http.client
import json

import pytest

from qbt_exporter.simulator import Simulator
from tests.simulator.wire import get, raw_exchange


def test_fail_next_kinds(sim: Simulator, cookie: str) -> None:
    sim.fail_next("/query/transferInfo", "html")
    _, headers, body = get(sim, "/query/transferInfo", {"Cookie": cookie})
    assert headers["content-type"].startswith("text/html") and body.startswith(b"<html>")
    sim.fail_next("/query/torrents", "truncated")
    _, _, body = get(sim, "/query/torrents", {"Cookie": cookie})
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    sim.fail_next("/query/", "close")
    assert raw_exchange(sim, b"GET /query/torrents HTTP/1.1\r\n\r\n") == b""
    sim.fail_next("/version/api", "hang")
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=0.5)
    conn.request("GET", "/version/api")
    with pytest.raises(TimeoutError):
        conn.getresponse()
    conn.close()
    # the next request is served normally, the hang blocked nobody
    assert get(sim, "/version/api")[2] == b"17"
    with pytest.raises(ValueError):
        sim.fail_next("/", "explode")
