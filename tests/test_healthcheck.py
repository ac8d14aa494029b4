"""``qbt-exporter healthcheck``: the Dockerfile's HEALTHCHECK, following the exporter's own settings."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from qbt_exporter import healthcheck
from qbt_exporter.cli import build, main
from qbt_exporter.config import parse
from qbt_exporter.httpserver import HTTPServer
from qbt_exporter.webaccess import Gate
from tests.webtools import self_signed


@contextmanager
def exporter(argv: list[str]) -> Iterator[int]:
    """A serving exporter (its qBittorrent need not exist: /healthz does not ask it); yields its port."""
    config = parse(argv, environ={})
    client, app = build(config)
    access = config.web_access
    server = HTTPServer(
        Gate(app, access),
        config.listen_host,
        config.listen_port,
        tls=access.tls_context if access.tls_on else None,
    ).start()
    try:
        yield server.port
    finally:
        server.stop()
        client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_check_follows_the_listen_address_from_the_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = _free_port()
    with exporter(["--web.listen-address", f"127.0.0.1:{port}"]):
        env = {"QBT_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{port}"}
        assert healthcheck.main([], environ=env) == 0
    assert capsys.readouterr().out.strip() == f"healthy: http://127.0.0.1:{port}/healthz"


def test_the_check_follows_tls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert, key = self_signed(tmp_path)
    port = _free_port()
    tls_flags = ["--web.tls-cert-file", str(cert), "--web.tls-key-file", str(key)]
    with exporter(["--web.listen-address", f"127.0.0.1:{port}", *tls_flags]):
        assert healthcheck.main(["--web.listen-address", f"127.0.0.1:{port}", *tls_flags], environ={}) == 0
    assert capsys.readouterr().out.strip() == f"healthy: https://127.0.0.1:{port}/healthz"


def test_nothing_listening_is_unhealthy(capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    assert healthcheck.main(["--web.listen-address", f"127.0.0.1:{port}"], environ={}, timeout=2) == 1
    err = capsys.readouterr().err
    assert err.startswith("qbt-exporter healthcheck: unhealthy: ") and f"127.0.0.1:{port}/healthz" in err


def test_a_bad_configuration_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert healthcheck.main([], environ={"QBT_EXPORTER_WEB_LISTEN_ADDRESS": "nonsense"}) == 2
    assert "QBT_EXPORTER_WEB_LISTEN_ADDRESS (environment)" in capsys.readouterr().err


def test_the_subcommand_is_reached_through_the_main_command(capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    with exporter(["--web.listen-address", f"127.0.0.1:{port}"]):
        assert main(["healthcheck", "--web.listen-address", f"127.0.0.1:{port}"]) == 0


@pytest.mark.parametrize(
    ("address", "first"),
    [
        (":9561", "http://127.0.0.1:9561/healthz"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000/healthz"),
        ("[::]:9561", "http://[::1]:9561/healthz"),
        ("192.0.2.7:9561", "http://192.0.2.7:9561/healthz"),
    ],
)
def test_a_wildcard_address_is_reached_on_the_loopback(address: str, first: str) -> None:
    urls = healthcheck.probe_urls(parse(["--web.listen-address", address], environ={}))
    assert urls[0] == first and urls[1] == first.replace("http://", "https://")
