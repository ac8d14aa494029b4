"""--torrents.include against each real qBittorrent (issue 11): per-torrent series and properties calls
for exactly the torrents of one category, and group totals that match qBittorrent's own list.

The expected totals are computed here from ``torrents/info`` as qBittorrent returns it (tags split on
", ", the tracker URL reduced to its host with urllib), not with the exporter's own code. Only values
that do not move while the test runs are compared exactly (sizes, counts); the leeching torrent's
amount left changes every second, so amount left is compared for the groups without it.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.exporter import Exporter
from qbt_exporter.qbittorrent.flavours.common import normalise_state
from tests.e2e.harness import Exposition, TorrentWorld, parse_exposition

pytestmark = pytest.mark.e2e

CATEGORY = "linux-isos"


@pytest.fixture(scope="module")
def filtered_exporter(world: TorrentWorld, e2e_root: Path) -> Iterator[Exporter]:
    server = world.qbt.server.key if world.qbt.server else "system"
    name = f"exporter-filtered-{server}"
    instance = Exporter(
        e2e_root / name, world.qbt.url, name=name, extra_args=["--torrents.include", f"category={CATEGORY}"]
    )
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


def scrape(exporter: Exporter) -> Exposition:
    reply = exporter.scrape()
    assert reply.status_code == 200, reply.text[:500]
    return parse_exposition(reply.text)


def groups_of(torrent: dict[str, Any]) -> dict[str, list[str]]:
    tags = [tag.strip() for tag in torrent["tags"].split(",") if tag.strip()] if torrent["tags"] else []
    return {
        "category": [torrent["category"]],
        "tag": sorted(set(tags)) or [""],
        "tracker": [urlsplit(torrent["tracker"]).hostname or "" if torrent["tracker"] else ""],
    }


def expected_totals(info: list[dict[str, Any]]) -> dict[str, Any]:
    size: dict[tuple[str, str], float] = defaultdict(float)
    counts: Counter[tuple[str, str, str]] = Counter()
    for torrent in info:
        for dimension, names in groups_of(torrent).items():
            for name in names:
                size[(dimension, name)] += torrent["size"]
                counts[(dimension, name, normalise_state(torrent["state"]) or "unknown")] += 1
    return {"size": dict(size), "counts": dict(counts)}


def scraped_totals(scraped: Exposition) -> dict[str, Any]:
    size: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str, str], int] = {}
    for dimension in ("category", "tag", "tracker"):
        for sample in scraped.named(f"qbittorrent_{dimension}_size_bytes"):
            size[(dimension, sample.labels[dimension])] = sample.value
        family = "qbittorrent_torrents" if dimension == "category" else f"qbittorrent_{dimension}_torrents"
        for sample in scraped.named(family):
            if sample.value:
                counts[(dimension, sample.labels[dimension], sample.labels["state"])] = int(sample.value)
    return {"size": size, "counts": counts}


def test_a_category_filter_keeps_exactly_its_torrents_and_the_totals_stay_whole(
    world: TorrentWorld, filtered_exporter: Exporter, exporter: Exporter
) -> None:
    mismatch = ""
    for _attempt in range(4):  # a state may change between qBittorrent's list and the scrape
        before = world.qbt.api.torrents_info()
        scraped = scrape(filtered_exporter)
        unfiltered = scrape(exporter)
        after = world.qbt.api.torrents_info()
        expected = expected_totals(after)
        if expected_totals(before) == expected == scraped_totals(scraped):
            break
        mismatch = f"expected {expected}\nscraped {scraped_totals(scraped)}"
        time.sleep(0.5)
    else:
        pytest.fail(f"group totals differ from qBittorrent's list:\n{mismatch}")

    wanted = {t["hash"] for t in after if t["category"] == CATEGORY}
    assert len(wanted) == 3  # seeding, missing, uploading
    assert set(scraped.by_hash("qbittorrent_torrent_info")) == wanted
    assert set(scraped.by_hash("qbittorrent_torrent_size_bytes")) == wanted
    left_out = {s.labels["reason"]: s.value for s in scraped.named("qbittorrent_exporter_torrents_left_out")}
    assert left_out == {"filter": len(after) - len(wanted), "cap": 0}
    (info,) = scraped.named("qbittorrent_exporter_torrents_filter_info")
    assert info.labels == {"include": f"category={CATEGORY}", "exclude": "", "max": ""}
    # the group totals are the same as the unfiltered exporter's (sizes and counts do not move)
    assert scraped_totals(unfiltered) == scraped_totals(scraped)

    # amount left where nothing is downloading: the leeching torrent (no category, tag "peer") moves
    leeching = next(t for t in after if t["hash"] == world.hashes["leeching"])
    moving = {(d, n) for d, names in groups_of(leeching).items() for n in names}
    left: dict[tuple[str, str], float] = defaultdict(float)
    for torrent in after:
        for dimension, names in groups_of(torrent).items():
            for name in names:
                left[(dimension, name)] += torrent["amount_left"]
    for dimension in ("category", "tag", "tracker"):
        for sample in scraped.named(f"qbittorrent_{dimension}_amount_left_bytes"):
            key = (dimension, sample.labels[dimension])
            if key not in moving:
                assert sample.value == left[key], key


def test_properties_are_asked_only_for_the_kept_torrents(filtered_exporter: Exporter) -> None:
    scraped = scrape(filtered_exporter)
    calls = sum(
        s.value
        for s in scraped.named("qbittorrent_exporter_requests_total")
        if s.labels["endpoint"] == "torrent_properties"
    )
    refreshes = sum(s.value for s in scraped.named("qbittorrent_exporter_torrent_properties_refreshes_total"))
    assert calls == refreshes  # every properties call was one of the pass's own
    new = scraped.value("qbittorrent_exporter_torrent_properties_refreshes_total", reason="new") or 0
    assert new <= 3  # at most once per kept torrent (none on a version whose list has every value)
