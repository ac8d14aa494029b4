"""One exporter, many qBittorrents: a real Prometheus with the relabel config of
``prometheus/probe.yml`` (the one the README shows) scraping ``/probe`` for BOTH real qBittorrents at
once (this machine's and the chroot's: a 4.x and a 5.x) and the simulated 4.0.4, each through a
module of its own with a password of its own.

Proves what the unit tests cannot: that Prometheus's relabelling turns each qBittorrent into its
own ``instance`` with ``qbittorrent_up 1`` and its own ``version_info``; that each target keeps one
session (one login) across scrapes; and that the exporter's own ``/metrics`` counts the targets.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from harness.processes import REPO_ROOT, ManagedProcess, free_port
from harness.qbittorrent import ADMIN_PASSWORD, QBittorrent
from harness.servers import SERVER_KEYS
from qbt_exporter.simulator import Simulator, SimulatorConfig
from tests.e2e.harness import Prometheus
from tests.tools import require_server

pytestmark = pytest.mark.e2e

PROBE_CONFIG = REPO_ROOT / "prometheus" / "probe.yml"
# A password of its own for the chroot's server, set through its API once it runs: two modules, two
# secrets, each sent only where its module allows.
OTHER_PASSWORD = "e2e-Other-pass-5x"
# As long as Prometheus allows: on a loaded two-core machine a 1 s budget (0.5 s after the offset)
# now and then runs out on a real maindata call, which is not what this test is about.
INTERVAL = "2s"
SCRAPES = 50  # each target read this many times with one session (as the issue asks)


class ProbingPrometheus(Prometheus):
    """The harness's Prometheus with the scrape configs given, not one static job."""

    def __init__(self, root: Path, scrape_configs: list[dict[str, Any]]) -> None:
        super().__init__(root, [], scrape_interval=INTERVAL, scrape_timeout=INTERVAL)
        self.scrape_configs = scrape_configs

    def log_tail(self, limit: int | None = None) -> str:
        """Prometheus's log and each target's last scrape error (what a failed wait shows)."""
        errors = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in self.targets()]
        return f"targets: {errors}\n{self.process.log_tail()}"

    def write_config(self) -> None:
        config = {
            "global": {"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL, "evaluation_interval": "1s"},
            "scrape_configs": self.scrape_configs,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML


def readme_jobs(targets: dict[str, str], exporter: str) -> list[dict[str, Any]]:
    """The jobs of prometheus/probe.yml with this run's targets (URL -> module) and exporter address;
    the relabelling is used exactly as written."""
    jobs = copy.deepcopy(yaml.safe_load(PROBE_CONFIG.read_text(encoding="utf-8"))["scrape_configs"])
    probe_job = next(job for job in jobs if job["metrics_path"] == "/probe" if "metrics_path" in job)
    probe_job["scrape_interval"] = probe_job["scrape_timeout"] = INTERVAL
    probe_job["static_configs"] = [
        {"targets": [url], "labels": {"__param_module": module}} for url, module in targets.items()
    ]
    (address,) = [rule for rule in probe_job["relabel_configs"] if rule.get("target_label") == "__address__"]
    address["replacement"] = exporter
    own = next(job for job in jobs if job is not probe_job)
    own["static_configs"] = [{"targets": [exporter]}]
    own["scrape_interval"] = own["scrape_timeout"] = INTERVAL
    return jobs


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, QBittorrent]]:
    """Both real qbittorrent-nox servers, running at the same time."""
    root = tmp_path_factory.mktemp("probe-servers")
    started: dict[str, QBittorrent] = {}
    try:
        for key in SERVER_KEYS:
            qbt = QBittorrent(root / key, f"qbittorrent-probe-{key}", server=require_server(key))
            started[key] = qbt
            qbt.start()
        started["chroot"].api.set_preferences({"web_ui_password": OTHER_PASSWORD})
        yield started
    finally:
        for qbt in started.values():
            qbt.stop()


