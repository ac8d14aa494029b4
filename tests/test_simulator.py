"""The simulated qBittorrent 4.0.4 against the recordings of a real one, over real sockets.

Why: integration tests and benchmarks of the exporter trust the simulator to be 4.0.4 on the wire.
Each behaviour is compared with the recorded exchange where one exists (status line, header names,
content type, body or key set), so a drift from the real server shows up here and not as a puzzling
exporter failure later.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from qbt_exporter.simulator import STATES, Simulator, SimulatorConfig, main

RECORDINGS = Path(__file__).parent / "recordings" / "qbittorrent-4.0.4"
LOGIN = {"username": "admin", "password": "adminadmin"}


def closing_session() -> requests.Session:
    """A requests session that retries a GET once when its pooled connection turns out closed: the
    server closes after every reply without saying so, like 4.0.4 (see the pooled-client test)."""
    http = requests.Session()
    http.mount(
        "http://", HTTPAdapter(max_retries=Retry(total=2, connect=2, read=2, status=0, backoff_factor=0))
    )
    return http


SID_COOKIE = re.compile(r"^SID=[A-Za-z0-9+/]{32}; HttpOnly; path=/$")


# --- helpers ------------------------------------------------------------------------------------
def recording(name: str) -> tuple[str, dict[str, str], bytes]:
    """Status line, headers (lower-case names) and body of a recorded exchange."""
    raw = (RECORDINGS / name).read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return lines[0], headers, body


def parse(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    return lines[0], headers, body


def raw_exchange(sim: Simulator, request: bytes, source: str | None = None, timeout: float = 5.0) -> bytes:
    """Send bytes on a fresh socket and read until the server closes it (EOF)."""
    sock = socket.create_connection(
        ("127.0.0.1", sim.port), timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        sock.close()


def get(
    sim: Simulator,
    path: str,
    headers: dict[str, str] | None = None,
    source: str | None = None,
    method: str = "GET",
    body: str = "",
) -> tuple[str, dict[str, str], bytes]:
    """One request with exactly the given headers (plus Host), answered on a raw socket."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{sim.port}"]
    hdrs = dict(headers or {})
    if body:
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        hdrs["Content-Length"] = str(len(body.encode()))
    if "Host" in hdrs:
        lines[1] = f"Host: {hdrs.pop('Host')}"
        if lines[1] == "Host: ":
            lines.pop(1)
    lines.extend(f"{k}: {v}" for k, v in hdrs.items())
    raw = raw_exchange(sim, ("\r\n".join(lines) + "\r\n\r\n" + body).encode(), source=source)
    status, header_list, payload = parse(raw)
    return status, dict(header_list), payload


def login(
    sim: Simulator, source: str | None = None, password: str = "adminadmin"
) -> tuple[str, dict[str, str], bytes]:
    return get(sim, "/login", method="POST", body=f"username=admin&password={password}", source=source)


def cookie_of(headers: dict[str, str]) -> str:
    return headers["set-cookie"].split(";")[0]


def session_cookie(sim: Simulator) -> str:
    _, headers, body = login(sim)
    assert body == b"Ok."
    return cookie_of(headers)


def same_shape(actual: tuple[str, dict[str, str], bytes], recorded_name: str, body: bool = True) -> None:
    """Same status line, same header names, same content type (and body) as the recording."""
    status, headers, payload = actual
    rec_status, rec_headers, rec_body = recording(recorded_name)
    assert status == rec_status
    assert sorted(headers) == sorted(rec_headers)
    assert headers.get("content-type") == rec_headers.get("content-type")
    assert headers["content-length"] == str(len(payload))
    if body:
        assert payload == rec_body


