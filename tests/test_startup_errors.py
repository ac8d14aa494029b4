"""Errors and start-up lines that say what to do (issue 14): each one a newcomer met."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from qbt_exporter import config as config_module
from qbt_exporter.cli import build, main
from qbt_exporter.config import ConfigError, parse
from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.scraper import Scraper
from qbt_exporter.simulator import Simulator, SimulatorConfig
from qbt_exporter.startup import credential_warnings
from qbt_exporter.stats import Stats


def _error(argv: list[str], environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(argv, environ={} if environ is None else environ)
    return str(caught.value)


# --- a bad value is reported where it was set ---------------------------------------------------
def test_a_bad_environment_value_is_reported_under_the_variable() -> None:
    message = _error([], {"QBT_EXPORTER_LOG_LEVEL": "foo"})
    assert message.startswith("QBT_EXPORTER_LOG_LEVEL (environment): 'foo' is not one of")
    assert "--log.level" not in message


def test_the_same_bad_value_from_the_flag_is_reported_under_the_flag() -> None:
    message = _error(["--log.level", "foo"], {"QBT_EXPORTER_LOG_LEVEL": "info"})
    assert message.startswith("--log.level: 'foo'")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("QBITTORRENT_TIMEOUT", "soon"),
        ("QBT_EXPORTER_WEB_LISTEN_ADDRESS", "9561"),
        ("QBITTORRENT_URL", "ftp://x"),
        ("QBITTORRENT_PASSWORD_FILE", "/nonexistent/qbt-password"),
    ],
)
def test_every_flag_with_a_variable_is_renamed(variable: str, value: str) -> None:
    assert _error([], {variable: value}).startswith(f"{variable} (environment): ")


def test_a_bad_environment_value_stops_the_command_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatched = {"QBT_EXPORTER_LOG_LEVEL": "foo"}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in monkeypatched.items():
            mp.setenv(name, value)
        assert main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "qbt-exporter: error: QBT_EXPORTER_LOG_LEVEL (environment): 'foo' is not one of debug, info, "
        "warning, error"
    ]


# --- the password is never a flag, and the error says where it goes ---------------------------------
@pytest.mark.parametrize(
    ("argv", "home"),
    [
        (["--qbittorrent.password", "hunter2"], "QBITTORRENT_PASSWORD"),
        (["--qbittorrent.password=hunter2"], "QBITTORRENT_PASSWORD"),
        (["--demo", "--qbittorrent.password", "hunter2"], "QBITTORRENT_PASSWORD"),
        (["--qbittorrent.api-key", "hunter2"], "QBITTORRENT_API_KEY"),
    ],
)
def test_a_password_flag_points_at_the_file_and_the_environment(argv: list[str], home: str) -> None:
    message = _error(argv)
    assert "-file FILE" in message and home in message
    assert "hunter2" not in message  # argparse's own message would have quoted it


def test_other_unknown_flags_keep_argparse_s_message() -> None:
    assert _error(["--qbittorrent.passwd-file", "x"]).startswith("unrecognized arguments")


# --- the URL ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("http://host:8080/api/v2", "http://host:8080"),
        ("http://host:8080/api/v2/", "http://host:8080"),
        ("https://host/qbittorrent/api/v2/app/version", "https://host/qbittorrent"),
    ],
)
def test_an_api_path_in_the_url_names_the_root_url(url: str, root: str) -> None:
    message = _error(["--qbittorrent.url", url])
    assert message.startswith("--qbittorrent.url: ")
    assert f"without /api/v2: {root!r}" in message


def test_a_proxy_prefix_that_merely_contains_api_is_accepted() -> None:
    assert parse(["--qbittorrent.url", "https://host/api/qbt"], environ={}).qbittorrent_url


def test_a_404_at_the_root_names_the_url_and_the_fix(caplog: pytest.LogCaptureFixture) -> None:
    with Simulator(SimulatorConfig(torrents=2, latency=False, churn=False)) as sim:
        client = Client(sim.url + "/wrong-prefix", "admin", "adminadmin")
        try:
            result = Scraper(client, Stats()).scrape(Deadline(30))
        finally:
            client.close()
    assert result.snapshot is None
    [line] = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert f"{sim.url}/wrong-prefix" in line and "WebUI root URL" in line and "without /api/v2" in line


# --- secret files, as Docker gets them wrong ------------------------------------------------------
def test_a_secret_path_that_is_a_directory_says_docker_made_it(tmp_path: Path) -> None:
    message = _error(["--qbittorrent.password-file", str(tmp_path)])
    assert message.startswith(f"--qbittorrent.password-file: cannot read {tmp_path}: Is a directory")
    assert "create the file first" in message


def test_an_unreadable_secret_names_the_uid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Root reads any file, so the refusal the image's uid 65534 meets is simulated at the read.
    def refuse(path: str) -> str:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(config_module, "read_password_file", refuse)
    message = _error([], {"QBITTORRENT_PASSWORD_FILE": str(tmp_path / "secret")})
    assert message.startswith("QBITTORRENT_PASSWORD_FILE (environment): cannot read")
    assert "Permission denied" in message and "runs as uid" in message and "chmod" in message


def test_a_secret_path_with_a_nul_is_one_line_not_a_traceback() -> None:
    message = _error(["--qbittorrent.password-file", "secret\x00file"])
    assert message == "--qbittorrent.password-file: 'secret\\x00file' is not a file name"


# --- credentials: the missing one and the winning one -----------------------------------------------
def test_no_credentials_warns_with_the_fix() -> None:
    [warning] = credential_warnings(parse([], environ={}), {})
    assert warning.startswith("no password set")
    assert "--qbittorrent.password-file" in warning and "QBITTORRENT_PASSWORD" in warning


def test_the_demo_and_a_single_credential_warn_of_nothing(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("pw\n")
    assert credential_warnings(parse(["--demo"], environ={}), {}) == []
    env = {"QBITTORRENT_PASSWORD": "pw"}
    assert credential_warnings(parse([], environ=env), env) == []
    assert credential_warnings(parse(["--qbittorrent.password-file", str(secret)], environ={}), {}) == []


def test_a_password_file_wins_over_the_variable_and_says_so(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    env = {"QBITTORRENT_PASSWORD": "from-env"}
    config = parse(["--qbittorrent.password-file", str(secret)], environ=env)
    assert config.password is not None and config.password.current() == "from-file"
    assert credential_warnings(config, env) == [
        f"QBITTORRENT_PASSWORD is ignored: the password file {secret} wins; unset one"
    ]


def test_an_api_key_wins_over_the_password_and_says_so(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("qbt_file-key\n")
    env = {"QBITTORRENT_PASSWORD": "pw", "QBITTORRENT_API_KEY": "qbt_env-key"}
    config = parse(["--qbittorrent.api-key-file", str(key)], environ=env)
    assert config.api_key == "qbt_file-key"
    warnings = credential_warnings(config, env)
    assert "QBITTORRENT_API_KEY is ignored: the API key file wins; unset one" in warnings
    assert any(w.startswith("the API key wins") for w in warnings)


# --- success is said once, with what answered --------------------------------------------------------
def test_the_first_successful_scrape_logs_version_api_and_torrent_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="qbt_exporter")
    with Simulator(SimulatorConfig(torrents=3, latency=False, churn=False, time_scale=0)) as sim:
        client = Client(sim.url, "admin", "adminadmin")
        try:
            scraper = Scraper(client, Stats())
            for _ in range(3):
                assert scraper.scrape(Deadline(30)).snapshot is not None
        finally:
            client.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("connected to")]
    assert lines == [f"connected to qBittorrent v4.0.4 at {sim.url} (API legacy 17): 3 torrents"]


# --- the exporter's own TLS: a bad certificate is blamed on the TLS flag --------------------------
def test_a_bad_certificate_is_blamed_on_the_tls_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not a certificate\n")
    key.write_text("not a key\n")
    argv = ["--web.listen-address", "127.0.0.1:0", "--web.tls-cert-file", str(cert)]
    assert main([*argv, "--web.tls-key-file", str(key)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith("qbt-exporter: error: --web.tls-cert-file: ")
    assert "listen-address" not in line


def test_build_is_unchanged_by_the_warnings() -> None:
    """The warnings are advice only: the client still gets the winning credential."""
    env = {"QBITTORRENT_PASSWORD": "pw", "QBITTORRENT_API_KEY": "qbt_key"}
    client, _app = build(parse([], environ=env))
    try:
        assert client.api_key == "qbt_key"
    finally:
        client.close()
