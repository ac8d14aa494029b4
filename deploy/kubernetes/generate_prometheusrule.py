#!/usr/bin/env python3
"""Write prometheusrule.yaml from prometheus/alerts.yml, the one source of the alert rules.

Why generated: two hand-kept copies of fourteen alerts drift. The test suite regenerates it and
fails when the committed file differs (tests/test_deploy.py); after changing prometheus/alerts.yml,
run ``python deploy/kubernetes/generate_prometheusrule.py``. Needs PyYAML (the test extra has it).
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parents[1] / "prometheus" / "alerts.yml"
TARGET = HERE / "prometheusrule.yaml"
HEADER = (
    "# GENERATED from prometheus/alerts.yml by deploy/kubernetes/generate_prometheusrule.py: do not edit.\n"
    "# The rules' comments (thresholds, joins) are in prometheus/alerts.yml.\n"
)


def render(alerts_text: str) -> str:
    groups = yaml.safe_load(alerts_text)["groups"]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "qbittorrent-exporter",
            "labels": {"app.kubernetes.io/name": "qbittorrent-exporter"},
        },
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(rule, sort_keys=False, allow_unicode=True, width=100)


def main() -> None:
    TARGET.write_text(render(ALERTS.read_text()))
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
