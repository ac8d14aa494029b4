"""The exporter in front of real qbittorrent-nox servers (/api/v2): same metrics, proved live.

Every test here runs once per server (conftest.py ``qbt_server``: this Debian's own qbittorrent-nox
and the other release's, so a 4.x and a 5.x). What a test expects comes from what that server says
about itself and from its flavour's documented differences (``ServerTraits``), never from
a version string written into the test.

Issue: "/api/v2 with the same metrics, proved against a real qBittorrent". The torrents are made by
the test (see ``harness.STATIC_MIX``: seeding, paused complete and incomplete, missing files, a name
with quotes, a backslash and Unicode) plus two slow real transfers with a second qBittorrent, so
speeds, ETAs, peers and byte counters are live values, not zeros.

Values are compared with what qBittorrent's own API says. Some of them move while the test runs
(the transfers), so every comparison reads qBittorrent before and after the scrape: a value that
only grows must lie between the two readings; a value that can go up and down must equal the
reading when both readings agree. A whole comparison is retried a few times before it fails, so a
value that changed at the wrong instant does not fail the test, while a wrong value always does.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from harness import servers
from harness.exporter import Exporter
from harness.processes import wait_until
from harness.qbittorrent import (
    ADMIN_USER,
    QBittorrent,
    ServerTraits,
    outbound_attempts,
    tracker_host,
)
from harness.servers import QbtServer
from harness.torrents import PASSKEY
from qbt_exporter.collectors import probe as probe_collector
from qbt_exporter.deadline import Deadline
from qbt_exporter.metrics import BY_NAME, CATALOGUE
from qbt_exporter.qbittorrent.client import SAFE_FAILURES, Client
from qbt_exporter.qbittorrent.flavours.common import normalise_state
from qbt_exporter.qbittorrent.model import CONNECTION_STATUSES, TORRENT_STATES
from qbt_exporter.scraper import Scraper
from qbt_exporter.stats import Stats
from tests.counters import logins, series
from tests.e2e import harness
from tests.e2e.harness import TRICKY_NAME, Exposition, TorrentWorld, parse_exposition

pytestmark = pytest.mark.e2e

ETA_INFINITE = 8640000  # qBittorrent's "never" for eta

# Catalogue metrics that have no series on this setup, and why. Everything else in the catalogue
# must have at least one series in the scrape.
EXPECTED_NO_SERIES: dict[str, str] = {
    "qbittorrent_exporter_invalid_values_total": (
        "every value a healthy qBittorrent sends parses, so this labelled counter is declared "
        "(HELP/TYPE) but has no series"
    ),
}

# Server metric -> sync/maindata server_state field, and how the value may change during a scrape.
SERVER_FIELDS: dict[str, tuple[str, str]] = {
    "qbittorrent_dht_nodes": ("dht_nodes", "volatile"),
    "qbittorrent_download_speed_bytes_per_second": ("dl_info_speed", "volatile"),
    "qbittorrent_upload_speed_bytes_per_second": ("up_info_speed", "volatile"),
    "qbittorrent_download_limit_bytes_per_second": ("dl_rate_limit", "volatile"),
    "qbittorrent_upload_limit_bytes_per_second": ("up_rate_limit", "volatile"),
    "qbittorrent_session_downloaded_bytes_total": ("dl_info_data", "growing"),
    "qbittorrent_session_uploaded_bytes_total": ("up_info_data", "growing"),
    "qbittorrent_alltime_downloaded_bytes_total": ("alltime_dl", "growing"),
    "qbittorrent_alltime_uploaded_bytes_total": ("alltime_ul", "growing"),
    "qbittorrent_peer_connections": ("total_peer_connections", "volatile"),
    "qbittorrent_free_disk_space_bytes": ("free_space_on_disk", "volatile"),
    "qbittorrent_alt_speed_limits_enabled": ("use_alt_speed_limits", "volatile"),
}


def _never_if_negative(value: Any) -> float | None:
    return None if value is None or float(value) < 0 else float(value)


# Per-torrent metric -> (where, field, kind, absent-rule). "info" is torrents/info, "props" is
# torrents/properties. The absent-rule maps qBittorrent's value to the expected one (None: no series).
TORRENT_FIELDS: dict[str, tuple[str, str, str, Callable[[Any], float | None]]] = {
    "qbittorrent_torrent_size_bytes": ("info", "size", "volatile", float),
    "qbittorrent_torrent_amount_left_bytes": ("info", "amount_left", "shrinking", float),
    "qbittorrent_torrent_progress_ratio": ("info", "progress", "growing", float),
    "qbittorrent_torrent_download_speed_bytes_per_second": ("info", "dlspeed", "volatile", float),
    "qbittorrent_torrent_upload_speed_bytes_per_second": ("info", "upspeed", "volatile", float),
    "qbittorrent_torrent_eta_seconds": (
        "info",
        "eta",
        "volatile",
        lambda v: None if v == ETA_INFINITE else float(v),
    ),
    "qbittorrent_torrent_share_ratio": ("info", "ratio", "volatile", float),
    "qbittorrent_torrent_seeds": ("info", "num_seeds", "volatile", float),
    "qbittorrent_torrent_leechers": ("info", "num_leechs", "volatile", float),
    "qbittorrent_torrent_swarm_seeds": ("info", "num_complete", "volatile", _never_if_negative),
    "qbittorrent_torrent_swarm_leechers": ("info", "num_incomplete", "volatile", _never_if_negative),
    "qbittorrent_torrent_downloaded_bytes_total": ("info", "downloaded", "growing", float),
    "qbittorrent_torrent_uploaded_bytes_total": ("info", "uploaded", "growing", float),
    "qbittorrent_torrent_wasted_bytes_total": ("props", "total_wasted", "growing", float),
    "qbittorrent_torrent_active_seconds_total": ("info", "time_active", "growing", float),
    "qbittorrent_torrent_seeding_seconds_total": ("info", "seeding_time", "growing", float),
    "qbittorrent_torrent_connections": ("props", "nb_connections", "volatile", float),
    "qbittorrent_torrent_added_timestamp_seconds": ("info", "added_on", "volatile", float),
    # "never completed" is 0 on 4.x and -1 on 5.x (qbittorrent-api.md §8.2): no series for those
    "qbittorrent_torrent_completed_timestamp_seconds": (
        "info",
        "completion_on",
        "volatile",
        lambda v: float(v) if 0 < v < 4294967295 else None,
    ),
    "qbittorrent_torrent_last_activity_timestamp_seconds": (
        "info",
        "last_activity",
        "growing",
        lambda v: float(v) if v > 0 else None,
    ),
}


def normalised_tags(tags: str) -> str:
    """qBittorrent's "b, a" as the exporter labels it: sorted, comma-joined, no spaces."""
    return ",".join(sorted(t.strip() for t in tags.split(",") if t.strip()))


