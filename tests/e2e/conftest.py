"""Fixtures for the end-to-end tests: one real qBittorrent world and exporter per server.

Every test that talks to qBittorrent runs once per server (``qbt_server``): this machine's own
qbittorrent-nox ("system") and the other Debian release's, from a chroot ("chroot"), so a 4.x and
a 5.x are both proved (see harness/servers.py for how the chroot is found). The tests expect what each
server reports about itself (app/version, app/webapiVersion) and its flavour's documented
differences (``ServerTraits``), never a pinned version.

Starting qBittorrent, adding torrents and waiting for their states costs several seconds, so the
watched qBittorrent, its peer, the fake tracker and the exporter in front of them are shared by
every test that only reads (one world per server, the next built when the first is torn down).
Tests that break things (stop qBittorrent, log in with a wrong password) get their own scratch
qBittorrent and exporter, so that no test depends on another's side effects.

When ``CI`` is set a missing qbittorrent-nox (either server) or prometheus is a failure, not a
skip: CI installs all of them, and a silently skipped end-to-end suite would prove nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.exporter import Exporter
from harness.processes import ManagedProcess
from harness.qbittorrent import (
    ADMIN_PASSWORD,
    QBittorrent,
)
from harness.servers import SERVER_KEYS, QbtServer
from tests import tools
from tests.e2e import harness
from tests.e2e.harness import PROMETHEUS, PROMTOOL, TorrentWorld
from tests.tools import require_server, require_tool


@pytest.fixture(scope="session", params=SERVER_KEYS)
def qbt_server(request: pytest.FixtureRequest) -> QbtServer:
    """One of the real qbittorrent-nox servers; each test using it runs once per server."""
    return require_server(request.param)


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for the session's programs: profiles, data, logs (kept for failures)."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def world(qbt_server: QbtServer, e2e_root: Path) -> Iterator[TorrentWorld]:
    """The watched qBittorrent with the fixed torrent mix, a peer instance and a fake tracker."""
    built = harness.build_world(e2e_root / f"world-{qbt_server.key}", server=qbt_server)
    try:
        yield built
    finally:
        built.stop()


@pytest.fixture(scope="session")
def exporter(world: TorrentWorld, e2e_root: Path) -> Iterator[Exporter]:
    """The exporter under test in front of the watched qBittorrent, with the right password."""
    server = world.qbt.server.key if world.qbt.server else "system"
    name = f"exporter-{server}"
    instance = Exporter(e2e_root / name, world.qbt.url, name=name)
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def new_qbittorrent(qbt_server: QbtServer, tmp_path: Path) -> Iterator[Callable[..., QBittorrent]]:
    """A factory for qBittorrents of the test's own (not started); every one is stopped afterwards."""
    made: list[QBittorrent] = []

    def new(name: str) -> QBittorrent:
        qbt = QBittorrent(tmp_path / name, f"{name}-{qbt_server.key}", server=qbt_server)
        made.append(qbt)
        return qbt

    try:
        yield new
    finally:
        for qbt in made:
            qbt.stop()


@pytest.fixture
def scratch_qbittorrent(new_qbittorrent: Callable[..., QBittorrent], tmp_path: Path) -> QBittorrent:
    """A qBittorrent of the test's own, with one seeding torrent, for tests that stop or ban it."""
    qbt = new_qbittorrent("qbittorrent-scratch")
    qbt.start()
    added = harness.add_mix(qbt, [harness.STATIC_MIX[0]], tmp_path / "qbittorrent-scratch")
    harness.wait_for_states(qbt, {t.hash: t.spec.expected_state for t in added.values()})
    return qbt


@pytest.fixture
def start_exporter(tmp_path: Path) -> Iterator[Callable[..., Exporter]]:
    """A factory for exporters of the test's own; every one it made is stopped afterwards."""
    made: list[Exporter] = []

    def start(url: str, password: str = ADMIN_PASSWORD, name: str = "exporter-scratch") -> Exporter:
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
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "qbt_server" in callspec.params:
        report.user_properties.append(("qbt_server", callspec.params["qbt_server"]))
    if not report.failed or item.get_closest_marker("e2e") is None:
        return
    first = item.stash.get(_FIRST_PROCESS, 0)
    for index, process in enumerate(ManagedProcess.started):
        if index >= first or process.alive():
            report.sections.append((f"log: {process.name}", process.log_tail(3000)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per server: which qbittorrent-nox it is, and how its tests ended.

    A run that skipped one server (locally, without the chroot) says so here, next to the reason,
    instead of leaving it to be noticed among the skips.
    """
    counts: dict[str, Counter[str]] = {key: Counter() for key in SERVER_KEYS}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            server = dict(getattr(report, "user_properties", ())).get("qbt_server")
            if server in counts and (report.when == "call" or outcome != "passed"):
                counts[server][outcome] += 1
    if not any(counts.values()):
        return
    terminalreporter.section("end-to-end tests per qBittorrent server")
    for key, outcomes in counts.items():
        server = tools.qbittorrent_server(key)
        what = server.version() if server.usable else f"unavailable: {server.problem}"
        tally = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())) or "no tests"
        terminalreporter.write_line(f"{key} ({what}): {tally}")
