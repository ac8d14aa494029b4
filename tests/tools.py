"""The external programs some tests need (promtool, qbittorrent-nox, prometheus).

CI installs them (``.ci/run``), so there a missing one is a failure; on a developer's machine
without them the test is skipped, with the apt-get line that brings them. Which qbittorrent-nox
servers exist (this machine's and the chroot's) is ``harness.servers``' business, shared with the
benchmarks; this module only turns "not usable" into a skip or a failure.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from harness.servers import QbtServer, find_tool, qbittorrent_server


def missing(message: str) -> None:
    """Fail under CI (which installs everything, so a skip would prove nothing), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {message}", pytrace=False)
    pytest.skip(message)


def require_tool(name: str) -> str:
    """The path of ``name``; fails under CI, skips elsewhere, when it is not installed."""
    found = find_tool(name)
    if found:
        return found
    missing(f"{name} is not installed (apt-get install -y qbittorrent-nox prometheus)")
    raise AssertionError("unreachable")


def promtool_check_metrics(text: str) -> None:
    """``promtool check metrics`` must accept ``text`` without a single complaint."""
    result = subprocess.run(
        [require_tool("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr
    )


def require_server(key: str) -> QbtServer:
    """The usable server ``key``; under CI a missing one fails the test, elsewhere it skips it."""
    server = qbittorrent_server(key)
    if not server.usable:
        missing(f"the {key} qBittorrent is unavailable: {server.problem}")
    return server