def canonical(payload: bytes) -> bytes:
    """What Qt would write for the same document: compact, sorted, raw UTF-8."""
    return json.dumps(json.loads(payload), separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A frozen (time_scale 0) simulator without latency: exact, fast comparisons."""
    with Simulator(SimulatorConfig(torrents=60, latency=False, churn=False, time_scale=0.0)) as s:
        yield s


@pytest.fixture
def cookie(sim: Simulator) -> str:
    return session_cookie(sim)


# --- public endpoints, login, sessions ----------------------------------------------------------
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


def test_binds_loopback_by_default(sim: Simulator) -> None:
    assert sim.url == f"http://127.0.0.1:{sim.port}"


def test_protected_without_cookie_is_403_empty_without_content_type(sim: Simulator) -> None:
    for path in ("/query/torrents", "/sync/maindata", "/command/pause", "/query/doesNotExist"):
        same_shape(get(sim, path), "03-query-torrents-nocookie.http")
    same_shape(get(sim, "/query/torrents", {"Cookie": "SID=bogus"}), "73-query-torrents-bogus-cookie.http")


def test_login_ok_sets_sid_cookie(sim: Simulator) -> None:
    result = login(sim)
    same_shape(result, "04-login-ok.http")
    assert SID_COOKIE.match(result[1]["set-cookie"])
    assert sim.logins_ok == 1


def test_login_again_with_cookie_is_ok_without_new_cookie(sim: Simulator, cookie: str) -> None:
    result = get(sim, "/login", {"Cookie": cookie}, method="POST", body="username=admin&password=wrong")
    same_shape(result, "05-login-again-with-cookie.http")
    assert sim.logins_ok == 1 and sim.logins_failed == 0


def test_wrong_credentials_answer_fails_with_200(sim: Simulator) -> None:
    same_shape(login(sim, password="wrongpass"), "91-src127.0.0.2-login-wrong-1.http")
    same_shape(get(sim, "/login"), "98-src127.0.0.4-GET-login-no-body.http")  # GET /login counts too
    same_shape(
        get(sim, "/login", method="POST", body="username=Admin&password=adminadmin"),
        "98-src127.0.0.4-login-wrong-username.http",
    )
    assert sim.logins_failed == 3


def test_cookie_is_reused_for_many_requests(sim: Simulator, cookie: str) -> None:
    for _ in range(5):
        status, _, _ = get(sim, "/query/transferInfo", {"Cookie": cookie})
        assert status == "HTTP/1.1 200 OK"
    assert sim.logins_ok == 1
    assert sim.requests_by_path["/query/transferInfo"] == 5


def test_pooled_client_must_retry_once_like_against_a_real_4_0_4(sim: Simulator) -> None:
    """The server closes without a ``Connection: close`` header, so a pooled connection may be dead
    when reused (``RemoteDisconnected``), exactly as the design notes for 4.0.4; one retry copes."""

    def fetch(http: requests.Session, path: str) -> requests.Response:
        try:
            return http.get(sim.url + path)
        except requests.ConnectionError:
            return http.get(sim.url + path)

    with requests.Session() as http:
        assert http.post(sim.url + "/login", data=LOGIN).text == "Ok."
        for _ in range(5):
            assert fetch(http, "/query/transferInfo").status_code == 200
    assert sim.logins_ok == 1


def test_ban_after_five_failures_on_every_path(sim: Simulator, cookie: str) -> None:
    source = "127.0.0.2"
    session = session_cookie_from(sim, source)
    for attempt in range(1, 6):
        same_shape(login(sim, source, "wrongpass"), f"91-src127.0.0.2-login-wrong-{attempt}.http")
    same_shape(login(sim, source, "wrongpass"), "91-src127.0.0.2-login-wrong-6.http")
    same_shape(login(sim, source), "92-src127.0.0.2-login-correct-while-banned.http")
    same_shape(get(sim, "/version/api", source=source), "92-src127.0.0.2-version-api-while-banned.http")
    same_shape(
        get(sim, "/query/torrents?limit=1", {"Cookie": session}, source=source),
        "92-src127.0.0.2-valid-sid-while-banned.http",
    )
    assert get(sim, "/", source=source)[0] == "HTTP/1.1 403 Forbidden"
    # another address is not affected
    assert get(sim, "/query/torrents?limit=1", {"Cookie": cookie})[0] == "HTTP/1.1 200 OK"
    sim.clear_bans()
    assert get(sim, "/version/api", source=source)[2] == b"17"


def session_cookie_from(sim: Simulator, source: str) -> str:
    _, headers, body = login(sim, source)
    assert body == b"Ok."
    return cookie_of(headers)


def test_failure_count_is_not_reset_by_success(sim: Simulator) -> None:
    source = "127.0.0.3"
    for attempt in range(1, 5):
        same_shape(login(sim, source, "wrongpass"), f"94-src127.0.0.3-login-wrong-{attempt}.http")
    ok = login(sim, source)
    same_shape(ok, "95-src127.0.0.3-login-correct-after-4-failures.http", body=True)
    session = cookie_of(ok[1])
    same_shape(login(sim, source, "wrongpass"), "96-src127.0.0.3-login-wrong-5-after-success.http")
    same_shape(
        get(sim, "/query/torrents?limit=1", {"Cookie": session}, source=source),
        "97-src127.0.0.3-query-with-sid-now-banned.http",
    )


def test_ban_expires_after_ban_duration() -> None:
    config = SimulatorConfig(torrents=1, latency=False, churn=False, ban_duration=0.3)
    with Simulator(config) as sim:
        for _ in range(5):
            login(sim, "127.0.0.5", "wrong")
        assert get(sim, "/version/api", source="127.0.0.5")[0] == "HTTP/1.1 403 Forbidden"
        time.sleep(0.4)
        assert get(sim, "/version/api", source="127.0.0.5")[2] == b"17"


def test_logout_expires_cookie_and_only_that_session(sim: Simulator, cookie: str) -> None:
    second = session_cookie(sim)
    result = get(sim, "/logout", {"Cookie": second})
    same_shape(result, "83-logout-second-session.http")
    assert re.match(
        r"^SID=; expires=\w{3}, \d\d-\w{3}-\d{4} \d\d:\d\d:\d\d GMT; path=/$", result[1]["set-cookie"]
    )
    same_shape(get(sim, "/query/torrents", {"Cookie": second}), "84-after-logout-old-sid.http")
    assert get(sim, "/query/torrents?limit=1", {"Cookie": cookie})[0] == "HTTP/1.1 200 OK"


def test_sessions_expire_when_idle() -> None:
    config = SimulatorConfig(torrents=1, latency=False, churn=False, session_timeout=0.3)
    with Simulator(config) as sim:
        cookie = session_cookie(sim)
        assert get(sim, "/query/transferInfo", {"Cookie": cookie})[0] == "HTTP/1.1 200 OK"
        time.sleep(0.45)
        assert get(sim, "/query/transferInfo", {"Cookie": cookie})[0] == "HTTP/1.1 403 Forbidden"


def test_drop_sessions_forces_a_new_login(sim: Simulator, cookie: str) -> None:
    sim.drop_sessions()
    assert get(sim, "/query/transferInfo", {"Cookie": cookie})[0] == "HTTP/1.1 403 Forbidden"


# --- CSRF and Host checks -----------------------------------------------------------------------
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


# --- routing and HTTP quirks --------------------------------------------------------------------
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


def test_connection_closed_after_each_response_without_connection_header(sim: Simulator) -> None:
    raw = raw_exchange(
        sim,
        f"GET /version/api HTTP/1.1\r\nHost: 127.0.0.1:{sim.port}\r\nConnection: keep-alive\r\n\r\n".encode(),
    )
    status, headers, body = parse(raw)
    assert status == "HTTP/1.1 200 OK" and body == b"17"
    assert "connection" not in dict(headers)
    names = [k for k, _ in headers]
    assert names == sorted(names) and all(k == k.lower() for k in names)
    assert "date" in names


def test_pipelined_second_request_is_dropped(sim: Simulator) -> None:
    host = f"Host: 127.0.0.1:{sim.port}\r\n"
    raw = raw_exchange(
        sim,
        f"GET /version/api HTTP/1.1\r\n{host}\r\nGET /version/qbittorrent HTTP/1.1\r\n{host}\r\n".encode(),
    )
    assert raw.count(b"HTTP/1.1") == 1
    same_shape(parse_to_dict(raw), "86-raw-two-pipelined.http")


def parse_to_dict(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    status, headers, body = parse(raw)
    return status, dict(headers), body


@pytest.mark.parametrize(
    ("request_bytes", "name"),
    [
        (b"GET /version/api HTTP/1.0\r\n\r\n", "86-raw-http10-no-host.http"),
        (b"GET /version/api HTTP/1.1\r\n\r\n", "86-raw-http11-no-host.http"),
        (b"GARBAGE\r\n\r\n", "86-raw-garbage.http"),
        (
            b"POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n24\r\nusername=admin&password=adminadmin\r\n0\r\n\r\n",
            "86-raw-post-chunked-login.http",
        ),
        (
            b"POST /login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 44\r\n\r\n"
            b'{"username":"admin","password":"adminadmin"}',
            "86-raw-login-json-body.http",
        ),
        (b"HEAD /version/api HTTP/1.1\r\n\r\n", "79-head-version-api.http"),
    ],
)
def test_raw_requests_match_recordings(sim: Simulator, request_bytes: bytes, name: str) -> None:
    same_shape(parse_to_dict(raw_exchange(sim, request_bytes)), name)


def test_multipart_login_is_accepted(sim: Simulator) -> None:
    response = requests.post(
        sim.url + "/login", files={"username": (None, "admin"), "password": (None, "adminadmin")}
    )
    assert response.text == "Ok." and "SID=" in response.headers["set-cookie"]


def test_gzip_only_for_bodies_over_1024_bytes(sim: Simulator, cookie: str) -> None:
    same_shape(get(sim, "/version/api", {"Accept-Encoding": "gzip"}), "85-version-api-gzip-small.http")
    _, plain_headers, plain = get(sim, "/query/torrents", {"Cookie": cookie})
    _, headers, packed = get(sim, "/query/torrents", {"Cookie": cookie, "Accept-Encoding": "gzip, deflate"})
    assert "content-encoding" not in plain_headers
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(packed) == plain
    _, headers, _ = get(sim, "/query/torrents", {"Cookie": cookie, "Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in headers


# --- data endpoints -----------------------------------------------------------------------------
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


def test_torrents_filters_category_sort_limit(sim: Simulator, cookie: str) -> None:
    def query(qs: str) -> list[dict[str, object]]:
        return json.loads(get(sim, f"/query/torrents?{qs}", {"Cookie": cookie})[2])

    everything = query("filter=all")
    assert query("filter=bogus") == everything
    paused = query("filter=paused")
    assert paused and all(t["state"] in ("pausedUP", "pausedDL", "error", "missingFiles") for t in paused)
    assert len(query("filter=resumed")) == len(everything) - len(paused)
    assert all(t["progress"] == 1 for t in query("filter=completed"))
    assert all(t["category"] == "linux" for t in query("category=linux"))
    assert all(t["category"] == "" for t in query("category="))
    names = [t["name"] for t in query("sort=name&reverse=true")]
    assert names == sorted(names, reverse=True)
    sizes = [t["size"] for t in query("sort=size")]
    assert sizes == sorted(sizes)
    assert query("sort=name&limit=3&offset=2") == query("sort=name")[2:5]
    assert query("limit=2&offset=-2") == everything[-2:]
    assert query("sort=nonsense") == everything


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


def test_unknown_hash_is_empty_then_braces_within_1_5_s(sim: Simulator, cookie: str) -> None:
    unknown = "0" * 40
    same_shape(
        get(sim, f"/query/propertiesGeneral/{unknown}", {"Cookie": cookie}),
        "70-propertiesGeneral-unknown-hash.http",
    )
    assert get(sim, f"/query/propertiesGeneral/{unknown}", {"Cookie": cookie})[2] == b"{}"
    same_shape(
        get(sim, f"/query/propertiesTrackers/{unknown}", {"Cookie": cookie}),
        "70-propertiesTrackers-unknown-hash.http",
    )
    assert get(sim, f"/query/propertiesTrackers/{unknown}", {"Cookie": cookie})[2] == b"[]"
    upper = sim.torrent_hashes()[0].upper()
    same_shape(
        get(sim, f"/query/propertiesGeneral/{upper}", {"Cookie": cookie}),
        "70-propertiesGeneral-uppercase-hash.http",
    )
    time.sleep(1.6)
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


# --- evolution ----------------------------------------------------------------------------------
def test_counters_are_monotonic_over_time() -> None:
    config = SimulatorConfig(torrents=300, latency=False, churn=True, time_scale=120.0, seed=3)
    with Simulator(config) as sim, closing_session() as http:
        http.post(sim.url + "/login", data=LOGIN)
        before = {t["hash"]: t for t in http.get(sim.url + "/query/torrents").json()}
        info_before = http.get(sim.url + "/query/transferInfo").json()
        time.sleep(1.0)  # two simulated minutes
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


# --- failure injection --------------------------------------------------------------------------
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


# --- scale --------------------------------------------------------------------------------------
def test_ten_thousand_torrents(record_property: pytest.RecordProperty) -> None:
    started = time.perf_counter()
    with Simulator(SimulatorConfig(torrents=10_000, latency=False)) as sim, closing_session() as http:
        build = time.perf_counter() - started
        http.post(sim.url + "/login", data=LOGIN)
        started = time.perf_counter()
        response = http.get(sim.url + "/query/torrents")
        elapsed = time.perf_counter() - started
        torrents = response.json()
    record_property("build_seconds", round(build, 3))
    record_property("torrents_seconds", round(elapsed, 3))
    print(f"10,000 torrents: built in {build:.2f} s, /query/torrents answered in {elapsed:.2f} s")
    assert abs(len(torrents) - 10_000) <= 5
    assert elapsed < 5.0 and build < 5.0


def test_latency_of_the_real_server_order() -> None:
    with (
        Simulator(SimulatorConfig(torrents=1000, latency=True, churn=False)) as sim,
        requests.Session() as http,
    ):
        http.post(sim.url + "/login", data=LOGIN)
        started = time.perf_counter()
        http.get(sim.url + "/query/torrents")
        assert time.perf_counter() - started >= 0.2
        h = sim.torrent_hashes()[0]
        started = time.perf_counter()
        http.get(f"{sim.url}/query/propertiesGeneral/{h}")
        assert time.perf_counter() - started >= 0.0014


def test_main_serves_until_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", interrupt)
    assert main(["--torrents", "3", "--port", "0", "--no-latency"]) == 0
