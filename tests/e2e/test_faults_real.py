"""The fault proxy in front of a real qBittorrent: transparent when no fault is set, and the
exporter keeps its promises when the real server's replies are broken on the way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from harness.qbittorrent import (
    ADMIN_PASSWORD,
)
from qbt_exporter.cli import build
from qbt_exporter.config import parse
from qbt_exporter.simulator.faults import Drip, FaultProxy, Hang, JsonEdit
from tests.e2e.harness import TorrentWorld
from tests.test_hostile import Exporter, down, healthy, running

pytestmark = pytest.mark.e2e

MAINDATA = "^/api/v2/sync/maindata$"


@contextmanager
def exporter_through_proxy(world: TorrentWorld) -> Iterator[Exporter]:
    with FaultProxy(world.qbt.url) as proxy:
        config = parse(
            ["--qbittorrent.url", proxy.url, "--qbittorrent.timeout", "2s"],
            environ={"QBITTORRENT_PASSWORD": ADMIN_PASSWORD},
        )
        client, app = build(config)
        with running(app, client, proxy) as exp:
            yield exp


def test_the_proxy_is_transparent_in_front_of_a_real_qbittorrent(world: TorrentWorld) -> None:
    with exporter_through_proxy(world) as exp:
        got = healthy(exp)
        assert got.hashes("qbittorrent_torrent_info") == set(world.hashes.values())
        assert [lab["api"] for lab in got.labels("qbittorrent_version_info")] == ["v2"]
        assert exp.proxy.count(MAINDATA) >= 1 and exp.proxy.upstream_failures == 0


def test_a_hanging_real_maindata_costs_one_budget(world: TorrentWorld) -> None:
    with exporter_through_proxy(world) as exp:
        healthy(exp)
        exp.fault(MAINDATA, Hang(after_headers=True))
        got = exp.scrape()
        down(got)
        assert got.requests("maindata", "timeout") == 1
        exp.proxy.clear()
        healthy(exp)


def test_a_huge_number_in_real_server_state_costs_only_that_series(world: TorrentWorld) -> None:
    with exporter_through_proxy(world) as exp:
        before = healthy(exp)

        def edit(doc: dict[str, Any]) -> None:
            doc["server_state"]["dl_info_speed"] = 10**400

        exp.fault(MAINDATA, JsonEdit(edit))
        got = healthy(exp)
        assert set(before.samples) - set(got.samples) == {"qbittorrent_download_speed_bytes_per_second"}
        assert got.invalid("maindata") == before.invalid("maindata") + 1


def test_a_dripping_real_maindata_costs_one_budget(world: TorrentWorld) -> None:
    with exporter_through_proxy(world) as exp:
        healthy(exp)
        exp.fault(MAINDATA, Drip(per_interval=16, interval=0.05))
        got = exp.scrape()
        down(got)
        assert got.requests("maindata", "timeout") == 1
