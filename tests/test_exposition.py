import math

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.utils import floatToGoString

from qbt_exporter import exposition
from qbt_exporter.collectors import Collectors
from qbt_exporter.exposition import AsRegistry, Family, render_text
from qbt_exporter.metrics import CATALOGUE, spec
from qbt_exporter.properties import PropertiesPass
from qbt_exporter.qbittorrent.model import ServerInfo, Snapshot, Transfer
from qbt_exporter.scraper import ScrapeResult
from qbt_exporter.stats import Stats
from tests.fakes import torrent

NASTY = ["plain", 'quote " inside', "back\\slash", "new\nline", "Ünïcødé 日本語", "", 'all \\" \n of them']


def _families() -> list[Family]:
    stats = Stats()
    stats.request("torrents", "ok")
    stats.request("torrents", "timeout")
    stats.login("ok")
    stats.invalid_value("torrents", 3)
    torrents = [
        torrent(
            n,
            name=NASTY[n % len(NASTY)],
            category=NASTY[(n + 1) % len(NASTY)],
            tags="a,b" if n % 2 else "",
            size=[0, 1, 1234567, 1e21, 2.5e-7, 123456789012345][n % 6],
            eta=None if n % 3 else 86400,
            ratio=9999.0,
            progress=1 / 3,
            wasted=n,
        )
        for n in range(1, 60)
    ]
    snap = Snapshot(
        ServerInfo("v4.0.4", "legacy", "17"),
        Transfer(
            connection_status="connected", dht_nodes=312, alltime_downloaded=8.5e12, alt_speed_limits=False
        ),
        torrents,
    )

    collectors = Collectors(None, stats)  # type: ignore[arg-type]  # families() never scrapes
    return collectors.families(ScrapeResult(snap, duration=0.1234, properties=PropertiesPass(max_age=12.5)))


def test_render_text_is_byte_identical_to_prometheus_client() -> None:
    families = _families()
    assert render_text(families) == generate_latest(AsRegistry(families))  # type: ignore[arg-type]


def test_special_floats_and_every_catalogue_row_render_identically() -> None:
    families = []
    for row in CATALOGUE:
        fam = Family(row)
        for n, value in enumerate([0, -1.5, math.inf, -math.inf, math.nan, 1e-300, 7]):
            fam.add(value, **{label: f"{label}-{n}" for label in row.labels})
        families.append(fam)
    assert render_text(families) == generate_latest(AsRegistry(families))  # type: ignore[arg-type]


def test_openmetrics_from_the_same_families_is_valid() -> None:
    text = generate_openmetrics(AsRegistry(_families())).decode()  # type: ignore[arg-type]
    assert text.endswith("# EOF\n")
    assert 'qbittorrent_exporter_requests_total{endpoint="torrents",outcome="ok"} 1.0' in text


def test_counter_families_are_named_like_prometheus_client_would() -> None:
    fam = Family(spec("qbittorrent_session_downloaded_bytes_total"))
    fam.add(5)
    assert fam.to_metric().name == "qbittorrent_session_downloaded_bytes"
    assert b"# TYPE qbittorrent_session_downloaded_bytes_total counter\n" in render_text([fam])


@given(st.one_of(st.floats(), st.integers(min_value=-(2**63), max_value=2**64)))
@settings(max_examples=2000, deadline=None)
def test_fast_float_format_writes_what_prometheus_client_writes(value: float) -> None:
    assert exposition._go_float(value) == floatToGoString(value)


def test_the_fast_float_format_is_the_one_in_use() -> None:
    """It is chosen only when it agrees with the installed prometheus_client (checked at import)."""
    assert exposition._fmt is exposition._go_float
