"""A real Prometheus scraping the exporter over HTTPS with a client certificate and Basic auth,
configured by --web.config.file the way a node_exporter user already writes it (issue 12).

One exporter (in front of the built-in simulated qBittorrent 4.0.4: what is proved here is the
exporter's own web side, not qBittorrent's), one Prometheus with one job per kind of scraper:

- ``alice``: the right password and a client certificate the client CA signed: ``up 1`` and the
  exporter's metrics;
- ``bob``: a user that is not in the file yet: down with 401, until the file is rewritten to
  swap the users, after which ``alice`` is down with 401 and ``bob`` up — without a restart;
- ``no-client-cert``: the right password and no certificate: down, refused in the handshake.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests

from harness.processes import REPO_ROOT, ManagedProcess, free_port, wait_until
from tests.e2e.harness import Prometheus, scalar
from tests.pki import Pair, authority, issue

pytestmark = pytest.mark.e2e


def users_file(*users: tuple[str, str]) -> str:
    hashed = {name: bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode() for name, password in users}
    return json.dumps({"basic_auth_users": hashed})


class ScrapingPrometheus(Prometheus):
    """The harness's Prometheus with scrape configs of the test's own."""

    def __init__(self, root: Path, scrape_configs: list[dict[str, Any]]) -> None:
        super().__init__(root, [], scrape_interval="1s", scrape_timeout="900ms")
        self.scrape_configs = scrape_configs

    def write_config(self) -> None:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "scrape_configs": self.scrape_configs,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    root = tmp_path_factory.mktemp("pki")
    server_ca, client_ca = authority(root, "server-ca"), authority(root, "client-ca")
    return {
        "server_ca": server_ca,
        "server": issue(server_ca, root, "server", server=True),
        "client_ca": client_ca,
        "client": issue(client_ca, root, "prometheus", server=False),
    }


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Pair]) -> Iterator[tuple[Path, int]]:
    """The exporter behind TLS (client certificate required) and Basic auth for alice."""
    root = tmp_path_factory.mktemp("secured")
    web = root / "web.yml"
    tls = {
        "cert_file": str(pki["server"].cert),
        "key_file": str(pki["server"].key),
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": str(pki["client_ca"].cert),
        "min_version": "TLS12",
    }
    web.write_text(json.dumps({"tls_server_config": tls, **json.loads(users_file(("alice", "alice-pw")))}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QBITTORRENT_", "QBT_EXPORTER_"))}
    argv = [sys.executable, "-m", "qbt_exporter", "--demo", "--web.listen-address", f"127.0.0.1:{port}"]
    process = ManagedProcess(
        "exporter-secured",
        [*argv, "--web.config.file", str(web)],
        root / "exporter.log",
        env=env,
        cwd=REPO_ROOT,
    )
    process.start()
    client = (str(pki["client"].cert), str(pki["client"].key))

    def healthy() -> bool:
        process.check_alive()
        url = f"https://127.0.0.1:{port}/healthz"
        return requests.get(url, verify=str(pki["server_ca"].cert), cert=client, timeout=2).status_code == 200

    try:
        wait_until(healthy, 30, what="the secured exporter's /healthz", on_timeout=process.log_tail)
        yield web, port
    finally:
        process.stop()


def job(
    name: str, port: int, pki: dict[str, Pair], password: str, client_cert: bool = True
) -> dict[str, Any]:
    tls: dict[str, str] = {"ca_file": str(pki["server_ca"].cert)}
    if client_cert:
        tls |= {"cert_file": str(pki["client"].cert), "key_file": str(pki["client"].key)}
    return {
        "job_name": name,
        "scheme": "https",
        "basic_auth": {"username": name.split("-")[0] if client_cert else "alice", "password": password},
        "tls_config": tls,
        "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
    }


def jobs_once_down(prometheus: Prometheus, down: set[str]) -> dict[str, dict[str, Any]]:
    """Every target by job, once the ``down`` jobs have been scraped (and failed) at least once."""

    def probe() -> dict[str, dict[str, Any]] | None:
        targets = {t["labels"]["job"]: t for t in prometheus.targets()}
        return targets if all(targets.get(name, {}).get("health") == "down" for name in down) else None

    return wait_until(
        probe, 30, interval=0.5, what=f"jobs {sorted(down)} scraped", on_timeout=prometheus.log_tail
    )


def test_prometheus_scrapes_over_https_with_a_client_certificate_and_basic_auth(
    prometheus_binary: str, secured: tuple[Path, int], pki: dict[str, Pair], tmp_path: Path
) -> None:
    web, port = secured
    prometheus = ScrapingPrometheus(
        tmp_path / "prometheus",
        [
            job("alice", port, pki, "alice-pw"),
            job("bob", port, pki, "bob-pw"),
            job("no-client-cert", port, pki, "alice-pw", client_cert=False),
        ],
    )
    try:
        prometheus.start()
        prometheus.wait_for('up{job="alice"} == 1', bool)
        prometheus.wait_for('qbittorrent_up{job="alice"} == 1', bool)
        targets = jobs_once_down(prometheus, {"bob", "no-client-cert"})
        assert targets["alice"]["health"] == "up", targets["alice"]
        assert targets["bob"]["health"] == "down" and "401" in targets["bob"]["lastError"], targets["bob"]
        no_cert = targets["no-client-cert"]
        assert no_cert["health"] == "down" and "401" not in no_cert["lastError"], no_cert
        assert scalar(prometheus.query('up{job="bob"}')) == 0
        assert prometheus.query('qbittorrent_up{job="bob"}') == []  # nothing of the 401 was stored

        # swap the users: the next scrapes see the new file, no restart, no signal
        web.write_text(
            json.dumps({**json.loads(web.read_text()), **json.loads(users_file(("bob", "bob-pw")))})
        )
        prometheus.wait_for('up{job="bob"} == 1', bool)
        prometheus.wait_for('up{job="alice"} == 0', bool)
        alice = next(t for t in prometheus.targets() if t["labels"]["job"] == "alice")
        assert "401" in alice["lastError"], alice
    finally:
        prometheus.stop()