@dataclass
class ApiView:
    """qBittorrent's own view at one instant: torrents/info, properties, server_state, transfer."""

    torrents: dict[str, dict[str, Any]]
    properties: dict[str, dict[str, Any]]
    server_state: dict[str, Any]
    transfer: dict[str, Any]


def api_view(qbt: QBittorrent) -> ApiView:
    torrents = {t["hash"]: t for t in qbt.api.torrents_info()}
    return ApiView(
        torrents=torrents,
        properties={h: qbt.api.properties(h) for h in torrents},
        server_state=qbt.api.maindata()["server_state"],
        transfer=qbt.api.transfer_info(),
    )


def bracketed_scrape(qbt: QBittorrent, exporter: Exporter) -> tuple[ApiView, Exposition, ApiView]:
    """qBittorrent's view, then a scrape, then qBittorrent's view again."""
    before = api_view(qbt)
    reply = exporter.scrape()
    assert reply.status_code == 200, reply.text[:500]
    after = api_view(qbt)
    return before, parse_exposition(reply.text), after


# Values qBittorrent itself gives differently to different WebUI sessions (the exporter has its own
# session): how far apart they may be, in the metric's unit.
SESSION_TOLERANCE: dict[str, float] = {
    # sync/maindata keeps a torrent's previous last_activity while the new one is within 15 s
    # ("can differ from actual value by up to 10 seconds", webui/api/synccontroller.cpp, 4.5)
    "qbittorrent_torrent_last_activity_timestamp_seconds": 16.0,
    # measured once per WebUI session and then every 30 s, while the transfers write to the disk
    "qbittorrent_free_disk_space_bytes": 256 * 1024 * 1024,
}


