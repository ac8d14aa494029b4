"""Fixtures for the end-to-end tests: one real qBittorrent world and exporter for the whole session.

Starting qBittorrent, adding torrents and waiting for their states costs several seconds, so the
watched qBittorrent, its peer, the fake tracker and the exporter in front of them are shared by
every test that only reads. Tests that break things (stop qBittorrent, log in with a wrong password)
get their own scratch qBittorrent and exporter, so that no test depends on another's side effects.

When ``CI`` is set a missing qbittorrent-nox or prometheus is a failure, not a skip: CI installs
both, and a silently skipped end-to-end suite would prove nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import harness
from tests.e2e.harness import (
    PROMETHEUS,
    PROMTOOL,
    QBITTORRENT_NOX,
    Exporter,
    ManagedProcess,
    QBittorrent,
    TorrentWorld,
)
from tests.tools import require_tool


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for the session's programs: profiles, data, logs (kept for failures)."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def world(e2e_root: Path) -> Iterator[TorrentWorld]:
    """The watched qBittorrent with the fixed torrent mix, a peer instance and a fake tracker."""
    require_tool(QBITTORRENT_NOX)
    built = harness.build_world(e2e_root / "world")
    try:
        yield built
    finally:
        built.stop()


@pytest.fixture(scope="session")
def exporter(world: TorrentWorld, e2e_root: Path) -> Iterator[Exporter]:
    """The exporter under test in front of the watched qBittorrent, with the right password."""
    instance = Exporter(e2e_root / "exporter", world.qbt.url)
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def scratch_qbittorrent(tmp_path: Path) -> Iterator[QBittorrent]:
    """A qBittorrent of the test's own, with one seeding torrent, for tests that stop or ban it."""
    require_tool(QBITTORRENT_NOX)
    qbt = QBittorrent(tmp_path / "scratch-qbt", "qbittorrent-scratch")
    try:
        qbt.start()
        added = harness.add_mix(qbt, [harness.STATIC_MIX[0]], tmp_path / "scratch-qbt")
        harness.wait_for_states(qbt, {t.hash: t.spec.expected_state for t in added.values()})
        yield qbt
    finally:
        qbt.stop()


@pytest.fixture
def start_exporter(tmp_path: Path) -> Iterator[object]:
    """A factory for exporters of the test's own; every one it made is stopped afterwards."""
    made: list[Exporter] = []

    def start(url: str, password: str = harness.ADMIN_PASSWORD, name: str = "exporter-scratch") -> Exporter:
        instance = Exporter(tmp_path / name, url, password=password, name=name)
        made.append(instance)
        instance.start()
        return instance

    try:
        yield start
    finally:
        for instance in made:
            instance.stop()


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool(PROMTOOL)


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return require_tool(PROMETHEUS)


_FIRST_PROCESS = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_FIRST_PROCESS] = len(ManagedProcess.started)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failing e2e test, add the end of the logs of the programs it could have talked to."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or item.get_closest_marker("e2e") is None:
        return
    first = item.stash.get(_FIRST_PROCESS, 0)
    for index, process in enumerate(ManagedProcess.started):
        if index >= first or process.alive():
            report.sections.append((f"log: {process.name}", process.log_tail(3000)))
