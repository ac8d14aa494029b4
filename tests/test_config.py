import pytest

from qbt_exporter.cli import main
from qbt_exporter.config import ConfigError, flag_table, parse, parse_duration, parse_listen_address


def test_defaults() -> None:
    config = parse([], environ={})
    assert config.qbittorrent_url == "http://localhost:8080"
    assert config.username == "admin" and config.password is None
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 9561)
    assert config.telemetry_path == "/metrics"
    assert config.timeout == 5 and config.timeout_offset == 0.5
    assert config.collectors == {
        "transfer",
        "groups",
        "torrents",
        "exporter",
        "torrent_properties",
        "trackers",
    }
    assert config.trackers_max_age == 1800
    assert config.exporter_metrics and not config.demo
    assert config.properties_max_age == 300
    assert config.verify is True and config.log_format == "logfmt"


def test_environment_is_read_and_flags_win() -> None:
    env = {
        "QBITTORRENT_URL": "http://qbt:8080/prefix/",
        "QBITTORRENT_USERNAME": "env-user",
        "QBITTORRENT_PASSWORD": "s3cret",
        "QBT_EXPORTER_WEB_LISTEN_ADDRESS": "127.0.0.1:9000",
        "QBT_EXPORTER_COLLECTOR_TORRENTS": "false",
    }
    config = parse(["--qbittorrent.username", "flag-user"], environ=env)
    assert config.qbittorrent_url == "http://qbt:8080/prefix"
    assert config.username == "flag-user"
    assert config.password is not None and config.password.current() == "s3cret"
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 9000)
    # Without the per-torrent series there is no properties pass either: nothing would show it.
    assert config.collectors == {"transfer", "groups", "exporter"}
    assert "torrents" in parse(["--collector.torrents"], environ=env).collectors


def test_collectors_and_exporter_metrics_are_switched_by_their_flags() -> None:
    config = parse(
        ["--no-collector.torrent-properties", "--no-collector.groups", "--web.disable-exporter-metrics"],
        environ={},
    )
    assert config.collectors == {"transfer", "torrents", "exporter", "trackers"}
    assert "trackers" not in parse(["--no-collector.trackers"], environ={}).collectors
    assert "trackers" not in parse([], environ={"QBT_EXPORTER_COLLECTOR_TRACKERS": "false"}).collectors
    # per-torrent calls and series: off with the per-torrent series
    assert "trackers" not in parse(["--no-collector.torrents"], environ={}).collectors
    assert not config.exporter_metrics
    env = {"QBT_EXPORTER_WEB_DISABLE_EXPORTER_METRICS": "true"}
    assert not parse([], environ=env).exporter_metrics


def test_password_file_wins_over_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    config = parse(["--qbittorrent.password-file", str(secret)], environ={"QBITTORRENT_PASSWORD": "env"})
    assert config.password is not None and config.password.current() == "from-file"


def test_there_is_no_password_flag() -> None:
    with pytest.raises(ConfigError, match=r"--qbittorrent\.password: not a flag"):
        parse(["--qbittorrent.password", "visible-in-ps"], environ={})


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--qbittorrent.url", "localhost:8080"], {}, "--qbittorrent.url"),
        (["--qbittorrent.url", "http://host:99999"], {}, "invalid port"),
        (["--qbittorrent.timeout", "soon"], {}, "--qbittorrent.timeout"),
        (["--qbittorrent.timeout", "0s"], {}, "more than 0"),
        (["--web.listen-address", "9561"], {}, "--web.listen-address"),
        (["--web.listen-address", "::1:9561"], {}, "brackets"),
        (["--web.telemetry-path", "metrics"], {}, "--web.telemetry-path"),
        (["--log.level", "loud"], {}, "--log.level"),
        (["--log.format", "xml"], {}, "--log.format"),
        (["--qbittorrent.password-file", "/nonexistent/pw"], {}, "cannot read"),
        (["--web.tls-cert-file", "/etc/hostname"], {}, "go together"),
        ([], {"QBT_EXPORTER_COLLECTOR_TORRENTS": "maybe"}, "QBT_EXPORTER_COLLECTOR_TORRENTS"),
        (["--no-such-flag"], {}, "unrecognized"),
    ],
)
def test_bad_values_name_the_culprit(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(argv, environ=env)


def test_cli_bad_value_is_one_line_and_exit_2(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("QBITTORRENT_URL", raising=False)
    assert main(["--qbittorrent.url", "ftp://x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("qbt-exporter: error: --qbittorrent.url")


def test_durations_and_addresses() -> None:
    assert parse_duration("500ms") == 0.5 and parse_duration("2m") == 120 and parse_duration("3") == 3
    assert parse_listen_address("[::]:9561") == ("::", 9561)
    assert parse_listen_address(":1") == ("0.0.0.0", 1)


def test_flag_table_lists_every_flag() -> None:
    table = flag_table()
    for flag in (
        "--qbittorrent.url",
        "--web.listen-address",
        "--[no-]collector.torrents",
        "QBITTORRENT_PASSWORD",
    ):
        assert flag in table


def test_api_key_comes_from_a_file_or_the_environment_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    key_file = tmp_path / "key"
    key_file.write_text("qbt_0123456789abcdefghijklmnopqr\n")
    assert parse(["--qbittorrent.api-key-file", str(key_file)], environ={}).api_key == (
        "qbt_0123456789abcdefghijklmnopqr"
    )
    assert parse([], environ={"QBITTORRENT_API_KEY": "qbt_env"}).api_key == "qbt_env"
    assert parse([], environ={}).api_key is None
    with pytest.raises(ConfigError, match=r"--qbittorrent\.api-key: not a flag"):
        parse(["--qbittorrent.api-key", "visible-in-ps"], environ={})


def test_torrent_filters_from_repeated_flags_or_the_environment() -> None:
    config = parse(
        ["--torrents.include", "category=movies", "--torrents.include", "tag=keep; status=errored",
         "--torrents.exclude", "tracker=*.public.example", "--torrents.max", "500"],
        environ={"QBT_EXPORTER_TORRENTS_INCLUDE": "category=ignored"},
    )  # fmt: skip
    assert [str(s) for s in config.torrent_filters.include] == [
        "category=movies",
        "tag=keep",
        "status=errored",
    ]
    assert [str(s) for s in config.torrent_filters.exclude] == ["tracker=*.public.example"]
    assert config.torrents_max == 500
    env = {"QBT_EXPORTER_TORRENTS_EXCLUDE": "category=linux-isos", "QBT_EXPORTER_TORRENTS_MAX": "10"}
    from_env = parse([], environ=env)
    assert [str(s) for s in from_env.torrent_filters.exclude] == ["category=linux-isos"]
    assert not from_env.torrent_filters.include and from_env.torrents_max == 10
    assert (
        parse([], environ={}).torrent_filters.active is False and parse([], environ={}).torrents_max is None
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--torrents.include", "categroy=x"], "--torrents.include: selector 'categroy=x': unknown key"),
        (["--torrents.exclude", "name=("], "--torrents.exclude: selector 'name=(': name is not a regular"),
        (["--torrents.max", "0"], "--torrents.max: '0' is not a whole number of at least 1"),
        (["--torrents.max", "²"], "--torrents.max: '²' is not a whole number"),
    ],
)
def test_a_bad_filter_stops_start_up_naming_it(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(argv, environ={})
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