def check_value(
    what: str,
    kind: str,
    got: float | None,
    before: float | None,
    after: float | None,
    tolerance: float = 0.0,
) -> str | None:
    """None when ``got`` is consistent with the readings before and after; else a mismatch."""
    if before is None and after is None:
        return None if got is None else f"{what}: expected no series, got {got}"
    if got is None:
        return f"{what}: series missing (qBittorrent said {before} then {after})"
    if before is None or after is None:
        return None  # it appeared or vanished during the scrape; either answer is right
    if tolerance:
        low, high = min(before, after) - tolerance, max(before, after) + tolerance
        if not low <= got <= high:
            return f"{what}: {got} not within {tolerance} of qBittorrent's {before} / {after}"
        return None
    if kind == "volatile" or before == after:
        if before == after and got != pytest.approx(before, rel=1e-9, abs=1e-9):
            return f"{what}: {got} != {before} (qBittorrent's value)"
        if before != after and got < 0:
            return f"{what}: negative {got}"
        return None
    low, high = min(before, after), max(before, after)
    if not low - 1e-9 <= got <= high + 1e-9:
        return f"{what}: {got} outside [{low}, {high}] read from qBittorrent around the scrape"
    return None


def retry_comparison(
    qbt: QBittorrent, exporter: Exporter, compare: Callable[[ApiView, Exposition, ApiView], list[str]]
) -> tuple[ApiView, Exposition, ApiView]:
    """Run ``compare`` on fresh bracketed scrapes until it finds no mismatch (at most 4 times)."""
    problems: list[str] = []
    for _attempt in range(4):
        before, scraped, after = bracketed_scrape(qbt, exporter)
        problems = compare(before, scraped, after)
        if not problems:
            return before, scraped, after
        time.sleep(0.5)
    pytest.fail("exporter disagrees with qBittorrent's API:\n  " + "\n  ".join(problems))


@pytest.fixture(scope="module")
def scrape(world: TorrentWorld, exporter: Exporter) -> Exposition:
    """One scrape of the shared exporter (its second: the first one has logged in and detected)."""
    exporter.scrape()
    reply = exporter.scrape()
    assert reply.status_code == 200, reply.text[:500]
    assert reply.headers["Content-Type"].startswith("text/plain"), reply.headers
    return parse_exposition(reply.text)


# --------------------------------------------------------------------------------------------------
# a healthy qBittorrent
# --------------------------------------------------------------------------------------------------


def test_up_and_version(scrape: Exposition, world: TorrentWorld, qbt_server: QbtServer) -> None:
    assert scrape.value("qbittorrent_up") == 1
    version, webapi = world.qbt.api.app_version(), world.qbt.api.webapi_version()
    assert [(s.labels, s.value) for s in scrape.named("qbittorrent_version_info")] == [
        ({"version": version, "api": "v2", "api_version": webapi}, 1.0)
    ]
    # and the server answering is the binary this run meant: "qBittorrent v5.1.0" from --version
    assert qbt_server.version().split()[-1] == version


def test_flavour_differences_are_what_the_server_shows(world: TorrentWorld, exporter: Exporter) -> None:
    """The documented 4.x/5.x differences, seen on this server, and the exporter's same answer.

    5.0+ says stoppedUP/stoppedDL where 4.x said pausedUP/pausedDL, writes -1 (4.x: 0) for a date
    that never happened, and lists more fields per torrent; none of that may change a metric.
    """
    traits = world.qbt.api.traits()
    info = {t["hash"]: t for t in world.qbt.api.torrents_info()}
    hashes = world.hashes
    assert info[hashes["paused_up"]]["state"] == traits.raw_state("stoppedUP")
    assert info[hashes["paused_dl"]]["state"] == traits.raw_state("stoppedDL")
    for key in ("paused_dl", "missing", "leeching"):
        assert traits.is_never(info[hashes[key]]["completion_on"]), (key, info[hashes[key]])
    fields = set(info[hashes["seeding"]])
    assert traits.list_additions <= fields, sorted(traits.list_additions - fields)
    if not traits.stopped_words:
        assert not fields & ServerTraits.LIST_FIELDS_5_0, sorted(fields)
    scraped = parse_exposition(exporter.scrape().text)
    state_of = {s.labels["hash"]: s.labels["state"] for s in scraped.named("qbittorrent_torrent_state")}
    assert state_of[hashes["paused_up"]] == "stoppedUP" and state_of[hashes["paused_dl"]] == "stoppedDL"
    completed = scraped.by_hash("qbittorrent_torrent_completed_timestamp_seconds")
    assert not {hashes[key] for key in ("paused_dl", "missing", "leeching")} & set(completed)
    assert not scraped.named("qbittorrent_exporter_invalid_values_total"), "a value did not parse"


