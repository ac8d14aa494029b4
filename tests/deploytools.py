"""Reading the deployment files (deploy/) the way their tools do, and running the exporter command
they contain, for tests/test_deploy.py.

Why apart: the compose file, the Kubernetes Deployment and the systemd unit each say, in their own
syntax, which command runs with which environment; the tests run that very command against the
simulator, so each format is read into one (argv, environment) pair here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_DIR = ROOT / "deploy" / "compose"
K8S_DIR = ROOT / "deploy" / "kubernetes"
UNIT = ROOT / "deploy" / "systemd" / "qbt-exporter.service"


def require(tool: str) -> str:
    """The tool's path; skipped locally without it, a failure when CI is set (.ci/run installs it)."""
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing (CI installs it: .ci/run)")
        pytest.skip(f"{tool} is not installed")
    return found


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_DIR / "compose.yaml")


def default_of(value: str) -> str:
    """``${VAR:-default}`` → ``default``, as compose resolves it with VAR unset."""
    if value.startswith("${") and ":-" in value:
        return value[value.index(":-") + 2 : value.index("}")] + value[value.index("}") + 1 :]
    return value


def mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """A compose service's volumes as container path → host source (relative to the compose dir)."""
    found = {}
    for entry in service.get("volumes", []):
        if entry.startswith("${"):  # ${VAR:-default}:/target holds a colon of its own
            end = entry.index("}") + 1
            source, target = entry[:end], entry[end + 1 :].split(":")[0]
        else:
            source, target = entry.split(":")[:2]
        found[target] = default_of(source)
    return found


def k8s_documents() -> dict[str, dict[str, Any]]:
    """Every manifest in deploy/kubernetes by kind (one document of each kind)."""
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[doc["kind"]] = doc
    return docs


def unit_settings(text: str) -> dict[str, list[str]]:
    """The unit's keys, each with every value it is given (Environment= appears several times)."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def unit_environment(settings: Mapping[str, list[str]], credentials: Path) -> dict[str, str]:
    """The Environment= lines as systemd expands them (``%d``: the credentials directory)."""
    env = {}
    for line in settings.get("Environment", []):
        for item in shlex.split(line):
            key, value = item.split("=", 1)
            env[key] = value.replace("%d", str(credentials))
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def exporter_executable() -> str:
    """The ``qbt-exporter`` console script of the interpreter running the tests (the image's ENTRYPOINT)."""
    script = Path(sys.executable).parent / "qbt-exporter"
    assert script.exists(), f"{script}: install the package (pip install -e .)"
    return str(script)


@contextmanager
def running_exporter(argv: list[str], env: Mapping[str, str]) -> Iterator[str]:
    """Run ``argv`` with exactly ``env`` (plus PATH) until it serves; yields its base URL."""
    listen = env["QBT_EXPORTER_WEB_LISTEN_ADDRESS"]
    port = int(listen.rsplit(":", 1)[1])
    full_env = {"PATH": os.environ.get("PATH", ""), **env}
    proc = subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        # A hang-guard on a real child process (its start cannot be faked); polling ends at once.
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the exporter did not start"
            time.sleep(0.1)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
