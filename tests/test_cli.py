"""The ``qbt-exporter`` command as a user runs it: a real process, real signals."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import requests

from qbt_exporter.simulator import Simulator, SimulatorConfig


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[str]) -> None:
    """Poll a real child process until it serves: real time cannot be faked across a process. The
    60 s is a hang-guard (a loaded machine may take seconds to start Python); polling ends at once."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("exporter did not become healthy")


def test_demo_serves_simulated_metrics_and_stops_cleanly_on_sigterm() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qbt_exporter",
            "--demo",
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--log.format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc)
        text = requests.get(url + "/metrics", timeout=30).text
        assert "qbittorrent_up 1.0" in text
        assert 'qbittorrent_version_info{api="v2",api_version="2.9.3",version="v4.6.7"} 1.0' in text
        # what the legacy demo could not show (issue 14): free disk space and the alt-speed switch
        assert re.search(r"^qbittorrent_free_disk_space_bytes \d", text, re.MULTILINE)
        assert re.search(r"^qbittorrent_alt_speed_limits_enabled [01]", text, re.MULTILINE)
        # the demo starts with 200 torrents and churns (about 2 added and 2 removed a minute), so the
        # count drifts with time: what must hold is that the series agree with the state counts
        listed = sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith("qbittorrent_torrents{")
        )
        assert text.count("qbittorrent_torrent_info{") == listed
        assert 180 <= listed <= 220
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert '"msg": "stopped"' in err
    assert "adminadmin" not in err


def test_listen_address_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "qbt_exporter", "--web.listen-address", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("qbt-exporter: error: --web.listen-address")


def test_sigterm_logs_out_of_qbittorrent_before_exiting() -> None:
    """Sessions left behind pile up in qBittorrent (never freed before 3.3.12): log out on the way out."""
    with Simulator(SimulatorConfig(torrents=3, latency=False, churn=False)) as sim:
        port = _free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qbt_exporter",
                "--qbittorrent.url",
                sim.url,
                "--web.listen-address",
                f"127.0.0.1:{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "QBITTORRENT_PASSWORD": "adminadmin"},
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, proc)
            assert "qbittorrent_up 1.0" in requests.get(url + "/metrics", timeout=30).text
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0
        assert sim.logins_ok == 1 and sim.requests_by_path["/logout"] == 1