def test_qbittorrent_stays_on_loopback(world: TorrentWorld) -> None:
    """Each real qBittorrent's own log shows no attempt to reach beyond 127.0.0.1.

    With peer-country resolution on (qBittorrent's default), it downloads an IP geolocation
    database at start-up: "Couldn't download IP geolocation database file. Reason: The remote
    host name was not found" is a DNS query leaving the machine on every run.
    """
    for qbt in (world.qbt, world.peer):
        assert qbt is not None
        log = qbt.own_log_text()
        assert "started" in log and f"IP: 127.0.0.1, port: {qbt.web_port}" in log, log[-2000:]
        assert outbound_attempts(log) == [], qbt.own_log
        prefs = qbt.api.preferences()
        assert prefs["resolve_peer_countries"] is False
        assert [prefs[k] for k in ("dht", "pex", "lsd", "upnp")] == [False] * 4
        assert prefs["current_interface_address"] == "127.0.0.1"
        assert prefs["web_ui_address"] == "127.0.0.1"


def mount_points(mountinfo: str) -> set[str]:
    """The mount points listed in a /proc/<pid>/mountinfo text (field 5; octal escapes decoded)."""
    points = set()
    for line in mountinfo.splitlines():
        field = line.split()[4]
        points.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field))
    return points


def test_chroot_mounts_live_only_in_the_servers_namespace(world: TorrentWorld, qbt_server: QbtServer) -> None:
    """The chroot server's /tmp, /dev and /proc mounts exist in its own mount namespace only, so
    they end with it and the host's mount table never holds one, however the suite ends."""
    chroot = servers.chroot_dir()
    host = mount_points(Path("/proc/self/mountinfo").read_text())
    if chroot is not None:
        assert not {p for p in host if p.startswith(f"{chroot}/")}, "a chroot mount in the host namespace"
    if qbt_server.chroot is not None:
        proc = Path(f"/proc/{world.qbt.process.pid}")
        assert os.readlink(proc / "root") == str(qbt_server.chroot)
        assert os.readlink(proc / "ns" / "mnt") != os.readlink("/proc/self/ns/mnt")
        # as the server sees them: relative to its root, the chroot
        own = mount_points((proc / "mountinfo").read_text())
        assert {*servers.SHARED_DIRS, "/proc"} <= own, sorted(own)


def test_outbound_attempts_reads_the_real_warnings() -> None:
    """The log check recognises what 4.5 and 5.1 really print, and passes a loopback-only log."""
    loopback = (
        '(I) 2026-12-01T13:42:09 - Successfully listening on IP. IP: "127.0.0.1". Port: "TCP/18951"\n'
        "(N) 2026-12-01T13:42:09 - WebUI: Now listening on IP: 127.0.0.1, port: 19051\n"
        "(I) 2026-12-01T13:42:09 - Distributed Hash Table (DHT) support: OFF\n"
        "(I) 2026-12-01T13:42:09 - Encryption support: ON\n"
    )
    assert outbound_attempts(loopback) == []
    bad = [
        "(W) 2026-12-01T13:30:01 - Couldn't download IP geolocation database file. "
        "Reason: The remote host name was not found",
        '(I) 2026-12-01T13:41:52 - Successfully listening on IP. IP: "0.0.0.0". Port: "TCP/18952"',
        '(I) 2026-12-01T13:41:52 - Successfully listening on IP. IP: "192.0.2.2". Port: "UTP/18952"',
        "(I) 2026-12-01T13:41:52 - Distributed Hash Table (DHT) support: ON",
        "(I) 2026-12-01T13:41:52 - UPnP / NAT-PMP support: ON",
    ]
    assert outbound_attempts(loopback + "\n".join(bad)) == bad


def test_every_applicable_catalogue_metric_is_present(scrape: Exposition, world: TorrentWorld) -> None:
    # qBittorrent knows its free disk space here (the harness makes sure of it: see write_config)
    assert world.qbt.api.maindata()["server_state"]["free_space_on_disk"] > 0
    expected_absent = EXPECTED_NO_SERIES
    present = scrape.names()
    catalogue = [
        spec for spec in CATALOGUE if spec.name not in probe_collector.FAMILIES
    ]  # --config.file only
    missing = [
        spec.name for spec in catalogue if spec.name not in present and spec.name not in expected_absent
    ]
    unexpected = [name for name in expected_absent if name in present]
    assert not missing, f"catalogue metrics without a series: {missing}"
    assert not unexpected, f"expected no series, got some: {unexpected}"
    # absent series are still declared, so the catalogue is the contract for every metric
    undeclared = [spec.name for spec in catalogue if spec.name not in scrape.family_names]
    assert not undeclared, f"no HELP/TYPE for {undeclared}"
    # nothing outside the catalogue (a typo in a collector would show up here) but the process's
    # own metrics, which prometheus_client names (collectors/process.py)
    own = {name for name in present if not name.startswith(("process_", "python_"))}
    assert own <= set(BY_NAME), f"not in the catalogue: {sorted(own - set(BY_NAME))}"
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total", "python_info"} <= present
    # and every torrent of the world is there, keyed by its real info hash
    assert set(scrape.by_hash("qbittorrent_torrent_info")) == set(world.hashes.values())


