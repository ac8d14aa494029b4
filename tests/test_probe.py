"""``/probe`` and ``/-/reload`` over real sockets, against simulated qBittorrents with passwords of
their own: each target read with its module's credentials and its own session; a target a module
does not allow refused with 400 before any connection; reloads that keep the old modules when the
new file is bad; ``/metrics`` as before for single-target users."""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from qbt_exporter.cli import Service, build_service
from qbt_exporter.collectors import probe as probe_collector
from qbt_exporter.config import parse
from qbt_exporter.modules import load
from qbt_exporter.simulator import Simulator, SimulatorConfig
from qbt_exporter.web import serve
from tests.e2e.harness import Exposition, parse_exposition
from tests.webtools import ANSWER_WITHIN


@pytest.fixture
def simulators() -> Iterator[tuple[Simulator, Simulator]]:
    configs = [
        SimulatorConfig(torrents=3, password=password, latency=False, churn=False, time_scale=0)
        for password in ("first-pass", "second-pass")
    ]
    with Simulator(configs[0]) as one, Simulator(configs[1]) as two:
        yield one, two


def write_modules(
    path: Path, one: Simulator, two: Simulator, *, second_password: str = "second-pass"
) -> None:
    (path.parent / "one.pw").write_text("first-pass\n")
    (path.parent / "two.pw").write_text(second_password + "\n")
    path.write_text(
        f"""
modules:
  one:
    password_file: {path.parent / "one.pw"}
    targets: ["{one.url}"]
  two:
    password_file: {path.parent / "two.pw"}
    targets: ["{two.url}", "allowed.example"]
"""
    )


