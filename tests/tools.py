"""The external programs some tests need (promtool, qbittorrent-nox, prometheus).

CI installs them (``.ci/run``), so there a missing one is a failure; on a developer's machine
without them the test is skipped, with the apt-get line that brings them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def find_tool(name: str) -> str | None:
    """Where a program is: PATH first, then /usr/bin (a test runner may trim PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path("/usr/bin") / name
    return str(candidate) if candidate.exists() else None


def require_tool(name: str) -> str:
    """The path of ``name``; fails under CI, skips elsewhere, when it is not installed."""
    found = find_tool(name)
    if found:
        return found
    message = f"{name} is not installed (apt-get install -y qbittorrent-nox prometheus)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {message}", pytrace=False)
    pytest.skip(message)
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