def test_per_torrent_series_have_the_expected_gaps(world: TorrentWorld, exporter: Exporter) -> None:
    """Absent means "qBittorrent does not know": no ETA while paused/seeding, no completion date
    for incomplete torrents. The gaps must be exactly those, and the live ones must be there."""

    _, scraped, after = bracketed_scrape(world.qbt, exporter)
    hashes = world.hashes
    eta = scraped.by_hash("qbittorrent_torrent_eta_seconds")
    completed = scraped.by_hash("qbittorrent_torrent_completed_timestamp_seconds")
    for key in ("paused_up", "paused_dl", "missing", "seeding", "tricky", "uploading"):
        assert hashes[key] not in eta, f"{key} has an ETA although qBittorrent says infinite"
    assert eta.get(hashes["leeching"], 0) > 0, "the downloading torrent has no ETA"
    for key in ("paused_dl", "missing", "leeching"):
        assert hashes[key] not in completed, f"{key} is incomplete but has a completion time"
    for key in ("seeding", "tricky", "paused_up", "uploading"):
        assert completed.get(hashes[key]) == after.torrents[hashes[key]]["completion_on"]


def test_per_torrent_values_equal_qbittorrents_api(world: TorrentWorld, exporter: Exporter) -> None:
    def compare(before: ApiView, scraped: Exposition, after: ApiView) -> list[str]:
        problems: list[str] = []
        for metric, (where, field, kind, convert) in TORRENT_FIELDS.items():
            got = scraped.by_hash(metric)
            for torrent_hash in world.hashes.values():
                readings = []
                for view in (before, after):
                    source = view.torrents if where == "info" else view.properties
                    readings.append(convert(source[torrent_hash][field]))
                problem = check_value(
                    f"{metric}{{hash={torrent_hash[:8]}}}",
                    kind,
                    got.get(torrent_hash),
                    *readings,
                    tolerance=SESSION_TOLERANCE.get(metric, 0.0),
                )
                if problem:
                    problems.append(problem)
            extra = set(got) - set(world.hashes.values())
            if extra:
                problems.append(f"{metric}: series for unknown hashes {extra}")
        return problems

    before, _, _ = retry_comparison(world.qbt, exporter, compare)
    # the transfers are real: something moved both ways
    leech = before.torrents[world.hashes["leeching"]]
    upload = before.torrents[world.hashes["uploading"]]
    assert leech["downloaded"] > 0 and upload["uploaded"] > 0


