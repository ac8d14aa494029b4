"""One scrape through the real exporter, with the replies of chosen endpoints replaced.

The path is the one ``/metrics`` takes: the real ``Client`` (its JSON decoding included) against
``responses``, the real ``Scraper`` and flavour, ``Collectors.families``, and both renderers
(``render_chunks`` for the text format, ``AsRegistry`` + prometheus_client's OpenMetrics encoder).
Every other reply is the recorded one. Used by the tests of odd values and by the property tests.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import responses
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.parser import text_string_to_metric_families

from qbt_exporter.collectors import Collectors
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import AsRegistry, Family, render_chunks
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.scraper import Scraper, ScrapeResult
from qbt_exporter.stats import Stats
from tests.recording import Recording, add, request_of
from tests.recording import load as load_file

BASE = "http://qbt.test:8080"


@functools.cache
def load(version: str, name: str) -> Recording:
    """A recording, read once: the property tests scrape hundreds of times."""
    return load_file(version, name)


@functools.cache
def route(version: str, name: str) -> tuple[str, str]:
    return request_of(version, name)


@dataclass(frozen=True)
class Flavour:
    """The recordings of one qBittorrent and where its replaceable replies live."""

    version: str
    fixed: tuple[str, ...]  # detection, login, version: always the recorded reply
    bodies: dict[str, tuple[str, str]]  # endpoint -> (URL pattern, recording it starts from)

    def recorded(self, endpoint: str) -> bytes:
        return load(self.version, self.bodies[endpoint][1]).body

    def recorded_json(self, endpoint: str) -> Any:
        return load(self.version, self.bodies[endpoint][1]).json()


LEGACY = Flavour(
    "4.0.4",
    ("00-version-api-noauth", "04-login-ok", "02-version-qbittorrent-noauth"),
    {
        "transfer_info": (re.escape(BASE + "/query/transferInfo"), "43-transferInfo"),
        "torrents": (re.escape(BASE + "/query/torrents"), "44-torrents-all"),
        "torrent_properties": (
            re.escape(BASE + "/query/propertiesGeneral/") + ".*",
            "50-propertiesGeneral-alpha",
        ),
        "torrent_trackers": (
            re.escape(BASE + "/query/propertiesTrackers/") + ".*",
            "51-propertiesTrackers-alpha",
        ),
    },
)
V2 = Flavour(
    "4.5.2",
    ("01-legacy-version-api-probe", "07-login-ok", "08-app-version", "09-webapiVersion"),
    {
        "maindata": (re.escape(BASE + "/api/v2/sync/maindata") + r"(\?.*)?", "14-sync-maindata-rid0"),
        "torrent_properties": (
            re.escape(BASE + "/api/v2/torrents/properties") + r"\?.*",
            "25-properties-stalledUP",
        ),
        "torrent_trackers": (
            re.escape(BASE + "/api/v2/torrents/trackers") + r"\?.*",
            "26-trackers-stalledUP",
        ),
    },
)
FLAVOURS = {"legacy": LEGACY, "v2": V2}


@dataclass
class Outcome:
    result: ScrapeResult
    families: list[Family]
    stats: Stats
    text: str  # the text format, decoded strictly: it must be UTF-8
    openmetrics: str

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of every sample named ``name`` in the text format, as a scraper reads it."""
        return [
            (sample.labels, sample.value)
            for family in text_string_to_metric_families(self.text)
            for sample in family.samples
            if sample.name == name
        ]


class Exporter:
    """The exporter's scrape path for one qBittorrent, kept across scrapes (its properties cache too)."""

    def __init__(self, flavour: Flavour) -> None:
        self.flavour = flavour
        self.stats = Stats()
        self.client = Client(BASE, "admin", "adminadmin", stats=self.stats, timeout=2.0)
        self.scraper = Scraper(self.client, self.stats, clock=lambda: 1000.0)
        self.collector = Collectors(self.scraper, self.stats)

    def close(self) -> None:
        self.client.close()

    def scrape(self, bodies: dict[str, bytes], statuses: dict[str, int] | None = None) -> Outcome:
        """One scrape with ``bodies`` (endpoint -> reply body) instead of the recorded replies, and
        ``statuses`` (endpoint -> HTTP status) instead of 200. The same properties reply (and the same
        trackers reply) answers for every torrent. Raises whatever the exporter lets escape."""
        flavour = self.flavour
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            for name in flavour.fixed:
                method, path = route(flavour.version, name)
                add(rsps, method, BASE + path, load(flavour.version, name))
            for endpoint, (pattern, name) in flavour.bodies.items():
                recording = load(flavour.version, name)
                rsps.add(
                    "GET",
                    re.compile(pattern),
                    body=bodies.get(endpoint, recording.body),
                    status=(statuses or {}).get(endpoint, 200),
                    content_type=recording.headers.get("content-type", "application/json"),
                )
            result = self.scraper.scrape(Deadline(10))
        families = self.collector.families(result)
        text = b"".join(render_chunks(families)).decode("utf-8")
        openmetrics = openmetrics_latest(AsRegistry(families)).decode("utf-8")  # type: ignore[arg-type]
        return Outcome(result, families, self.stats, text, openmetrics)


def scrape(flavour: Flavour, bodies: dict[str, bytes]) -> Outcome:
    """One scrape by a new exporter (see ``Exporter.scrape``)."""
    exporter = Exporter(flavour)
    try:
        return exporter.scrape(bodies)
    finally:
        exporter.close()
