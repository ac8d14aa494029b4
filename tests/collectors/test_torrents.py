from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from qbt_exporter.collectors import Collectors, registry
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import AsRegistry, render_text
from qbt_exporter.metrics import CATALOGUE
from qbt_exporter.qbittorrent.errors import Unreachable
from qbt_exporter.qbittorrent.model import TORRENT_STATES, Transfer
from qbt_exporter.scraper import Scraper
from qbt_exporter.stats import Stats
from tests.clocks import FakeClock
from tests.fakes import FakeClient, FakeFlavour, torrent


def scrape(flavour: FakeFlavour, *, per_torrent: bool = True) -> tuple[str, Stats]:
    """One scrape through prometheus_client's own renderer (the reference the fast one matches)."""
    stats = Stats()
    scraper = Scraper(FakeClient(), stats, detect=lambda *_: flavour)  # type: ignore[arg-type]
    names = registry.NAMES if per_torrent else registry.enabled(["torrents"])
    families = Collectors(scraper, stats, names=names).collect_within(Deadline(10))
    text = generate_latest(AsRegistry(families)).decode()  # type: ignore[arg-type]
    return text, stats


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_down_means_up_zero_and_no_data_series() -> None:
    text, _ = scrape(FakeFlavour(fail=Unreachable("refused")))
    got = samples(text)
    assert got["qbittorrent_up"] == [({}, 0.0)]
    data = {name for name in got if not name.startswith(("qbittorrent_exporter_", "qbittorrent_up"))}
    assert data == set()
    assert "qbittorrent_exporter_build_info" in got


def test_every_state_is_counted_for_every_category() -> None:
    flavour = FakeFlavour(torrents=[torrent(1, "downloading", category="linux"), torrent(2, "stoppedUP")])
    got = samples(scrape(flavour)[0])["qbittorrent_torrents"]
    assert len(got) == 2 * len(TORRENT_STATES)
    counts = {(labels["category"], labels["state"]): value for labels, value in got}
    assert counts[("linux", "downloading")] == 1 and counts[("", "stoppedUP")] == 1
    assert counts[("linux", "stoppedUP")] == 0 and counts[("", "error")] == 0


def test_unknown_values_are_absent_not_zero() -> None:
    flavour = FakeFlavour(
        transfer=Transfer(connection_status="firewalled", dht_nodes=None, download_speed=0.0),
        torrents=[torrent(1, eta=None, ratio=None, completed=None)],
    )
    got = samples(scrape(flavour, per_torrent=True)[0])
    assert "qbittorrent_dht_nodes" not in got
    assert got["qbittorrent_download_speed_bytes_per_second"] == [({}, 0.0)]
    assert "qbittorrent_torrent_eta_seconds" not in got
    assert "qbittorrent_torrent_completed_timestamp_seconds" not in got
    status = {labels["status"]: value for labels, value in got["qbittorrent_connection_status"]}
    assert status == {"connected": 0.0, "firewalled": 1.0, "disconnected": 0.0}


def test_names_with_quotes_backslashes_newlines_and_unicode_round_trip() -> None:
    name = 'He said "hi" \\ back\nline two Ünïcødé 日本語'
    text, _ = scrape(FakeFlavour(torrents=[torrent(1, name=name)]))
    info = samples(text)["qbittorrent_torrent_info"]
    assert info[0][0]["name"] == name
    assert '\\"hi\\" \\\\ back\\nline two' in text


def test_per_torrent_series_can_be_turned_off() -> None:
    got = samples(scrape(FakeFlavour(torrents=[torrent(1)]), per_torrent=False)[0])
    assert not [name for name in got if name.startswith("qbittorrent_torrent_")]
    assert len(got["qbittorrent_torrents"]) == len(TORRENT_STATES)