def test_states_names_categories_tags_and_tracker(world: TorrentWorld, exporter: Exporter) -> None:
    def compare(before: ApiView, scraped: Exposition, after: ApiView) -> list[str]:
        problems: list[str] = []
        info = {s.labels["hash"]: s for s in scraped.named("qbittorrent_torrent_info")}
        states = scraped.named("qbittorrent_torrent_state")
        state_of = {s.labels["hash"]: s.labels["state"] for s in states}
        if len(states) != len(state_of) or any(s.value != 1 for s in states):
            problems.append(f"qbittorrent_torrent_state must be one series =1 per torrent: {states}")
        for torrent_hash, added in world.by_hash().items():
            then, now = before.torrents[torrent_hash], after.torrents[torrent_hash]
            sample = info.get(torrent_hash)
            if sample is None:
                problems.append(f"no qbittorrent_torrent_info for {added.spec.key}")
                continue
            expected = {
                "hash": torrent_hash,
                "name": now["name"],
                "category": now["category"],
                "tags": normalised_tags(now["tags"]),
                "tracker": tracker_host(now["tracker"]),
            }
            if sample.labels != expected or sample.value != 1:
                problems.append(
                    f"{added.spec.key}: info {sample.labels}={sample.value}, expected {expected}=1"
                )
            allowed = {normalise_state(then["state"]), normalise_state(now["state"])}
            if state_of.get(torrent_hash) not in allowed:
                problems.append(f"{added.spec.key}: state {state_of.get(torrent_hash)} not in {allowed}")
        return problems

    _, scraped, after = retry_comparison(world.qbt, exporter, compare)

    # The things the comparison above takes from qBittorrent are what the test put in:
    info = {s.labels["hash"]: s.labels for s in scraped.named("qbittorrent_torrent_info")}
    hashes = world.hashes
    assert info[hashes["tricky"]]["name"] == TRICKY_NAME  # quotes, backslash, Unicode, exact
    assert info[hashes["seeding"]]["tags"] == "alpha,zeta"
    assert info[hashes["seeding"]]["category"] == "linux-isos"
    assert info[hashes["tricky"]]["category"] == "" and info[hashes["tricky"]]["tags"] == ""
    assert info[hashes["seeding"]]["tracker"] == "127.0.0.1"  # host only, from a working tracker
    # never announced: no tracker on 4.x, the torrent's first one on 5.x (host only, either way)
    unannounced = "127.0.0.1" if world.qbt.api.traits().names_tracker_before_announce else ""
    assert info[hashes["paused_up"]]["tracker"] == unannounced
    state_of = {s.labels["hash"]: s.labels["state"] for s in scraped.named("qbittorrent_torrent_state")}
    assert state_of[hashes["paused_up"]] == "stoppedUP"  # 4.x pausedUP, normalised
    assert state_of[hashes["paused_dl"]] == "stoppedDL"  # 4.x pausedDL, normalised
    assert state_of[hashes["missing"]] == "missingFiles"
    assert after.torrents[hashes["paused_up"]]["state"] == world.qbt.api.traits().raw_state("stoppedUP")


def test_no_passkey_or_announce_url_anywhere(scrape: Exposition, world: TorrentWorld) -> None:
    assert PASSKEY not in scrape.text
    assert "announce" not in scrape.text
    assert f":{world.tracker.port}" not in scrape.text
    # the passkey really is in what qBittorrent reports, so the test above means something
    assert any(PASSKEY in t["tracker"] for t in world.qbt.api.torrents_info())


def test_torrent_counts_by_state_and_category(world: TorrentWorld, exporter: Exporter) -> None:
    def counts(view: ApiView) -> Counter[tuple[str, str]]:
        return Counter(
            (normalise_state(t["state"]) or "unknown", t["category"]) for t in view.torrents.values()
        )

    def compare(before: ApiView, scraped: Exposition, after: ApiView) -> list[str]:
        if counts(before) != counts(after):
            return [f"states moved during the scrape: {counts(before)} -> {counts(after)}"]
        expected = counts(after)
        categories = {category for _, category in expected}
        got = {
            (s.labels["state"], s.labels["category"]): s.value for s in scraped.named("qbittorrent_torrents")
        }
        want = {
            (state, cat): float(expected.get((state, cat), 0))
            for state in TORRENT_STATES
            for cat in categories
        }
        return [] if got == want else [f"qbittorrent_torrents {got}\n  expected {want}"]

    _, scraped, after = retry_comparison(world.qbt, exporter, compare)
    categories = {s.labels["category"] for s in scraped.named("qbittorrent_torrents")}
    assert categories == {"", "linux-isos", "movies"}
    assert sum(s.value for s in scraped.named("qbittorrent_torrents")) == len(after.torrents) == 9


def test_connection_status_has_all_three_with_one_set(scrape: Exposition, world: TorrentWorld) -> None:
    statuses = {s.labels["status"]: s.value for s in scrape.named("qbittorrent_connection_status")}
    assert set(statuses) == set(CONNECTION_STATUSES)
    assert sorted(statuses.values()) == [0.0, 0.0, 1.0]
    current = world.qbt.api.transfer_info()["connection_status"]
    assert statuses[current] == 1.0