@contextlib.contextmanager
def exporter(
    *flags: str, config_file: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[str]:
    argv = [*flags, *(["--config.file", str(config_file)] if config_file else [])]
    config = parse(argv, environ=env or {})
    modules = load(str(config_file), config, {}) if config_file else None
    service: Service = build_service(config, modules)
    server = serve(service.app, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()
        service.close()


def probe(url: str, **params: str) -> requests.Response:
    return requests.get(f"{url}/probe", params=params, timeout=ANSWER_WITHIN * 4)


def scrape(url: str, path: str = "/metrics") -> Exposition:
    reply = requests.get(url + path, timeout=ANSWER_WITHIN * 4)
    assert reply.status_code == 200, reply.text
    return parse_exposition(reply.text)


def test_each_target_is_read_with_its_modules_credentials_and_its_own_session(
    simulators: tuple[Simulator, Simulator], tmp_path: Path
) -> None:
    one, two = simulators
    write_modules(tmp_path / "qbt.yml", one, two)
    with exporter(config_file=tmp_path / "qbt.yml") as url:
        for _ in range(3):
            for module, simulator in (("one", one), ("two", two)):
                reply = probe(url, target=simulator.url, module=module)
                assert reply.status_code == 200, reply.text
                got = parse_exposition(reply.text)
                assert got.value("qbittorrent_up") == 1
                assert got.value("qbittorrent_version_info", version="v4.0.4", api="legacy", api_version="17")
                assert got.value("qbittorrent_exporter_logins_total", outcome="ok") == 1  # its own counters
                assert len(got.named("qbittorrent_torrent_info")) == 3
                assert got.value("qbittorrent_exporter_collector_success", collector="transfer") == 1
                assert not got.named("process_cpu_seconds_total")  # the process is /metrics' business
        assert (one.logins_ok, two.logins_ok) == (1, 1)
        assert (one.logins_failed, two.logins_failed) == (0, 0)
        page = scrape(url)
        assert page.value("qbittorrent_exporter_probe_targets") == 2
        assert page.value("qbittorrent_exporter_probes_total", outcome="ok") == 6


def test_a_down_target_is_200_with_up_zero(simulators: tuple[Simulator, Simulator], tmp_path: Path) -> None:
    one, two = simulators
    write_modules(tmp_path / "qbt.yml", one, two)
    stopped = one.url
    one.stop()
    with exporter(config_file=tmp_path / "qbt.yml") as url:
        reply = probe(url, target=stopped, module="one")
        assert reply.status_code == 200
        assert parse_exposition(reply.text).value("qbittorrent_up") == 0


@contextlib.contextmanager
def listening_socket() -> Iterator[socket.socket]:
    """A port that counts as a server: any connection to it waits in the accept queue."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def assert_no_connection(sock: socket.socket) -> None:
    """The probe has been answered, so any connection it made is already in the accept queue."""
    with pytest.raises(OSError) as caught:
        sock.accept()
    assert caught.value.errno in (errno.EAGAIN, errno.EWOULDBLOCK)


@pytest.mark.parametrize(
    ("target", "module"),
    [
        ("http://127.0.0.1:{port}", "two"),  # not in module two's list
        ("http://127.0.0.1:{port}", "one"),  # one allows another port of the same host
        ("http://allowed.example@127.0.0.1:{port}/", "two"),  # the host is 127.0.0.1, not allowed.example
        ("http://allowed.example:{port}@127.0.0.1:{port}/", "two"),
        ("http://127.0.0.1:{port}#@allowed.example/", "two"),
        ("http://127.0.0.1:{port}?@allowed.example/", "two"),
        ("http://127.0.0.1:{port}\\@allowed.example/", "two"),
        ("http://2130706433:{port}/", "two"),
        ("http://[::ffff:127.0.0.1]:{port}/", "two"),
        ("http://127.0.0.1:{port}", "nope"),  # unknown module
    ],
)
def test_a_target_the_module_does_not_allow_gets_400_and_no_connection(
    simulators: tuple[Simulator, Simulator], tmp_path: Path, target: str, module: str
) -> None:
    one, two = simulators
    write_modules(tmp_path / "qbt.yml", one, two)
    with listening_socket() as trap, exporter(config_file=tmp_path / "qbt.yml") as url:
        port = trap.getsockname()[1]
        reply = probe(url, target=target.format(port=port), module=module)
        assert reply.status_code == 400
        assert reply.headers["Content-Type"].startswith("text/plain")
        assert_no_connection(trap)
        assert one.logins_ok + one.logins_failed + two.logins_ok + two.logins_failed == 0
        assert scrape(url).value("qbittorrent_exporter_probe_targets") == 0


def test_refusals_say_why(simulators: tuple[Simulator, Simulator], tmp_path: Path) -> None:
    one, two = simulators
    write_modules(tmp_path / "qbt.yml", one, two)
    with exporter(config_file=tmp_path / "qbt.yml") as url:
        assert "not allowed by module 'two'" in probe(url, target=one.url, module="two").text
        assert "unknown module 'nope' (modules: one, two)" in probe(url, target=one.url, module="nope").text
        assert "unknown module 'default'" in probe(url, target=one.url).text
        assert "missing 'target'" in probe(url, module="one").text
        assert "user info" in probe(url, target="http://u:hunter2@x/", module="one").text
        assert "hunter2" not in probe(url, target="http://u:hunter2@x/", module="one").text
        twice = requests.get(f"{url}/probe?target={one.url}&target={two.url}&module=one", timeout=10)
        assert twice.status_code == 400 and "given 2 times" in twice.text
        page = scrape(url)
        assert page.value("qbittorrent_exporter_probes_total", outcome="not_allowed") == 1
        assert page.value("qbittorrent_exporter_probes_total", outcome="unknown_module") == 2
        assert page.value("qbittorrent_exporter_probes_total", outcome="bad_request") == 4


def test_a_full_pool_answers_503_and_keeps_serving_the_live_target(
    simulators: tuple[Simulator, Simulator], tmp_path: Path
) -> None:
    one, two = simulators
    write_modules(tmp_path / "qbt.yml", one, two)
    with exporter("--probe.max-targets", "1", config_file=tmp_path / "qbt.yml") as url:
        assert probe(url, target=one.url, module="one").status_code == 200
        full = probe(url, target=two.url, module="two")
        assert full.status_code == 503 and "--probe.max-targets" in full.text
        assert two.logins_ok == 0
        assert probe(url, target=one.url, module="one").status_code == 200
        assert scrape(url).value("qbittorrent_exporter_probes_total", outcome="pool_full") == 1


def test_metrics_with_a_config_file_and_no_url_has_the_exporters_own_metrics_only(
    simulators: tuple[Simulator, Simulator], tmp_path: Path
) -> None:
    one, two = simulators
    write_modules(tmp_path / "qbt.yml", one, two)
    with exporter(config_file=tmp_path / "qbt.yml") as url:
        page = scrape(url)
        assert page.value("qbittorrent_up") is None  # no default qBittorrent to be up or down
        assert page.named("qbittorrent_exporter_build_info")
        assert page.named("process_cpu_seconds_total")
        assert page.value("qbittorrent_exporter_config_last_reload_successful") == 1
        assert page.value("qbittorrent_exporter_probe_targets_max") == 100
        assert page.value("qbittorrent_exporter_probe_target_idle_timeout_seconds") == 600
        assert set(probe_collector.FAMILIES) <= page.family_names  # every one, from the start


def test_metrics_with_a_config_file_and_a_url_reads_that_qbittorrent_too(
    simulators: tuple[Simulator, Simulator], tmp_path: Path
) -> None:
    one, two = simulators
    write_modules(tmp_path / "qbt.yml", one, two)
    env = {"QBITTORRENT_URL": one.url, "QBITTORRENT_PASSWORD": "first-pass"}
    with exporter(config_file=tmp_path / "qbt.yml", env=env) as url:
        page = scrape(url)
        assert page.value("qbittorrent_up") == 1
        assert page.value("qbittorrent_exporter_probe_targets") == 0


def test_without_a_config_file_metrics_is_unchanged_and_there_is_no_probe(
    simulators: tuple[Simulator, Simulator],
) -> None:
    one, _ = simulators
    with exporter(env={"QBITTORRENT_URL": one.url, "QBITTORRENT_PASSWORD": "first-pass"}) as url:
        page = scrape(url)
        assert page.value("qbittorrent_up") == 1
        assert not [name for name in page.names() if "probe" in name or "reload" in name]
        assert probe(url, target=one.url).status_code == 404
        assert requests.post(f"{url}/-/reload", timeout=10).status_code == 405


def test_reload_keeps_the_old_modules_when_the_new_file_is_bad(
    simulators: tuple[Simulator, Simulator], tmp_path: Path
) -> None:
    one, two = simulators
    path = tmp_path / "qbt.yml"
    write_modules(path, one, two)
    with exporter(config_file=path) as url:
        assert probe(url, target=one.url, module="one").status_code == 200
        good = scrape(url).value("qbittorrent_exporter_config_last_reload_success_timestamp_seconds")
        path.write_text(path.read_text().replace("targets:", "targetz:", 1))
        reply = requests.post(f"{url}/-/reload", timeout=10)
        assert reply.status_code == 500 and "modules.one.targetz: unknown key" in reply.text
        page = scrape(url)
        assert page.value("qbittorrent_exporter_config_last_reload_successful") == 0
        assert page.value("qbittorrent_exporter_config_last_reload_success_timestamp_seconds") == good
        assert probe(url, target=one.url, module="one").status_code == 200  # the old modules serve on
        assert page.value("qbittorrent_exporter_probe_targets") == 1
        assert requests.get(f"{url}/-/reload", timeout=10).status_code == 405  # GET never reloads


def test_a_good_reload_swaps_the_modules_and_renews_targets_whose_module_changed(
    simulators: tuple[Simulator, Simulator], tmp_path: Path
) -> None:
    one, two = simulators
    path = tmp_path / "qbt.yml"
    write_modules(path, one, two, second_password="wrong-pass")
    with exporter(config_file=path) as url:
        assert parse_exposition(probe(url, target=two.url, module="two").text).value("qbittorrent_up") == 0
        assert probe(url, target=one.url, module="one").status_code == 200
        path.write_text(path.read_text().replace(f'targets: ["{one.url}"]', 'targets: ["other.lan"]'))
        (tmp_path / "two.pw").write_text("second-pass\n")  # a new password: module two changed too
        assert requests.post(f"{url}/-/reload", timeout=10).status_code == 200
        page = scrape(url)
        assert page.value("qbittorrent_exporter_config_last_reload_successful") == 1
        assert page.value("qbittorrent_exporter_probe_target_evictions_total", reason="reload") == 2
        assert page.value("qbittorrent_exporter_probe_targets") == 0
        assert probe(url, target=one.url, module="one").status_code == 400  # no longer allowed
        # a new reader for two: no back-off left from the rejected password, logged in at once
        assert parse_exposition(probe(url, target=two.url, module="two").text).value("qbittorrent_up") == 1
        assert two.logins_ok == 1


def test_the_trap_does_see_a_probe_the_module_allows(tmp_path: Path) -> None:
    """The control for the test above: an allowed target at the trap's port is connected to, so
    ``assert_no_connection`` can fail."""
    path = tmp_path / "qbt.yml"
    path.write_text("modules: {local: {targets: ['127.0.0.1']}}\n")
    with listening_socket() as trap, exporter(config_file=path) as url:
        port = trap.getsockname()[1]
        reply = requests.get(
            f"{url}/probe",
            params={"target": f"http://127.0.0.1:{port}", "module": "local"},
            headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"},  # the trap never answers
            timeout=ANSWER_WITHIN * 4,
        )
        assert reply.status_code == 200
        assert parse_exposition(reply.text).value("qbittorrent_up") == 0
        connection, _ = trap.accept()
        connection.close()


def test_a_refused_target_is_logged_once_not_on_every_scrape(
    simulators: tuple[Simulator, Simulator], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    one, two = simulators
    write_modules(tmp_path / "qbt.yml", one, two)
    with exporter(config_file=tmp_path / "qbt.yml") as url, caplog.at_level("WARNING", "qbt_exporter.probe"):
        for _ in range(3):
            assert probe(url, target=one.url, module="two").status_code == 400
        assert probe(url, target=two.url, module="one").status_code == 400
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused /probe")]
    assert refused == [
        f"refused /probe of {one.url}: module two does not allow it",
        f"refused /probe of {two.url}: module one does not allow it",
    ]
