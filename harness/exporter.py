"""The exporter as its users run it: ``python -m qbt_exporter`` on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from harness.processes import REPO_ROOT, ManagedProcess, free_port, wait_until
from harness.qbittorrent import ADMIN_PASSWORD, ADMIN_USER

# --------------------------------------------------------------------------------------------------
# the exporter
# --------------------------------------------------------------------------------------------------


class Exporter:
    """``python -m qbt_exporter`` on a free port in front of one qBittorrent URL."""

    def __init__(
        self,
        root: Path,
        qbittorrent_url: str,
        password: str = ADMIN_PASSWORD,
        name: str = "exporter",
        extra_args: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # the caller's own exporter settings (QBITTORRENT_*, QBT_EXPORTER_*) must not leak in
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QBITTORRENT_", "QBT_EXPORTER_"))}
        env["QBITTORRENT_PASSWORD"] = password
        env["PYTHONUNBUFFERED"] = "1"
        argv = [
            sys.executable,
            "-m",
            "qbt_exporter",
            "--qbittorrent.url",
            qbittorrent_url,
            "--qbittorrent.username",
            ADMIN_USER,
            "--web.listen-address",
            f"127.0.0.1:{self.port}",
            *(extra_args or []),
        ]
        self.process = ManagedProcess(name, argv, root / f"{name}.log", env=env, cwd=REPO_ROOT)

    def start(self, timeout: float = 20.0) -> None:
        self.process.start()

        def healthy() -> bool:
            self.process.check_alive()
            return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200

        wait_until(
            healthy, timeout, what=f"exporter /healthz on {self.url}", on_timeout=self.process.log_tail
        )

    def scrape(self, timeout: float = 15.0, headers: dict[str, str] | None = None) -> requests.Response:
        return requests.get(f"{self.url}/metrics", timeout=timeout, headers=headers)

    def stop(self) -> None:
        self.process.stop()

    def log_tail(self) -> str:
        return self.process.log_tail()


def exporter_ready() -> tuple[bool, str]:
    """Whether ``python -m qbt_exporter --help`` works yet (the exporter is written in parallel)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "qbt_exporter", "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=REPO_ROOT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, repr(exc)
    return done.returncode == 0, (done.stdout + done.stderr)[-2000:]
