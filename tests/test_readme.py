"""The README's generated tables must match the code they describe."""

import os
import re
from pathlib import Path

import pytest
import yaml

from qbt_exporter.config import flag_table
from qbt_exporter.metrics import markdown_table
from qbt_exporter.tracker_messages import markdown_table as tracker_message_table

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def alert_table() -> str:
    """One row per alert of prometheus/alerts.yml, with Go templates shown as placeholders."""
    rows = ["| alert | severity | for | summary |", "|---|---|---|---|"]
    for group in yaml.safe_load((ROOT / "prometheus" / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            summary = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", r"<\1>", rule["annotations"]["summary"])
            summary = re.sub(r"\{\{\s*\$value\s*\}\}", "N", summary)
            rows.append(
                f"| `{rule['alert']}` | {rule['labels']['severity']} | {rule.get('for', '0s')} | {summary} |"
            )
    return "\n".join(rows)


BLOCKS = {
    "metrics": markdown_table,
    "flags": flag_table,
    "alerts": alert_table,
    "tracker-messages": tracker_message_table,
}


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_generated_block_is_current(block: str) -> None:
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(rf"(<!-- {block}:begin -->\n)(.*?)(\n<!-- {block}:end -->)", re.S)
    match = pattern.search(text)
    assert match, f"README has no {block} block"
    expected = BLOCKS[block]()
    if os.environ.get("UPDATE_README"):
        README.write_text(pattern.sub(lambda m: m.group(1) + expected + m.group(3), text), encoding="utf-8")
        return
    assert match.group(2) == expected, f"run UPDATE_README=1 python -m pytest {__file__}"
