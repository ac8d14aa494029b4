"""The /probe documentation: the README shows prometheus/probe.yml as it is (the end-to-end test runs
that file's relabelling), and both example configs are valid for the real promtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("probe.yml", "probe-sharded.yml")


def test_the_readme_shows_probe_yml_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(
        r"<!-- probe-config:begin -->\n```yaml\n(.*?)\n```\n<!-- probe-config:end -->", readme, re.S
    )
    assert match, "README has no probe-config block"
    config = (ROOT / "prometheus" / "probe.yml").read_text(encoding="utf-8")
    assert match.group(1) == config[config.index("scrape_configs:") :].rstrip("\n")


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_configs_pass_promtool(name: str) -> None:
    done = subprocess.run(
        [require_tool("promtool"), "check", "config", str(ROOT / "prometheus" / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_sharded_example_splits_the_same_targets_between_two_replicas() -> None:
    import yaml

    jobs = yaml.safe_load((ROOT / "prometheus" / "probe-sharded.yml").read_text())["scrape_configs"]
    shards = [job for job in jobs if job.get("metrics_path") == "/probe"]
    assert len(shards) == 2
    assert shards[0]["static_configs"] == shards[1]["static_configs"]
    kept = [next(r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep") for job in shards]
    assert kept == ["0", "1"]
    for job in shards:
        (hashmod,) = [r for r in job["relabel_configs"] if r.get("action") == "hashmod"]
        assert hashmod["modulus"] == 2 and hashmod["source_labels"] == ["__param_target"]
