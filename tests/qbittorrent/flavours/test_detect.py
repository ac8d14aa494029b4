"""The one-request probe: GET /version/api, public, decides the flavour and the login dialect."""

from __future__ import annotations

import pytest
import responses

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.errors import BadResponse, Banned, HttpError, Unauthorized
from qbt_exporter.qbittorrent.flavours import detect
from qbt_exporter.qbittorrent.flavours.legacy import LegacyFlavour
from qbt_exporter.qbittorrent.flavours.v2 import V2Flavour
from qbt_exporter.stats import Stats
from tests.counters import requests
from tests.qbittorrent.flavours.helpers import BASE, raw
from tests.recording import add, load

PROBE = BASE + "/version/api"


def probe_reply(text: bytes, status: int = 200) -> object:
    return raw(load("4.0.4", "00-version-api-noauth"), text, status)


def test_legacy_4_0_4(rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline) -> None:
    add(rsps, "GET", PROBE, load("4.0.4", "00-version-api-noauth"))
    flavour = detect(client, stats, deadline)
    assert isinstance(flavour, LegacyFlavour) and flavour.api == "legacy"
    assert flavour.api_version == "17"
    assert (client.login_path, client.logout_path) == ("/login", "/logout")
    assert len(rsps.calls) == 1 and not client.has_session()  # one public request, no login
    assert requests(stats, "version_api", "ok") == 1


def test_v2_4_5_2_answers_404(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "GET", PROBE, load("4.5.2", "01-legacy-version-api-probe"))
    client.set_dialect("/login", "/logout")  # as if a legacy server had been here before
    flavour = detect(client, stats, deadline)
    assert isinstance(flavour, V2Flavour) and flavour.api == "v2"
    assert (client.login_path, client.logout_path) == ("/api/v2/auth/login", "/api/v2/auth/logout")
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(("text", "api_version"), [(b"2", "2"), (b"8", "8"), (b"13", "13"), (b"17\n", "17")])
def test_every_legacy_api_version(
    text: bytes,
    api_version: str,
    rsps: responses.RequestsMock,
    client: Client,
    stats: Stats,
    deadline: Deadline,
) -> None:
    add(rsps, "GET", PROBE, probe_reply(text))
    flavour = detect(client, stats, deadline)
    assert isinstance(flavour, LegacyFlavour) and flavour.api_version == api_version


@pytest.mark.parametrize("text", [b"18", b"20", b"24"])
def test_qbittorrent_4_1_speaks_v2(
    text: bytes, rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "GET", PROBE, probe_reply(text))
    flavour = detect(client, stats, deadline)
    assert isinstance(flavour, V2Flavour)
    assert client.login_path == "/api/v2/auth/login"


@pytest.mark.parametrize(
    "text", [b"1", b"0", b"25", b"-3", b"", b"abc", b"17.5", b"<html>hello</html>", b"\xd9\xa3"]
)
def test_unusable_answers_are_bad_responses(
    text: bytes, rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "GET", PROBE, probe_reply(text))
    with pytest.raises(BadResponse):
        detect(client, stats, deadline)


def test_401_is_unauthorized(
    rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "GET", PROBE, probe_reply(b"", 401))
    with pytest.raises(Unauthorized):
        detect(client, stats, deadline)


@pytest.mark.parametrize("status", [500, 502, 403])
def test_other_statuses_are_http_errors(
    status: int, rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    add(rsps, "GET", PROBE, probe_reply(b"Bad Gateway", status))
    with pytest.raises(HttpError) as caught:
        detect(client, stats, deadline)
    assert caught.value.status == status


def test_banned(rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline) -> None:
    add(rsps, "GET", PROBE, load("4.0.4", "92-src127.0.0.2-version-api-while-banned"))
    with pytest.raises(Banned):
        detect(client, stats, deadline)


@pytest.mark.parametrize("status", [401, 403, 404, 500, 302])
def test_a_status_means_the_same_error_on_every_path(
    status: int, rsps: responses.RequestsMock, client: Client, stats: Stats, deadline: Deadline
) -> None:
    """One status → error mapping (errors.raise_for): the probe's error is the one an authenticated
    call raises, and its outcome is the label the request was counted under (a 403 at the probe was
    an HttpError counted as "forbidden" before)."""
    probe = "/version/qbittorrent" if status == 404 else "/version/api"  # a 404 at /version/api means v2
    add(rsps, "GET", BASE + probe, probe_reply(b"nope", status))
    client.set_dialect("/login", "/logout")
    add(rsps, "POST", BASE + "/login", load("4.0.4", "04-login-ok"))
    add(rsps, "GET", BASE + "/query/x", probe_reply(b"nope", status))
    with pytest.raises(HttpError) as at_probe:
        if status == 404:
            LegacyFlavour(client, stats, "17").server_info(deadline)
        else:
            detect(client, stats, deadline)
    endpoint = at_probe.value.endpoint
    assert requests(stats, endpoint, at_probe.value.outcome) == 1
    if status != 403:  # an authenticated 403 logs in again first; that path has its own test
        with pytest.raises(HttpError) as authenticated:
            client.get("/query/x", endpoint="x", deadline=deadline)
        assert type(authenticated.value) is type(at_probe.value)
