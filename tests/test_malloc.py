"""glibc's mmap threshold fixed at start-up: a large block freed after a larger one goes back to the
system instead of staying in the process's resident memory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from qbt_exporter import cli, malloc

# A 24 MiB block freed (glibc then raises its threshold to 24 MiB, unless fixed), then 16 MiB
# written and freed under a small block that pins the top of the heap: the RSS it leaves behind.
_PROGRAM = """
import sys
from qbt_exporter import malloc
def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
print(malloc.hand_back_large_blocks() if sys.argv[1] == "fixed" else "-")
first = bytearray(24 << 20)
first[::4096] = b"x" * len(first[::4096])
del first
base = rss_kib()
second = bytearray(16 << 20)
second[::4096] = b"y" * len(second[::4096])
pinned = [bytes(200) for _ in range(2000)]
del second
print(rss_kib() - base)
"""


def _kept_kib(mode: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PROGRAM, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stdout.split()
    return out[0], int(out[1])


def test_a_freed_large_block_leaves_the_resident_memory() -> None:
    said, kept = _kept_kib("fixed")
    assert said == "True" and kept < 4 * 1024
    _, kept_by_default = _kept_kib("default")  # the same without it: glibc keeps the 16 MiB
    assert kept_by_default > 12 * 1024


def test_the_environments_threshold_wins() -> None:
    said, _ = _kept_kib("fixed", {malloc.ENVIRONMENT: "65536"})
    assert said == "False"


def test_start_up_fixes_the_threshold_before_anything_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` calls it right after reading the flags: here the call stops ``main`` before it
    builds the exporter, which proves both that and the order."""

    class Called(Exception):
        pass

    def called() -> bool:
        raise Called

    monkeypatch.setattr(malloc, "hand_back_large_blocks", called)
    monkeypatch.setattr(cli.logs, "setup", lambda *args: None)  # the test run's logging stays as it is
    monkeypatch.setattr(cli, "build_service", lambda *args: pytest.fail("built before"))
    with pytest.raises(Called):
        cli.main(["--qbittorrent.url", "http://127.0.0.1:9"])