def test_server_values_equal_qbittorrents_api(world: TorrentWorld, exporter: Exporter) -> None:
    def compare(before: ApiView, scraped: Exposition, after: ApiView) -> list[str]:
        problems = []
        for metric, (field, kind) in SERVER_FIELDS.items():

            def read(view: ApiView, field: str = field, metric: str = metric) -> float | None:
                raw = view.server_state.get(field)
                if raw is None:
                    return None
                if metric == "qbittorrent_free_disk_space_bytes":
                    return _never_if_negative(raw)
                return float(raw)

            problem = check_value(
                metric,
                kind,
                scraped.value(metric),
                read(before),
                read(after),
                SESSION_TOLERANCE.get(metric, 0.0),
            )
            if problem:
                problems.append(problem)
        return problems

    before, scraped, _ = retry_comparison(world.qbt, exporter, compare)
    assert scraped.value("qbittorrent_session_downloaded_bytes_total") > 0  # the leech is real
    assert scraped.value("qbittorrent_session_uploaded_bytes_total") > 0
    assert before.transfer["dl_info_data"] <= scraped.value("qbittorrent_session_downloaded_bytes_total")
    assert scraped.value("qbittorrent_download_limit_bytes_per_second") == harness.GLOBAL_LIMIT
    assert scraped.value("qbittorrent_free_disk_space_bytes") > 0


def test_exporter_own_metrics_on_a_healthy_qbittorrent(scrape: Exposition) -> None:
    assert scrape.value("qbittorrent_exporter_scrape_cut_short") == 0
    assert 0 < scrape.value("qbittorrent_exporter_scrape_duration_seconds") < 5
    assert scrape.value("qbittorrent_exporter_logins_total", outcome="ok") == 1
    assert scrape.value("qbittorrent_exporter_login_backoff_seconds") == 0
    outcomes = {s.labels["outcome"] for s in scrape.named("qbittorrent_exporter_requests_total")}
    # "not_found" is the legacy /version/api probe that tells v2 apart; nothing else failed
    assert outcomes <= {"ok", "not_found"}, outcomes
    build = scrape.named("qbittorrent_exporter_build_info")
    assert len(build) == 1 and build[0].value == 1


def test_promtool_check_metrics_finds_no_problem(scrape: Exposition, promtool: str) -> None:
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=scrape.text.encode("utf-8"),
        capture_output=True,
        timeout=60,
    )
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode == 0 and not output.strip(), output


# --------------------------------------------------------------------------------------------------
# qBittorrent down, restarted, or refusing the password
# --------------------------------------------------------------------------------------------------

DATA_PREFIXES = ("qbittorrent_torrent",)  # qbittorrent_torrents and every qbittorrent_torrent_*
SERVER_DATA = {spec.name for spec in CATALOGUE if spec.scope == "server" and spec.name != "qbittorrent_up"}
EXPORTER_OWN = {"qbittorrent_exporter_build_info", "qbittorrent_exporter_scrape_duration_seconds"}


def assert_down_exposition(scraped: Exposition) -> None:
    """qBittorrent is unreachable: up 0, the exporter's own metrics, and no data series at all."""
    assert scraped.value("qbittorrent_up") == 0
    names = scraped.names()
    data = sorted(n for n in names if n.startswith(DATA_PREFIXES) or n in SERVER_DATA)
    assert not data, f"data series while qBittorrent is down (zeros would look like resets): {data}"
    assert names >= EXPORTER_OWN, f"exporter metrics missing: {EXPORTER_OWN - names}"


def scrape_once(exporter: Exporter) -> Exposition:
    reply = exporter.scrape()
    assert reply.status_code == 200, reply.text[:500]
    return parse_exposition(reply.text)


def assert_answered_without_waiting(scraped: Exposition) -> None:
    """The exporter gave up on qBittorrent at once instead of waiting out a timeout: nothing cut short,
    no call counted as a timeout. (What "at once" costs in seconds is for benchmarks/, not a test.)"""
    assert scraped.value("qbittorrent_exporter_scrape_cut_short") == 0
    outcomes = {s.labels["outcome"] for s in scraped.named("qbittorrent_exporter_requests_total")}
    assert "timeout" not in outcomes, outcomes


def test_qbittorrent_stopped_then_restarted(
    scratch_qbittorrent: QBittorrent, start_exporter: Callable[..., Exporter]
) -> None:
    qbt = scratch_qbittorrent
    exporter = start_exporter(qbt.url)
    scraped = scrape_once(exporter)
    assert scraped.value("qbittorrent_up") == 1
    assert scraped.named("qbittorrent_torrent_info"), "no torrent series while qBittorrent is up"

    qbt.stop()
    for _ in range(2):  # and it keeps answering
        scraped = scrape_once(exporter)
        assert_answered_without_waiting(scraped)
        assert_down_exposition(scraped)
    assert scraped.value("qbittorrent_exporter_logins_total", outcome="ok") == 1
    assert requests.get(f"{exporter.url}/healthz", timeout=5).status_code == 200

    qbt.start()  # same profile and port: the same qBittorrent, with every session forgotten
    pid = exporter.process.pid

    def back_up() -> Exposition | None:
        again = scrape_once(exporter)
        return again if again.value("qbittorrent_up") == 1 else None

    scraped = wait_until(back_up, 30, interval=0.5, what="qbittorrent_up 1 after the restart")
    assert exporter.process.alive() and exporter.process.pid == pid  # not restarted
    assert scraped.value("qbittorrent_exporter_logins_total", outcome="ok") == 2  # logged in again
    assert scraped.named("qbittorrent_torrent_info")
    assert [s.labels["version"] for s in scraped.named("qbittorrent_version_info")] == [qbt.api.app_version()]


