"""qBittorrent upgraded in place: the same URL first answers as a legacy 4.0.4, then as a real
/api/v2 qbittorrent-nox (each server in turn). The exporter must notice the change of answers and
switch flavours by itself, without a restart, and without inventing data while qBittorrent is down
in between."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from harness.exporter import Exporter
from harness.qbittorrent import (
    ADMIN_PASSWORD,
    QBittorrent,
)
from qbt_exporter.simulator import Simulator, SimulatorConfig
from tests.e2e.harness import parse_exposition


@pytest.mark.e2e
def test_legacy_then_v2_on_the_same_url(
    new_qbittorrent: Callable[[str], QBittorrent], start_exporter: Callable[..., Exporter]
) -> None:
    qbt = new_qbittorrent("upgraded")  # not started: its port is free
    sim = Simulator(
        SimulatorConfig(torrents=5, latency=False, churn=False, password=ADMIN_PASSWORD),
        port=qbt.web_port,
    )
    sim.start()
    try:
        exporter = start_exporter(qbt.url)
        legacy = parse_exposition(exporter.scrape().text)
    finally:
        sim.stop()
    assert legacy.value("qbittorrent_version_info", version="v4.0.4", api="legacy", api_version="17") == 1
    assert len(legacy.named("qbittorrent_torrent_info")) == 5

    down = parse_exposition(exporter.scrape().text)  # between the two servers: nothing listens
    assert down.value("qbittorrent_up") == 0 and not down.named("qbittorrent_torrent_info")

    qbt.start()
    version, webapi = qbt.api.app_version(), qbt.api.webapi_version()
    deadline = time.monotonic() + 30
    while True:
        after = parse_exposition(exporter.scrape().text)
        if after.value("qbittorrent_up") == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert after.value("qbittorrent_up") == 1, exporter.log_tail()
    assert after.value("qbittorrent_version_info", version=version, api="v2", api_version=webapi) == 1
    assert len(after.named("qbittorrent_version_info")) == 1
    assert not after.named("qbittorrent_torrent_info")  # the new qBittorrent has no torrents yet
