"""Totals by category, tag and tracker host: right sums, and the same whatever the filters, the cap
or the per-torrent series say; and the filters' own effect on per-torrent series and calls."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from qbt_exporter.collectors import Collectors, registry
from qbt_exporter.collectors.groups import GroupsCollector
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import render_text
from qbt_exporter.filters import Filters, parse
from qbt_exporter.metrics import CATALOGUE
from qbt_exporter.qbittorrent.model import ServerInfo, Snapshot, TorrentProperties, Transfer
from qbt_exporter.scraper import Scraper, ScrapeResult
from qbt_exporter.selection import Selection
from qbt_exporter.stats import Stats
from tests.fakes import FakeClient, FakeFlavour, torrent

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]

LIBRARY = [
    torrent(1, "stalledUP", category="linux-isos", tags="hd,public", tracker="a.example", upload_speed=5.0),
    torrent(2, "downloading", category="movies", tags="hd", tracker="b.example", amount_left=70.0),
    torrent(3, "stoppedDL", category="movies", tracker="b.example", download_speed=3.0, amount_left=3000.0),
    torrent(4, "missingFiles", tags="public"),
    # unusable hash: no per-torrent series, but it is in qBittorrent's list and counts in the totals
    torrent(5, "stalledUP", hash="", category="movies", tags="hd", tracker="a.example"),
    # a list without all-time totals (before 3.3.11): no value to add
    torrent(6, "stalledUP", category="old", downloaded=None, uploaded=None),
]
GROUP_FAMILIES = {row.name for row in CATALOGUE if row.scope == "group"} | {"qbittorrent_torrents"}


def scrape(
    selection: Selection | None = None, names: tuple[str, ...] = registry.NAMES
) -> tuple[Samples, FakeFlavour]:
    """One scrape of LIBRARY with the collectors ``names``, wired as the CLI wires them."""
    flavour = FakeFlavour(torrents=list(LIBRARY))
    stats = Stats()
    enabled = registry.enabled(set(registry.NAMES) - set(names))
    scraper = Scraper(
        FakeClient(),  # type: ignore[arg-type]
        stats,
        properties="torrent_properties" in enabled,
        selection=selection,
        detect=lambda *_: flavour,  # type: ignore[arg-type,return-value]
    )
    families = Collectors(scraper, stats, names=enabled).collect_within(Deadline(5))
    out: Samples = {}
    for fam in text_string_to_metric_families(render_text(families).decode()):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out, flavour


def groups(got: Samples) -> Samples:
    return {name: values for name, values in got.items() if name in GROUP_FAMILIES}


def per_torrent_hashes(got: Samples) -> set[str]:
    return {dict(labels)["hash"] for labels in got.get("qbittorrent_torrent_info", {})}


def test_sums_by_category_tag_and_tracker() -> None:
    got, _ = scrape()
    size = {dict(k)["category"]: v for k, v in got["qbittorrent_category_size_bytes"].items()}
    assert size == {"linux-isos": 1000.0, "movies": 2000.0 + 3000.0 + 5000.0, "": 4000.0, "old": 6000.0}
    left = {dict(k)["tracker"]: v for k, v in got["qbittorrent_tracker_amount_left_bytes"].items()}
    assert left == {"b.example": 3070.0}  # no torrent elsewhere has a value: no series, not 0
    up = {dict(k)["tag"]: v for k, v in got["qbittorrent_tag_uploaded_bytes"].items()}
    # a torrent counts under each of its tags; untagged under ""; the one without a value adds nothing
    assert up == {"hd": 5.0 + 10.0 + 25.0, "public": 5.0 + 20.0, "": 15.0}
    downloaded = {dict(k)["category"]: v for k, v in got["qbittorrent_category_downloaded_bytes"].items()}
    assert "old" not in downloaded
    speed = {
        dict(k)["tracker"]: v for k, v in got["qbittorrent_tracker_upload_speed_bytes_per_second"].items()
    }
    assert speed == {"a.example": 5.0}  # the only torrent with a known upload speed
    counts = got["qbittorrent_tag_torrents"]
    assert counts[(("state", "stalledUP"), ("tag", "hd"))] == 2.0
    assert counts[(("state", "downloading"), ("tag", "public"))] == 0.0  # every state, 0 included
    tracker_counts = {dict(k)["tracker"] for k in got["qbittorrent_tracker_torrents"]}
    assert tracker_counts == {"", "a.example", "b.example"}


def test_group_totals_do_not_depend_on_filters_cap_or_per_torrent_series() -> None:
    plain, _ = scrape()
    filtered, flavour = scrape(Selection(Filters(parse("category=movies"), parse("status=stopped")), max=5))
    capped, _ = scrape(Selection(max=1))
    no_torrents, no_calls = scrape(names=("transfer", "groups", "exporter", "torrent_properties"))
    assert set(groups(plain)) == GROUP_FAMILIES
    assert groups(filtered) == groups(plain)
    assert groups(capped) == groups(plain)
    assert groups(no_torrents) == groups(plain)
    # the filter kept torrent 2 only (3 is stopped, 5 has no hash), and only it was asked for properties
    assert per_torrent_hashes(filtered) == {torrent(2).hash}
    assert flavour.property_calls == [torrent(2).hash]
    assert per_torrent_hashes(no_torrents) == set() and no_calls.property_calls == []


def test_groups_come_from_the_list_as_listed_not_from_per_torrent_calls() -> None:
    """A value only a properties call filled must not reach the totals: with filters on, only the
    kept torrents get those calls, so the totals would change with the filters."""
    listed = torrent(1, downloaded=None)
    result = ScrapeResult(
        Snapshot(ServerInfo("v4.0.4", "legacy", "17"), Transfer(), [listed]),
        selected=[listed.with_properties(TorrentProperties(downloaded=99.0))],
    )
    families = {fam.spec.name: list(fam.rows) for fam in GroupsCollector().collect(result)}
    assert families["qbittorrent_category_downloaded_bytes"] == []


def test_filter_info_and_left_out_counts() -> None:
    got, _ = scrape(Selection(Filters(parse("category=movies"), parse("status=stopped")), max=5))
    (labels,) = got["qbittorrent_exporter_torrents_filter_info"]
    assert dict(labels) == {"include": "category=movies", "exclude": "status=stopped", "max": "5"}
    left_out = {dict(k)["reason"]: v for k, v in got["qbittorrent_exporter_torrents_left_out"].items()}
    assert left_out == {"filter": 4.0, "cap": 0.0}  # 5 identified torrents, 1 kept
    plain, _ = scrape()
    (labels,) = plain["qbittorrent_exporter_torrents_filter_info"]
    assert dict(labels) == {"include": "", "exclude": "", "max": ""}
    assert set(plain["qbittorrent_exporter_torrents_left_out"].values()) == {0.0}


def test_sums_add_in_the_lists_order_whatever_the_tag_combinations() -> None:
    """A float sum depends on its order (1e16 + 1.0 is 1e16): each group adds its torrents in
    qBittorrent's list order, also for a tag gathered from several tag combinations ("a" from
    "a" and "a,b"), as the renderer of ``sum()`` over the group would."""
    sizes = [1e16, 1.0, -1e16, 1.0]
    tags = ["a", "a,b", "a", "b,a"]
    torrents = [
        torrent(n, tags=tag, size=size) for n, (tag, size) in enumerate(zip(tags, sizes, strict=True), 1)
    ]
    result = ScrapeResult(Snapshot(ServerInfo("v4.6.0", "v2", "2.9.3"), Transfer(), torrents))
    families = {fam.spec.name: list(fam.rows) for fam in GroupsCollector().collect(result)}
    assert ("a", sum(sizes)) in families["qbittorrent_tag_size_bytes"]  # 1e16 + 1 - 1e16 + 1 = 1.0
    assert ("b", 1.0 + 1.0) in families["qbittorrent_tag_size_bytes"]
    assert families["qbittorrent_category_size_bytes"] == [("", sum(sizes))]
