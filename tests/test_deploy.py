"""The ways in (deploy/): the compose stack, the Kubernetes manifests and the systemd unit.

No Docker engine or cluster runs here, so each file is proved with what does run: the stack's
Prometheus config by ``promtool check config``, its Alertmanager config by ``amtool check-config``,
the PrometheusRule by ``promtool check rules`` and against ``prometheus/alerts.yml``, the unit by
``systemd-analyze verify``; every name, port, path and secret that one file gives another is checked
to agree; and the exporter command each file contains is run, with its environment, against the
simulator (only the qBittorrent URL, the secret's path and the listen address are swapped for the
test's own).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import shlex
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from harness.qbittorrent import pbkdf2_password
from qbt_exporter.config import parse
from qbt_exporter.simulator import Simulator, SimulatorConfig
from tests.deploytools import (
    COMPOSE_DIR,
    K8S_DIR,
    ROOT,
    UNIT,
    compose,
    default_of,
    exporter_executable,
    free_port,
    k8s_documents,
    load_yaml,
    mounts,
    require,
    running_exporter,
    unit_environment,
    unit_settings,
)

SIM_PASSWORD = SimulatorConfig().password


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


setup_script = _module(COMPOSE_DIR / "setup.py")
generator = _module(K8S_DIR / "generate_prometheusrule.py")


def _port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def _published(service: dict[str, Any]) -> dict[int, str]:
    """container port → host address:port, for the TCP ports a service publishes."""
    found = {}
    for entry in service.get("ports", []):
        if entry.endswith("/udp"):
            continue
        *host, container = entry.split(":")
        found[int(container)] = ":".join(host)
    return found


# --- compose: the stack holds together ------------------------------------------------------------
def test_every_service_is_on_the_user_defined_network() -> None:
    """Service names resolve only on a user-defined network (the default bridge has no DNS)."""
    stack = compose()
    assert list(stack["networks"]) == ["qbt"] and not (stack["networks"]["qbt"] or {}).get("external")
    for name, service in stack["services"].items():
        assert service.get("networks") == ["qbt"], name
        assert "network_mode" not in service, name


def test_the_exporter_is_built_from_this_repository_and_runs_as_the_image_says() -> None:
    exporter = compose()["services"]["qbt-exporter"]
    context = (COMPOSE_DIR / exporter["build"]["context"]).resolve()
    assert context == ROOT and (context / "Dockerfile").is_file()
    assert "command" not in exporter and "entrypoint" not in exporter  # the image's ENTRYPOINT
    assert "user" not in exporter  # the image's uid 65534, which the secret's mode is made for


def test_docker_compose_accepts_the_stack() -> None:
    """The Compose file schema as docker-compose checks it, with no daemon (``config`` only reads the
    file): Debian 12's docker-compose 1.29, the oldest a newcomer may have, so the file works there too."""
    compose_tool = require("docker-compose")
    result = subprocess.run(
        [compose_tool, "-f", str(COMPOSE_DIR / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        cwd=COMPOSE_DIR,
        env={"PATH": "/usr/bin:/bin"},  # no DOWNLOADS, PUID...: the defaults
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["services"]["qbt-exporter"]["environment"] == {
        k: str(v) for k, v in compose()["services"]["qbt-exporter"]["environment"].items()
    }
    downloads = [v for v in resolved["services"]["qbittorrent"]["volumes"] if "/downloads" in str(v)]
    assert downloads and str(COMPOSE_DIR / "downloads") in str(downloads[0])


def test_web_ports_are_published_on_the_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for container, host in _published(service).items():
            if name == "qbittorrent" and container == 6881:
                continue  # the torrent port must be reachable by peers
            assert host.startswith("127.0.0.1:"), (name, container, host)


def test_the_exporter_reaches_qbittorrent_by_service_name_and_port() -> None:
    services = compose()["services"]
    env = services["qbt-exporter"]["environment"]
    url = urlsplit(env["QBITTORRENT_URL"])
    assert url.hostname in services
    assert url.port == int(services[url.hostname]["environment"]["WEBUI_PORT"])
    assert url.path in ("", "/")
    assert (services[url.hostname].get("ports") or []) and url.port in _published(services[url.hostname])


def test_prometheus_scrapes_the_exporter_and_alerts_to_alertmanager_at_their_ports() -> None:
    services = compose()["services"]
    config = load_yaml(COMPOSE_DIR / "prometheus.yml")
    [job] = config["scrape_configs"]
    [target] = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    listen = services[host]["environment"]["QBT_EXPORTER_WEB_LISTEN_ADDRESS"]
    assert host == "qbt-exporter" and int(port) == _port_of(listen) in _published(services[host])
    # the QbittorrentExporterDown alert matches the job by name
    assert re.fullmatch(r".*qbittorrent.*", job["job_name"])
    [am_target] = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    am_host, am_port = am_target.split(":")
    assert am_host in services and int(am_port) in _published(services[am_host])


def test_the_stack_s_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    """Checked with each file where the compose mounts put it, so a wrong mount fails too."""
    promtool = require("promtool")
    prometheus = compose()["services"]["prometheus"]
    mounted = mounts(prometheus)
    config_flag = next(arg for arg in prometheus["command"] if arg.startswith("--config.file="))
    config_path = config_flag.split("=", 1)[1]
    text = (COMPOSE_DIR / mounted[config_path]).read_text()
    for rule_file in load_yaml(COMPOSE_DIR / mounted[config_path])["rule_files"]:
        host = (COMPOSE_DIR / mounted[rule_file]).resolve()
        assert host == ROOT / "prometheus" / "alerts.yml"
        text = text.replace(rule_file, str(host))
    (tmp_path / "prometheus.yml").write_text(text)
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "14 rules found" in result.stdout or "rules found" in result.stdout


def test_the_stack_s_alertmanager_config_passes_amtool() -> None:
    amtool = require("amtool")
    service = compose()["services"]["alertmanager"]
    config_flag = next(arg for arg in service["command"] if arg.startswith("--config.file="))
    host = COMPOSE_DIR / mounts(service)[config_flag.split("=", 1)[1]]
    result = subprocess.run([amtool, "check-config", str(host)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_inhibition_names_real_alerts() -> None:
    alerts = {
        rule["alert"]
        for group in load_yaml(ROOT / "prometheus" / "alerts.yml")["groups"]
        for rule in group["rules"]
    }
    for rule in load_yaml(COMPOSE_DIR / "alertmanager.yml")["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            name = re.fullmatch(r'alertname="(\w+)"', matcher)
            assert name is None or name.group(1) in alerts, matcher


def test_grafana_provisions_the_shipped_dashboards_and_the_stack_s_prometheus() -> None:
    services = compose()["services"]
    grafana = mounts(services["grafana"])
    providers = load_yaml(COMPOSE_DIR / grafana["/etc/grafana/provisioning/dashboards/qbt-exporter.yml"])
    [provider] = providers["providers"]
    host_dir = (COMPOSE_DIR / grafana[provider["options"]["path"]]).resolve()
    assert host_dir == ROOT / "grafana"
    assert {p.name for p in host_dir.glob("*.json")} == {
        "qbittorrent-overview.json",
        "qbittorrent-torrents.json",
    }
    sources = load_yaml(COMPOSE_DIR / grafana["/etc/grafana/provisioning/datasources/qbt-exporter.yml"])
    [source] = sources["datasources"]
    url = urlsplit(source["url"])
    assert source["type"] == "prometheus" and source["isDefault"] is True
    assert url.hostname in services and url.port in _published(services[url.hostname])
    for dashboard in host_dir.glob("*.json"):
        variables = {v["name"]: v for v in json.loads(dashboard.read_text())["templating"]["list"]}
        assert variables["datasource"]["query"] == "prometheus"  # picks the provisioned default


def test_every_bind_mount_exists_or_is_made_by_setup(tmp_path: Path) -> None:
    made = {line.split()[1] for line in setup_script.setup(tmp_path)}
    made_names = {Path(p).relative_to(tmp_path).parts[0] for p in made}
    for name, service in compose()["services"].items():
        for source in mounts(service).values():
            if not source.startswith("."):
                assert source in compose()["volumes"], (name, source)  # a named volume
                continue
            path = (COMPOSE_DIR / source).resolve()
            first = Path(source).parts[0]
            assert path.exists() or first in made_names, (name, source)


def test_secrets_are_the_files_setup_makes_and_reach_the_services_that_read_them() -> None:
    stack = compose()
    assert {name: s["file"] for name, s in stack["secrets"].items()} == {
        name: f"./secrets/{name}" for name in setup_script.SECRET_NAMES
    }
    for name, service in stack["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if key.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                assert value.removeprefix("/run/secrets/") in service.get("secrets", []), (name, key)


def test_setup_makes_secrets_the_containers_can_read_and_a_qbittorrent_password_it_accepts(
    tmp_path: Path,
) -> None:
    first = setup_script.setup(tmp_path)
    assert len(first) == 4 and setup_script.setup(tmp_path) == []  # idempotent: keeps what exists
    secrets_dir = tmp_path / "secrets"
    assert secrets_dir.stat().st_mode & 0o777 == 0o700
    for name in setup_script.SECRET_NAMES:
        assert (secrets_dir / name).stat().st_mode & 0o777 == 0o644  # uid 65534 / 472 read it
    password = (secrets_dir / "qbittorrent_password").read_text().rstrip("\n")
    conf = (tmp_path / setup_script.QBT_CONF).read_text()
    stored = re.search(r'WebUI\\Password_PBKDF2="(@ByteArray\(([^:]+):[^)]+\))"', conf)
    assert stored is not None
    salt = base64.b64decode(stored.group(2))
    # the harness's copy is the one the end-to-end tests prove against real qBittorrents
    assert stored.group(1) == pbkdf2_password(password, salt)


# --- the exporter command each file contains, run against the simulator ------------------------------
def _compose_command(tmp_path: Path, sim: Simulator) -> tuple[list[str], dict[str, str]]:
    env = {k: str(v) for k, v in compose()["services"]["qbt-exporter"]["environment"].items()}
    secret = tmp_path / "qbittorrent_password"
    secret.write_text(SIM_PASSWORD + "\n")
    env |= {
        "QBITTORRENT_URL": sim.url,
        "QBITTORRENT_PASSWORD_FILE": str(secret),
        "QBT_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    return [exporter_executable()], env


def _kubernetes_command(tmp_path: Path, sim: Simulator) -> tuple[list[str], dict[str, str]]:
    [container] = k8s_documents()["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    mount = tmp_path / "secret-volume"
    mount.mkdir()
    [volume_mount] = container["volumeMounts"]
    relative = Path(env["QBITTORRENT_PASSWORD_FILE"]).relative_to(volume_mount["mountPath"])
    (mount / relative).write_text(SIM_PASSWORD)
    env |= {
        "QBITTORRENT_URL": sim.url,
        "QBITTORRENT_PASSWORD_FILE": str(mount / relative),
        "QBT_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    return [exporter_executable(), *container.get("args", [])], env


def _systemd_command(tmp_path: Path, sim: Simulator) -> tuple[list[str], dict[str, str]]:
    settings = unit_settings(UNIT.read_text())
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    [load] = settings["LoadCredential"]
    name, _source = load.split(":", 1)
    (credentials / name).write_text(SIM_PASSWORD + "\n")
    env = unit_environment(settings, credentials)
    assert Path(env["QBITTORRENT_PASSWORD_FILE"]) == credentials / name
    env |= {"QBITTORRENT_URL": sim.url, "QBT_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}"}
    [exec_start] = settings["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/bin/qbt-exporter")
    return [exporter_executable(), *argv[1:]], env


@pytest.mark.parametrize("source", ["compose", "kubernetes", "systemd"])
def test_the_exporter_command_of_each_file_serves_the_simulator(tmp_path: Path, source: str) -> None:
    builders = {"compose": _compose_command, "kubernetes": _kubernetes_command, "systemd": _systemd_command}
    with Simulator(SimulatorConfig(torrents=5, latency=False, churn=False)) as sim:
        argv, env = builders[source](tmp_path, sim)
        with running_exporter(argv, env) as url:
            text = requests.get(url + "/metrics", timeout=30).text
            assert "qbittorrent_up 1.0" in text
            # the image's HEALTHCHECK, with the same environment
            check = subprocess.run(
                [exporter_executable(), "healthcheck"],
                env={"PATH": "", **env},
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert check.returncode == 0, check.stderr
        assert sim.logins_ok == 1


# --- Kubernetes ------------------------------------------------------------------------------------
def test_the_prometheusrule_is_generated_from_the_shipped_alerts() -> None:
    expected = generator.render((ROOT / "prometheus" / "alerts.yml").read_text())
    assert (K8S_DIR / "prometheusrule.yaml").read_text() == expected, (
        "deploy/kubernetes/prometheusrule.yaml is out of date: run "
        "python deploy/kubernetes/generate_prometheusrule.py"
    )


def test_the_drift_check_sees_a_changed_threshold() -> None:
    alerts = (ROOT / "prometheus" / "alerts.yml").read_text()
    changed = alerts.replace("for: 5m  # THRESHOLD", "for: 7m  # THRESHOLD", 1)
    assert changed != alerts
    assert generator.render(changed) != (K8S_DIR / "prometheusrule.yaml").read_text()


def test_the_prometheusrule_s_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = require("promtool")
    spec = k8s_documents()["PrometheusRule"]["spec"]
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(spec))
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    shipped = load_yaml(ROOT / "prometheus" / "alerts.yml")["groups"]
    assert spec["groups"] == shipped


@pytest.mark.parametrize("kind", ["Deployment", "Service", "Secret"])
def test_the_core_manifests_match_the_kubernetes_schema(kind: str) -> None:
    """Strict: an unknown or misspelt field fails. The schemas ship inside kubernetes-validate (no
    cluster, no network). ServiceMonitor and PrometheusRule are the operator's CRDs, which it has no
    schema for: they are checked field by field below and by promtool."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(k8s_documents()[kind], "1.30.0", strict=True)


def test_the_deployment_runs_unprivileged_with_probes_on_healthz() -> None:
    docs = k8s_documents()
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    dockerfile_user = next(
        line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("USER ")
    )
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == dockerfile_user.split(":")[0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {item["name"]: item["value"] for item in container["env"]}
    assert ports["metrics"] == _port_of(env["QBT_EXPORTER_WEB_LISTEN_ADDRESS"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    # the environment is one the exporter accepts (the secret file aside, which only the pod has)
    config = parse([], environ={k: v for k, v in env.items() if k != "QBITTORRENT_PASSWORD_FILE"})
    assert config.listen_port == ports["metrics"]


def test_the_secret_service_and_servicemonitor_agree_with_the_deployment() -> None:
    docs = k8s_documents()
    deployment, service, monitor = docs["Deployment"], docs["Service"], docs["ServiceMonitor"]
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    [volume] = pod["spec"]["volumes"]
    [mount] = container["volumeMounts"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert volume["name"] == mount["name"] and mount["readOnly"] is True
    [item] = volume["secret"]["items"]
    assert env["QBITTORRENT_PASSWORD_FILE"] == f"{mount['mountPath']}/{item['path']}"
    secret = docs["Secret"]
    assert (
        volume["secret"]["secretName"] == secret["metadata"]["name"] and item["key"] in secret["stringData"]
    )
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    [service_port] = service["spec"]["ports"]
    assert service_port["targetPort"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service_port["name"]
    # The operator names the job after the Service: the shipped QbittorrentExporterDown must match it.
    assert re.fullmatch(r".*qbittorrent.*", service["metadata"]["name"])


def test_the_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    listed = load_yaml(K8S_DIR / "kustomization.yaml")["resources"]
    on_disk = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert sorted(listed) == sorted(on_disk)


# --- systemd ---------------------------------------------------------------------------------------
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require("systemd-analyze")
    text = UNIT.read_text()
    [exec_start] = unit_settings(text)["ExecStart"]
    # verify checks that the program exists: point it at this installation's console script
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace(exec_start, exporter_executable()))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_unit_does_not_restart_on_a_bad_setting() -> None:
    settings = unit_settings(UNIT.read_text())
    assert settings["RestartPreventExitStatus"] == ["2"]  # ConfigError's exit status
    assert settings["DynamicUser"] == ["yes"] and settings["NoNewPrivileges"] == ["yes"]


def test_default_of_reads_compose_defaults() -> None:
    assert default_of("${DOWNLOADS:-./downloads}") == "./downloads"
    assert default_of("./x") == "./x"
