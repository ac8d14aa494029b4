"""A real Prometheus 2.42 scraping the exporter in front of each real qBittorrent in turn.

Proves what unit tests cannot: that Prometheus accepts the exposition scrape after scrape, that
its sums match qBittorrent's own counts, that every query of the Grafana dashboards parses and
returns data on a live setup, and that the alert rules load, evaluate without errors and fire for a
real torrent whose data is missing.

Every test runs once per server (conftest.py ``qbt_server``: a 4.x and a 5.x qbittorrent-nox), each
with a Prometheus of its own. It scrapes two exporters in one job, as a user with two qBittorrents
would: the one in front of the watched qBittorrent, and one pointed at a closed port (a qBittorrent
that is down), which gives the dashboards' error panels something to show and proves they cope
with a dead instance next to a live one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.exporter import Exporter
from harness.processes import REPO_ROOT
from harness.servers import QbtServer
from qbt_exporter.qbittorrent.flavours.common import normalise_state
from qbt_exporter.qbittorrent.model import TORRENT_STATES
from tests import dashboard_exprs
from tests.e2e import harness
from tests.e2e.harness import Prometheus, PrometheusQueryError, TorrentWorld, scalar

pytestmark = pytest.mark.e2e

ALERTS_FILE = REPO_ROOT / "prometheus" / "alerts.yml"

# Grafana variables -> values for this short-lived Prometheus (2 s scrapes): every selector of every
# instance, and windows that hold enough samples after a few seconds.
VARIABLES: dict[str, str] = {
    "${job}": ".+",
    "${instance}": ".+",
    "$job": ".+",
    "$instance": ".+",
    "$category": ".*",
    "$tag": ".*",
    "$tracker": ".*",
    "$__rate_interval": "10s",
    "$__range": "1m",
    "$__interval": "2s",
}

# Panels that cannot return data on a healthy setup, and why. Every other panel query must.
NO_DATA_EXPECTED: dict[str, str] = {
    "qBittorrent overview / Scrape duration [B]": (
        "shows qbittorrent_exporter_scrape_cut_short > 0 only; no scrape here runs out of its time budget"
    ),
    "qBittorrent overview / Logins [A]": (
        "increase() of the logins counter over 10s: each exporter logs in once, and a counter series "
        "that is born at 1 has no earlier sample to increase from"
    ),
}


def _panel_params() -> list[Any]:
    return [pytest.param(where, expr, id=where) for where, expr in dashboard_exprs.panel_expressions()]


def _alert_params() -> list[Any]:
    return [pytest.param(name, expr, id=name) for name, expr in dashboard_exprs.alert_expressions()]


def rules_with_short_for(source: Path, target: Path) -> Path:
    """A copy of the alert rules with every ``for:`` set to 0s.

    The real rules wait minutes (QbittorrentTorrentErrored: ``for: 10m``) before firing; the test
    cannot wait that long, and what it proves is that the expressions select the right series on
    real data. ``promtool test rules`` (tests/test_alerts.py) covers the ``for:`` durations.
    """
    document = yaml.safe_load(source.read_text(encoding="utf-8"))
    for group in document["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    target.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def down_exporter(e2e_root: Path) -> Iterator[Exporter]:
    """An exporter in front of nothing: a qBittorrent that is down, next to the live one."""
    dead_url = f"http://127.0.0.1:{harness.free_port()}"
    instance = Exporter(e2e_root / "exporter-down", dead_url, name="exporter-down")
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binary: str,
    exporter: Exporter,
    down_exporter: Exporter,
    e2e_root: Path,
    qbt_server: QbtServer,
) -> Iterator[Prometheus]:
    # one Prometheus (and TSDB) per server: a restarted one would still show the last one's series
    root = e2e_root / f"prometheus-{qbt_server.key}"
    root.mkdir(parents=True, exist_ok=True)
    rule_files = [rules_with_short_for(ALERTS_FILE, root / "alerts-for-0s.yml")]
    instance = Prometheus(
        root,
        [exporter.url.removeprefix("http://"), down_exporter.url.removeprefix("http://")],
        rule_files=rule_files,
        scrape_interval="2s",
        # as long as Prometheus allows: on a loaded two-core machine a shorter budget cuts scrapes
        # short now and then, which the tests below rightly count as a failure
        scrape_timeout="2s",
    )
    try:
        instance.start()
        # at least three scrapes of the live exporter, so that rate() and increase() have data
        instance.wait_for(
            f'count_over_time(qbittorrent_up{{instance="{instance_of(exporter)}"}}[1m]) >= 3',
            bool,
            timeout=30,
        )
        yield instance
    finally:
        instance.stop()


def instance_of(exporter: Exporter) -> str:
    return exporter.url.removeprefix("http://")


def test_prometheus_scrapes_the_exporter(prometheus: Prometheus, exporter: Exporter) -> None:
    live = instance_of(exporter)
    targets = {t["labels"]["instance"]: t for t in prometheus.targets()}
    assert targets[live]["health"] == "up", targets[live]
    assert targets[live]["lastError"] == ""
    assert scalar(prometheus.query(f'count_over_time(up{{instance="{live}"}}[1m])')) >= 2
    assert scalar(prometheus.query(f'qbittorrent_up{{instance="{live}"}}')) == 1
    # no scrape ran out of time, and Prometheus saw no sample it had to drop
    assert (
        scalar(
            prometheus.query(f'max_over_time(qbittorrent_exporter_scrape_cut_short{{instance="{live}"}}[1m])')
        )
        == 0
    )
    assert scalar(prometheus.query(f'scrape_samples_post_metric_relabeling{{instance="{live}"}}')) > 100


def test_down_qbittorrent_is_up_0_not_a_failed_scrape(
    prometheus: Prometheus, down_exporter: Exporter
) -> None:
    dead = instance_of(down_exporter)
    assert scalar(prometheus.query(f'up{{instance="{dead}"}}')) == 1  # the exporter answers
    assert scalar(prometheus.query(f'qbittorrent_up{{instance="{dead}"}}')) == 0
    assert prometheus.query(f'{{__name__=~"qbittorrent_torrent.*", instance="{dead}"}}') == []


def test_torrents_by_state_match_qbittorrent(prometheus: Prometheus, world: TorrentWorld) -> None:
    def api_counts() -> dict[str, float]:
        counts = dict.fromkeys(TORRENT_STATES, 0.0)
        for torrent in world.qbt.api.torrents_info():
            counts[normalise_state(torrent["state"]) or "unknown"] += 1
        return counts

    expected: dict[str, float] = {}

    def matches(result: list[dict[str, Any]]) -> bool:
        nonlocal expected
        expected = api_counts()
        got = {r["metric"]["state"]: float(r["value"][1]) for r in result}
        return got == expected

    try:
        prometheus.wait_for("sum by (state) (qbittorrent_torrents)", matches, timeout=20)
    except TimeoutError as exc:
        pytest.fail(f"{exc}\nexpected (from qBittorrent's API): {expected}")
    assert expected["missingFiles"] == 1 and expected["stoppedUP"] == 1 and expected["stoppedDL"] == 1


def test_rate_of_session_download_is_defined(prometheus: Prometheus, exporter: Exporter) -> None:
    live = instance_of(exporter)
    expr = f'rate(qbittorrent_session_downloaded_bytes_total{{instance="{live}"}}[10s])'
    # the watched qBittorrent downloads from its peer, so the rate is a real, positive number
    result = prometheus.wait_for(expr, lambda r: len(r) == 1 and float(r[0]["value"][1]) > 0, timeout=20)
    assert float(result[0]["value"][1]) < 10 * harness.TRANSFER_RATE


@pytest.mark.parametrize(("where", "expr"), _panel_params())
def test_dashboard_panel_returns_data(prometheus: Prometheus, where: str, expr: str) -> None:
    query = dashboard_exprs.substitute(expr, VARIABLES)
    assert "$" not in query, f"{where}: a template variable is left in {query!r}"
    try:
        first = prometheus.query(query)  # a syntax or type error fails here, at once
    except PrometheusQueryError as exc:
        pytest.fail(f"{where}: Prometheus rejects the query\n{query}\n{exc}")
    if where in NO_DATA_EXPECTED:
        # the reason must still hold: if it returns data now, the exception is stale
        assert first == [], f"{where} returns data although listed in NO_DATA_EXPECTED: {first}"
        return
    if first:
        return
    try:
        prometheus.wait_for(query, bool, timeout=15)
    except TimeoutError as exc:
        pytest.fail(f"{where}: no data\n{query}\n{exc}")


@pytest.mark.parametrize(("name", "expr"), _alert_params())
def test_alert_expression_parses(prometheus: Prometheus, name: str, expr: str) -> None:
    try:
        prometheus.query(expr)
    except PrometheusQueryError as exc:
        pytest.fail(f"alert {name}: Prometheus rejects the expression\n{expr}\n{exc}")


def test_alert_rules_load_and_evaluate_without_errors(prometheus: Prometheus) -> None:
    expected = {
        rule["alert"]
        for group in yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }

    def evaluated() -> list[dict[str, Any]] | None:
        rules = [rule for group in prometheus.rules() for rule in group["rules"]]
        never = "0001-01-01"  # Go's zero time: not evaluated yet
        done = rules and all(not rule["lastEvaluation"].startswith(never) for rule in rules)
        return rules if done else None

    rules = harness.wait_until(evaluated, 20, what="every rule evaluated once")
    assert {rule["name"] for rule in rules} == expected
    broken = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not broken, f"rules that fail to evaluate on real data: {broken}"


def firing_for(prometheus: Prometheus, alertname: str, torrent_hash: str) -> list[dict[str, Any]]:
    """Every firing alert named ``alertname``, once it fires for ``torrent_hash``."""
    expr = f'ALERTS{{alertname="{alertname}", alertstate="firing", hash="{torrent_hash}"}}'
    prometheus.wait_for(expr, lambda r: len(r) == 1, timeout=30)
    return [
        alert
        for alert in prometheus.alerts()
        if alert["labels"].get("alertname") == alertname and alert["state"] == "firing"
    ]


def test_missing_files_alert_fires_for_the_real_torrent(prometheus: Prometheus, world: TorrentWorld) -> None:
    rules = [
        rule
        for group in yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    ]
    candidates = [
        rule["alert"]
        for rule in rules
        if "alert" in rule and re.search(r'state=~"[^"]*missingFiles', rule["expr"])
    ]
    assert len(candidates) == 1, f"expected one alert selecting missingFiles torrents, found {candidates}"
    alertname = candidates[0]
    missing = world.torrents["missing"]
    # the data really is missing, as qBittorrent says
    assert {t["hash"]: t["state"] for t in world.qbt.api.torrents_info()}[missing.hash] == "missingFiles"

    firing = firing_for(prometheus, alertname, missing.hash)
    # exactly the one torrent with missing data, with its name from qbittorrent_torrent_info
    assert [a["labels"]["hash"] for a in firing] == [missing.hash]
    labels = firing[0]["labels"]
    assert labels["name"] == missing.spec.display_name
    assert labels["state"] == "missingFiles"
    assert labels["category"] == missing.spec.category
    assert missing.spec.display_name in firing[0]["annotations"]["summary"]


def test_unregistered_alert_fires_for_the_real_torrent(prometheus: Prometheus, world: TorrentWorld) -> None:
    """The torrent whose loopback tracker answers "Unregistered torrent": the alert fires for it
    alone, with its name from qbittorrent_torrent_info."""
    alertname = "QbittorrentTorrentUnregistered"
    unregistered = world.torrents["unregistered"]
    firing = firing_for(prometheus, alertname, unregistered.hash)
    assert [a["labels"]["hash"] for a in firing] == [unregistered.hash]
    assert firing[0]["labels"]["name"] == unregistered.spec.display_name
    assert unregistered.spec.display_name in firing[0]["annotations"]["summary"]
