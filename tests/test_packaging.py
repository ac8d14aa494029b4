"""What can be proved of the container image and the package without a Docker engine."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_unprivileged_and_is_checkable() -> None:
    found = dict(_instructions())
    assert re.fullmatch(r"\d+(:\d+)?", found["USER"]), "USER must be numeric for runAsNonRoot"
    assert found["USER"].split(":")[0] != "0"
    assert found["EXPOSE"] == "9561"
    assert json.loads(found["ENTRYPOINT"]) == ["qbt-exporter"]
    # The check reads the exporter's own configuration, so it follows the listen address and TLS.
    assert found["HEALTHCHECK"].split("CMD", 1)[1].strip() == '["qbt-exporter", "healthcheck"]'


def test_the_files_the_dockerfile_copies_make_a_working_install(tmp_path: Path) -> None:
    """Rebuild the image's install step in a folder holding only what the COPY lines bring in."""
    context = tmp_path / "context"
    context.mkdir()
    for kind, args in _instructions():
        if kind != "COPY":
            continue
        *sources, _dest = args.split()
        for source in sources:
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(src, context / source)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(context),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *sys.path[1:]])}
    result = subprocess.run(
        [sys.executable, "-m", "qbt_exporter", "--version"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("qbt-exporter ")
    assert (
        str(target)
        in subprocess.run(
            [sys.executable, "-c", "import qbt_exporter; print(qbt_exporter.__file__)"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        ).stdout
    )


@pytest.mark.parametrize("path", ["qbt_exporter", "tests", "harness", "benchmarks", "deploy"])
def test_ruff_is_clean(path: str) -> None:
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run([*ruff, "check", str(ROOT / path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run([*ruff, "format", "--check", str(ROOT / path)], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout


def test_only_the_exporter_is_packaged() -> None:
    """The wheel holds qbt_exporter and its subpackages (qbittorrent, simulator, ...) and nothing of
    the test suite, the shared test/benchmark harness or the benchmarks, which would otherwise land
    in site-packages as top-level "tests", "harness" and "benchmarks" packages."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packaged = set(find_packages(where=str(ROOT), **config))
    assert packaged and all(name.split(".")[0] == "qbt_exporter" for name in packaged), packaged
    subpackages = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "qbt_exporter").rglob("__init__.py")
    }
    assert packaged == subpackages
