"""Byte-exact expositions for recorded qBittorrent 4.0.4 (legacy) and 4.5.2 (/api/v2) replies.

The exporter is run against the recordings through ``responses`` (no server), with a frozen clock
and Python version so that the output is the same on every machine. After an intended change,
refresh the files with ``UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and read the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import responses

from qbt_exporter.collectors import Collectors
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import render_text
from qbt_exporter.filters import Filters, parse
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.scraper import Scraper
from qbt_exporter.selection import Selection
from qbt_exporter.stats import Stats
from tests.recording import RECORDINGS, add, load, request_of
from tests.tools import promtool_check_metrics

GOLDEN = Path(__file__).parent / "golden"
BASE = "http://qbt.test:8080"

LEGACY = [
    "00-version-api-noauth",
    "04-login-ok",
    "02-version-qbittorrent-noauth",
    "43-transferInfo",
    "44-torrents-all",
    *sorted(p.stem for p in (RECORDINGS / "qbittorrent-4.0.4").glob("50-propertiesGeneral-*.http")),
    *sorted(p.stem for p in (RECORDINGS / "qbittorrent-4.0.4").glob("51-propertiesTrackers-*.http")),
]
V2 = [
    "01-legacy-version-api-probe",
    "07-login-ok",
    "08-app-version",
    "09-webapiVersion",
    "14-sync-maindata-rid0",
    *sorted(
        p.stem
        for p in (RECORDINGS / "qbittorrent-4.5.2").glob("*-properties-*.http")
        if "unknown" not in p.stem
    ),
    *sorted(p.stem for p in (RECORDINGS / "qbittorrent-4.5.2").glob("*-trackers-*.http")),
]


def scrape_recordings(
    version: str, names: list[str], monkeypatch: pytest.MonkeyPatch, selection: Selection | None = None
) -> str:
    """One scrape of the exporter against ``names``; unrecorded property calls answer 503."""
    monkeypatch.setattr("qbt_exporter.collectors.exporter.platform.python_version", lambda: "3.11.0")
    stats = Stats()
    client = Client(BASE, "admin", "adminadmin", stats=stats)
    scraper = Scraper(client, stats, selection=selection, clock=lambda: 1000.0)
    collector = Collectors(scraper, stats, clock=lambda: 1000.0)  # durations 0: the same everywhere
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for name in names:
            method, path = request_of(version, name)
            add(rsps, method, BASE + path, load(version, name))
        # qBittorrent 4.5.2's list has every value but wasted bytes and connections, so the
        # exporter asks each torrent's properties; the five recorded ones answer, the rest fail
        # and cost only their own property series (shown in the golden file).
        rsps.add("GET", re.compile(re.escape(BASE) + r"/api/v2/torrents/properties\?.*"), status=503)
        # The same for the trackers: the five recorded ones answer, the rest fail and cost only
        # their own tracker series.
        rsps.add("GET", re.compile(re.escape(BASE) + r"/api/v2/torrents/trackers\?.*"), status=503)
        text = render_text(collector.collect_within(Deadline(10))).decode()
    return text


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"run UPDATE_GOLDEN=1 python -m pytest {__file__}"


@pytest.mark.parametrize(
    ("golden", "version", "names"),
    [("legacy-4.0.4.prom", "4.0.4", LEGACY), ("v2-4.5.2.prom", "4.5.2", V2)],
)
def test_golden_exposition(
    golden: str, version: str, names: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = scrape_recordings(version, names, monkeypatch)
    assert "qbittorrent_up 1.0\n" in text
    check_golden(golden, text)
    promtool_check_metrics(text)


# Per-torrent series for the torrents in linux-isos or tagged public, not the stopped ones, at most 3.
FILTERED = Selection(Filters(parse("category=linux-isos; tag=public"), parse("status=stopped")), max=3)


def test_golden_filtered_exposition(monkeypatch: pytest.MonkeyPatch) -> None:
    """A filtered scrape: per-torrent series for 3 torrents, the totals exactly as unfiltered."""
    text = scrape_recordings("4.5.2", V2, monkeypatch, FILTERED)
    check_golden("v2-4.5.2-filtered.prom", text)
    promtool_check_metrics(text)
    unfiltered = scrape_recordings("4.5.2", V2, monkeypatch)

    def lines(exposition: str, prefixes: tuple[str, ...]) -> list[str]:
        return [line for line in exposition.splitlines() if line.startswith(prefixes)]

    totals = ("qbittorrent_torrents{", "qbittorrent_category_", "qbittorrent_tag_", "qbittorrent_tracker_")
    assert lines(text, totals) == lines(unfiltered, totals) != []
    assert len(lines(text, ("qbittorrent_torrent_info{",))) == 3
    assert len(lines(unfiltered, ("qbittorrent_torrent_info{",))) == 12
    assert 'qbittorrent_exporter_torrents_left_out{reason="filter"} 8.0' in text
    assert 'qbittorrent_exporter_torrents_left_out{reason="cap"} 1.0' in text

    def property_calls(exposition: str) -> float:
        calls = lines(exposition, ('qbittorrent_exporter_requests_total{endpoint="torrent_properties"',))
        return sum(float(line.rsplit(" ", 1)[1]) for line in calls)

    # only the kept torrents were asked for their properties
    assert (property_calls(text), property_calls(unfiltered)) == (3, 12)
