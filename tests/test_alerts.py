"""The alert rules and the example Prometheus config: valid for promtool, unit-tested, and using only
catalogue metrics."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from qbt_exporter.metrics import BY_NAME, exposed_names
from tests.dashboard_exprs import (
    ALERT_TESTS,
    ALERTS,
    PROMETHEUS_CONFIG,
    alert_expressions,
    load_rules,
    metric_names,
    promtool,
)

SEVERITIES = {"critical", "warning", "info"}
PER_TORRENT_METRICS = {name for name, row in BY_NAME.items() if row.scope == "torrent"}


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, check=False, cwd=ALERTS.parent.parent
    )


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in load_rules() if "alert" in rule]


def test_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    result = run_promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config() -> None:
    result = run_promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_scrape_config() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "qbittorrent"]
    assert job["static_configs"][0]["targets"] == ["localhost:9561"]
    assert job["scrape_interval"] == "30s"
    seconds = int(job["scrape_timeout"].removesuffix("s"))
    assert 10 <= seconds < 30, "leave the exporter a real budget, below the scrape interval"
    assert "X-Prometheus-Scrape-Timeout-Seconds" in PROMETHEUS_CONFIG.read_text(encoding="utf-8")
    # the exporter-down alert must match the example job
    (down,) = [rule for rule in alerts() if rule["alert"] == "QbittorrentExporterDown"]
    matcher = re.search(r'up\{job=~"([^"]+)"\}', down["expr"])
    assert matcher and re.fullmatch(matcher.group(1), job["job_name"])


def test_alert_names_unique() -> None:
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)), names
    assert len(names) >= 10


def test_every_alert_has_severity_summary_description() -> None:
    for rule in alerts():
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary", "").strip(), f"{name}: no summary"
        assert annotations.get("description", "").strip(), f"{name}: no description"
        text = annotations["summary"] + annotations["description"]
        assert "{{ $labels.instance }}" in text, f"{name}: annotations do not name the instance"


def test_per_torrent_alerts_name_the_torrent() -> None:
    """An alert on per-torrent series that is not aggregated per qBittorrent joins the info metric."""
    per_torrent = 0
    for rule in alerts():
        names = metric_names(rule["expr"])
        aggregated = re.search(r"\b(count|sum|max|min|avg)\s+by\s*\(\s*job\s*,\s*instance\s*\)", rule["expr"])
        if names & PER_TORRENT_METRICS and not aggregated:
            per_torrent += 1
            assert re.search(
                r"on \(job, instance, hash\) group_left \([^)]*\bname\b[^)]*\)\s*qbittorrent_torrent_info",
                rule["expr"],
            ), f"{rule['alert']}: no name join"
            text = rule["annotations"]["summary"] + rule["annotations"]["description"]
            assert "{{ $labels.name }}" in text, f"{rule['alert']}: annotations do not name the torrent"
    assert per_torrent >= 2


def test_thresholds_are_marked() -> None:
    text = ALERTS.read_text(encoding="utf-8")
    assert text.count("THRESHOLD") >= 10


def test_rule_metric_names_are_in_the_catalogue() -> None:
    known = exposed_names() | {"up"}
    for name, expr in alert_expressions():
        used = metric_names(expr)
        assert used, f"{name}: no metric found in {expr}"
        assert used <= known, f"{name}: not in the catalogue: {sorted(used - known)}"


def test_every_alert_has_firing_and_quiet_test_cases() -> None:
    document = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))
    assert document["rule_files"] == ["alerts.yml"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in document["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - firing == set(), f"alerts never tested firing: {sorted(names - firing)}"
    assert names - quiet == set(), f"alerts never tested quiet: {sorted(names - quiet)}"
    assert (firing | quiet) <= names, f"tests of unknown alerts: {sorted((firing | quiet) - names)}"


@pytest.mark.parametrize(
    ("alert", "needle"),
    [
        ("QbittorrentFirewalled", "qbittorrent_torrents"),
        ("QbittorrentTorrentStalled", "qbittorrent_torrent_amount_left_bytes offset 6h"),
        ("QbittorrentDownloadQueueStuck", 'state="queuedDL"'),
    ],
)
def test_conditions_the_brief_asks_for(alert: str, needle: str) -> None:
    (rule,) = [rule for rule in alerts() if rule["alert"] == alert]
    assert needle in rule["expr"]
