"""The web server's limit flags, and start-up with a bad TLS certificate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qbt_exporter.config import ConfigError, parse
from qbt_exporter.httpserver import Limits
from tests.webtools import self_signed


def test_limit_defaults_are_the_servers() -> None:
    assert parse([], environ={}).web_limits == Limits()


def test_limits_from_flags_and_environment() -> None:
    env = {"QBT_EXPORTER_WEB_MAX_CONNECTIONS": "8", "QBT_EXPORTER_WEB_IDLE_TIMEOUT": "30s"}
    limits = parse(["--web.read-timeout", "500ms", "--web.write-timeout", "2m"], environ=env).web_limits
    assert (limits.max_connections, limits.read_timeout) == (8, 0.5)
    assert (limits.idle_timeout, limits.write_timeout) == (30, 120)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--web.max-connections", "0"], "--web.max-connections"),
        (["--web.max-connections", "-3"], "--web.max-connections"),
        (["--web.max-connections", "many"], "--web.max-connections"),
        (["--web.read-timeout", "0s"], "--web.read-timeout"),
        (["--web.idle-timeout", "forever"], "--web.idle-timeout"),
        (["--web.write-timeout", "-1s"], "--web.write-timeout"),
    ],
)
def test_bad_limits_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(argv, environ={})


def test_a_certificate_that_does_not_load_stops_start_up_with_one_line(tmp_path: Path) -> None:
    """It used to be reported as "cannot listen" on --web.listen-address."""
    cert, key = self_signed(tmp_path)
    cert.write_text("not a certificate\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "qbt_exporter",
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.tls-cert-file",
            str(cert),
            "--web.tls-key-file",
            str(key),
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("qbt-exporter: error: --web.tls-cert-file")