def test_every_emitted_metric_is_in_the_catalogue() -> None:
    flavour = FakeFlavour(
        torrents=[torrent(1, eta=5.0, ratio=1.0, completed=1.0, last_activity=2.0, added=1.0)],
        transfer=Transfer(
            connection_status="connected",
            dht_nodes=1,
            alltime_downloaded=5.0,
            free_disk_space=1.0,
            alt_speed_limits=True,
        ),
    )
    text, _ = scrape(flavour)
    families = {fam.name for fam in text_string_to_metric_families(text)}
    catalogue = {row.name.removesuffix("_total") for row in CATALOGUE}
    assert families <= catalogue
    # The per-torrent values the fake provides all appear.
    for expected in (
        "qbittorrent_torrent_eta_seconds",
        "qbittorrent_torrent_wasted_bytes_total",
        "qbittorrent_alt_speed_limits_enabled",
        "qbittorrent_free_disk_space_bytes",
    ):
        assert expected in samples(text)


def test_a_torrent_without_a_hash_counts_in_the_totals_and_has_no_series() -> None:
    """The flavour keeps a torrent whose hash was unusable with hash "": it is in qBittorrent's list,
    so qbittorrent_torrents counts it, but it has no identity for a per-torrent series (an empty
    hash label would read as a torrent) and no properties are asked for it."""
    anonymous = torrent(2, "downloading", hash="", name="", category="linux")
    flavour = FakeFlavour(torrents=[torrent(1), anonymous])
    got = samples(scrape(flavour)[0])
    counts = {(labels["category"], labels["state"]): value for labels, value in got["qbittorrent_torrents"]}
    assert counts[("linux", "downloading")] == 1 and counts[("", "stalledUP")] == 1
    hashes = {labels["hash"] for name, rows in got.items() for labels, _ in rows if "hash" in labels}
    assert hashes == {torrent(1).hash}
    assert flavour.property_calls == [torrent(1).hash]


def test_each_scrape_renders_its_own_values_whatever_the_scrapes_before() -> None:
    """A renderer that kept anything from one scrape to the next (a label, a value's text) must never
    serve it stale: one exporter renders a library whose values change, whose torrents are renamed
    (to names that need escaping), removed and re-added, exactly as a fresh exporter and
    prometheus_client render each scrape. Over 64 torrents, so that repeating columns are written
    by the path that writes each distinct value once."""
    library = [torrent(n, seeds=n % 3, size=10**6 * n, upload_speed=0) for n in range(1, 101)]
    scrapes = [
        library,
        [
            t if t.hash != library[4].hash else torrent(5, seeds=7, size=1.5, upload_speed=-0.0)
            for t in library
        ],
        [torrent(n, name='re"named\\ \n', seeds=n % 3, size=10**6 * n) for n in range(1, 101) if n != 9],
        [*library[:8], torrent(9, seeds=0, size=0.0, upload_speed=0), *library[9:]],
    ]
    flavour = FakeFlavour()
    stats = Stats()
    scraper = Scraper(FakeClient(), stats, detect=lambda *_: flavour, clock=FakeClock())  # type: ignore[arg-type]
    kept = Collectors(scraper, stats, clock=lambda: 0.0)
    for torrents in scrapes:
        flavour.torrents = torrents
        families = kept.collect_within(Deadline(10))
        fresh_stats = Stats()
        fresh_scraper = Scraper(FakeClient(), fresh_stats, detect=lambda *_: flavour, clock=FakeClock())  # type: ignore[arg-type]
        fresh = Collectors(fresh_scraper, fresh_stats, clock=lambda: 0.0).collect_within(Deadline(10))
        text = render_text(families).decode()
        assert text == generate_latest(AsRegistry(families)).decode()  # type: ignore[arg-type]
        assert _per_torrent(text) == _per_torrent(render_text(fresh).decode())
        sizes = {labels["hash"]: value for labels, value in samples(text)["qbittorrent_torrent_size_bytes"]}
        assert sizes == {t.hash: float(t.size) for t in torrents}  # type: ignore[arg-type]


def _per_torrent(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("qbittorrent_torrent_")]