def test_prometheus_probes_both_real_qbittorrents_and_the_simulator_each_as_its_own_instance(
    servers: dict[str, QBittorrent], prometheus_binary: str, tmp_path: Path
) -> None:
    simulator = Simulator(SimulatorConfig(torrents=3, latency=False)).start()
    exporter: ManagedProcess | None = None
    prometheus: ProbingPrometheus | None = None
    try:
        secrets = {"system": ADMIN_PASSWORD, "chroot": OTHER_PASSWORD, "legacy": simulator.config.password}
        modules = {}
        urls = {"system": servers["system"].url, "chroot": servers["chroot"].url, "legacy": simulator.url}
        for name, password in secrets.items():
            (tmp_path / f"{name}.pw").write_text(password + "\n")
            modules[name] = {"password_file": str(tmp_path / f"{name}.pw"), "targets": [urls[name]]}
        config_file = tmp_path / "qbt.yml"
        config_file.write_text(yaml.safe_dump({"modules": modules}))

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QBITTORRENT_", "QBT_EXPORTER_"))}
        exporter = ManagedProcess(
            "exporter-probe",
            [
                sys.executable,
                "-m",
                "qbt_exporter",
                "--config.file",
                str(config_file),
                "--web.listen-address",
                f"127.0.0.1:{port}",
            ],
            tmp_path / "exporter-probe.log",
            env=env,
            cwd=REPO_ROOT,
        )
        exporter.start()
        address = f"127.0.0.1:{port}"
        prometheus = ProbingPrometheus(
            tmp_path / "prometheus", readme_jobs({url: name for name, url in urls.items()}, address)
        )
        prometheus.start()

        expected_versions = {
            servers["system"].url: servers["system"].api.app_version(),
            servers["chroot"].url: servers["chroot"].api.app_version(),
            simulator.url: "v4.0.4",
        }

        def by_instance(result: list[dict[str, Any]]) -> dict[str, float]:
            return {sample["metric"]["instance"]: float(sample["value"][1]) for sample in result}

        # each qBittorrent its own instance, up, through the exporter's /probe
        prometheus.wait_for(
            'qbittorrent_up{job="qbittorrent"}',
            lambda result: by_instance(result) == dict.fromkeys(urls.values(), 1.0),
            timeout=60,
        )
        assert by_instance(prometheus.query('up{job="qbittorrent"}')) == dict.fromkeys(urls.values(), 1.0)
        versions = {
            sample["metric"]["instance"]: sample["metric"]["version"]
            for sample in prometheus.query('qbittorrent_version_info{job="qbittorrent"}')
        }
        assert versions == expected_versions

        # one session per target, scrape after scrape
        prometheus.wait_for(
            f'sum_over_time(qbittorrent_up{{job="qbittorrent"}}[5m]) >= {SCRAPES}',
            lambda result: len(result) == len(urls),
            timeout=SCRAPES * 6,
        )
        logins = prometheus.query('qbittorrent_exporter_logins_total{job="qbittorrent"}')
        ok = {s["metric"]["instance"]: float(s["value"][1]) for s in logins if s["metric"]["outcome"] == "ok"}
        assert ok == dict.fromkeys(urls.values(), 1.0)
        # no password sent where it does not belong (a timeout on a loaded machine counts as "error")
        refused = [
            s for s in logins if s["metric"]["outcome"] in ("rejected", "banned") and s["value"][1] != "0"
        ]
        assert not refused
        assert simulator.logins_failed == 0

        # the dashboards' instance variable lists the probed qBittorrents
        instances = prometheus.api(
            "label/instance/values", **{"match[]": 'qbittorrent_up{job=~"qbittorrent"}'}
        )
        assert sorted(instances) == sorted(urls.values())

        # a module's credentials never go to a target it does not allow: 400, no request at all (a
        # simulator no job scrapes, with the very password of module "legacy")
        with Simulator(SimulatorConfig(torrents=1, latency=False)) as bystander:
            refused = requests.get(
                f"http://{address}/probe", params={"target": bystander.url, "module": "legacy"}, timeout=30
            )
            assert refused.status_code == 400 and "not allowed by module 'legacy'" in refused.text
            assert sum(bystander.requests_by_path.values()) == 0 and bystander.logins_failed == 0

        # the exporter's own /metrics (its own job): the three targets held, a good config load
        own = prometheus.wait_for(
            'qbittorrent_exporter_probe_targets{job="qbittorrent-exporter"}', lambda result: len(result) == 1
        )
        assert float(own[0]["value"][1]) == 3
        reload_ok = prometheus.query(
            'qbittorrent_exporter_config_last_reload_successful{job="qbittorrent-exporter"}'
        )
        assert float(reload_ok[0]["value"][1]) == 1
        assert not prometheus.query('qbittorrent_up{job="qbittorrent-exporter"}')  # no default target
        assert exporter.alive()
    finally:
        if prometheus is not None:
            prometheus.stop()
        if exporter is not None:
            exporter.stop()
        simulator.stop()