def test_nothing_listening(start_exporter: Callable[..., Exporter]) -> None:
    exporter = start_exporter(f"http://127.0.0.1:{harness.free_port()}", name="exporter-dead-port")
    for _ in range(3):
        scraped = scrape_once(exporter)
        assert_answered_without_waiting(scraped)
        assert_down_exposition(scraped)
    assert scraped.named("qbittorrent_version_info") == []
    outcomes = {s.labels["outcome"] for s in scraped.named("qbittorrent_exporter_requests_total")}
    assert "connection_error" in outcomes, outcomes


def test_wrong_password_logs_in_once_and_backs_off(
    scratch_qbittorrent: QBittorrent, start_exporter: Callable[..., Exporter]
) -> None:
    qbt = scratch_qbittorrent
    secret = "Wr0ng-pa55word-e2e"
    exporter = start_exporter(qbt.url, password=secret, name="exporter-wrong-password")
    for _ in range(6):
        scraped = scrape_once(exporter)
        assert_answered_without_waiting(scraped)
        assert_down_exposition(scraped)
        time.sleep(0.2)
    # one rejected login for all those scrapes: qBittorrent bans an IP after 5 failures
    assert scraped.value("qbittorrent_exporter_logins_total", outcome="rejected") == 1
    assert (scraped.value("qbittorrent_exporter_login_backoff_seconds") or 0) > 0
    assert scraped.value("qbittorrent_exporter_logins_total", outcome="ok") in (None, 0)
    # the password is neither exported nor logged
    assert secret not in scraped.text
    assert secret not in exporter.process.log_path.read_text(errors="replace")
    # and qBittorrent did not ban us: the right password still works from 127.0.0.1
    qbt.api.login()


class SteppingClock:
    """The client's clock: every reading is ``step`` seconds after the last, so each scrape comes
    after any short back-off has run out, and a few hundred scrapes cover days of back-off time."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_wrong_password_never_gets_the_exporter_banned(scratch_qbittorrent: QBittorrent) -> None:
    """Defect 2 against the real qBittorrent: it bans an address at its 5th failed login in a row.

    The exporter's client is built in-process with the shortest back-off and the most rejections
    it allows (SAFE_FAILURES), on a clock that jumps a minute per reading, and scraped for a few
    seconds: qBittorrent must see exactly ``max_rejections`` failed logins, and afterwards the
    right password from 127.0.0.1 must still log in (no ban).
    """
    qbt = scratch_qbittorrent
    secret = "Wr0ng-pa55word-e2e"
    stats = Stats()
    client = Client(
        qbt.url,
        ADMIN_USER,
        secret,
        timeout=5.0,
        stats=stats,
        clock=SteppingClock(60.0),
        login_backoff=1.0,
        login_backoff_max=2.0,
        max_rejections=SAFE_FAILURES,
    )
    scraper = Scraper(client, stats)
    scrapes = 0
    # Real time, on purpose: the back-off windows (1 s, 2 s) must pass for real against a real server
    # that bans on its own clock; the scrape count, not a duration, is what is asserted.
    until = time.monotonic() + 3.0
    try:
        while scrapes < 50 or time.monotonic() < until:
            result = scraper.scrape(Deadline(10.0))
            assert result.snapshot is None, "logged in with a wrong password"
            scrapes += 1
    finally:
        client.close()
    assert logins(stats, "rejected") == SAFE_FAILURES, (
        scrapes,
        series(stats, "qbittorrent_exporter_logins_total"),
    )
    assert logins(stats, "banned") == 0
    assert client.login_suspended() == {"rejected": True, "banned": False}
    failures = [line for line in qbt.own_log_text().splitlines() if "login failure" in line.lower()]
    assert len(failures) == SAFE_FAILURES, failures  # qBittorrent's own count agrees
    assert secret not in qbt.own_log_text()
    qbt.api.login()  # not banned: the right password still works from 127.0.0.1
