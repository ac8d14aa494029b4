"""``--config.file`` as a user runs it: a bad file stops start-up with exit 2 and one line; SIGHUP
reloads it in a running process, keeping the old modules when the new file is bad."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from qbt_exporter.simulator import Simulator, SimulatorConfig
from tests.e2e.harness import parse_exposition
from tests.test_cli import _free_port, _wait_healthy

HANG_GUARD = 60.0  # a loaded machine may take seconds; polling ends as soon as the reload shows


def test_a_bad_config_file_stops_start_up_with_one_line_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "qbt.yml"
    path.write_text("modules:\n  seedbox:\n    password: hunter2\n    targets: [qbt.lan]\n")
    done = subprocess.run(
        [sys.executable, "-m", "qbt_exporter", "--config.file", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"qbt-exporter: error: --config.file: {path}: modules.seedbox.password: ")
    assert "hunter2" not in done.stderr


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(torrents=2, latency=False, churn=False, time_scale=0)) as sim:
        yield sim


def _poll(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_sighup_reloads_and_a_bad_file_keeps_the_old_modules(simulator: Simulator, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("adminadmin\n")
    path = tmp_path / "qbt.yml"

    def write(name: str) -> None:
        path.write_text(
            f"modules:\n  {name}:\n    password_file: {password}\n    targets: ['{simulator.url}']\n"
        )

    write("first")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qbt_exporter",
            "--config.file",
            str(path),
            "--web.listen-address",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def reload_state() -> tuple[float | None, float | None]:
        page = parse_exposition(requests.get(url + "/metrics", timeout=10).text)
        return (
            page.value("qbittorrent_exporter_config_last_reload_successful"),
            page.value("qbittorrent_exporter_config_last_reload_success_timestamp_seconds"),
        )

    def probe(module: str) -> int:
        params = {"target": simulator.url, "module": module}
        return requests.get(url + "/probe", params=params, timeout=30).status_code

    try:
        _wait_healthy(url, proc)
        successful, started = reload_state()
        assert successful == 1 and started is not None
        assert probe("first") == 200

        path.write_text("modules: {first: {targets: [}\n")  # broken YAML
        proc.send_signal(signal.SIGHUP)
        _poll("the failed reload", lambda: reload_state()[0] == 0)
        assert reload_state()[1] == started  # the last good reload is still the start-up one
        assert probe("first") == 200  # the old modules serve on
        assert proc.poll() is None

        write("second")
        proc.send_signal(signal.SIGHUP)
        _poll("the good reload", lambda: reload_state()[0] == 1)
        assert (reload_state()[1] or 0) >= started
        assert probe("second") == 200
        assert probe("first") == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "reload failed, keeping the modules loaded before: --config.file" in stderr
