"""Every PromQL expression of the Grafana dashboards and the alert rules, for the tests to check.

``panel_expressions()`` and ``alert_expressions()`` give (where, expr) pairs; ``substitute()`` replaces
the Grafana template variables with values a plain Prometheus accepts (as the end-to-end test does);
``selectors()`` is a small PromQL scanner that lists the metric selectors of an expression, so the
tests can check metric names against the catalogue and the job/instance filters of every selector.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS: tuple[Path, ...] = (
    ROOT / "grafana" / "qbittorrent-overview.json",
    ROOT / "grafana" / "qbittorrent-torrents.json",
)
ALERTS = ROOT / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "prometheus" / "alerts.test.yml"
PROMETHEUS_CONFIG = ROOT / "prometheus" / "prometheus.yml"

# Grafana variable -> a value Prometheus accepts. Longest names first: $__range is a prefix of
# nothing here, but $__rate_interval must not be read as $__rate + "_interval".
SUBSTITUTIONS: dict[str, str] = {
    "${job}": ".+",
    "${instance}": ".+",
    "$job": ".+",
    "$instance": ".+",
    "$category": ".*",
    "$tag": ".*",
    "$tracker": ".*",
    "$__rate_interval": "1m",
    "$__range": "5m",
    "$__interval": "30s",
}


def substitute(expr: str, values: dict[str, str] = SUBSTITUTIONS) -> str:
    """``expr`` with the dashboard's template variables replaced by plain PromQL values."""
    for variable, value in sorted(values.items(), key=lambda item: -len(item[0])):
        expr = expr.replace(variable, value)
    return expr


def promtool() -> str:
    """Path of promtool; a failure when CI is set and it is missing, a skip otherwise."""
    return require_tool("promtool")


def load_dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, the panels inside (collapsed) rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_expressions() -> list[tuple[str, str]]:
    """(``"<dashboard title> / <panel title> [refId]"``, expr) for every query of every panel."""
    found: list[tuple[str, str]] = []
    for path in DASHBOARDS:
        dashboard = load_dashboard(path)
        for panel in iter_panels(dashboard):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    where = f"{dashboard['title']} / {panel.get('title', '?')} [{target.get('refId', '?')}]"
                    found.append((where, target["expr"]))
    return found


def load_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def alert_expressions() -> list[tuple[str, str]]:
    """(alert name, expr) for every alerting rule of prometheus/alerts.yml."""
    return [(rule["alert"], rule["expr"]) for rule in load_rules() if "alert" in rule]


# --- a small PromQL scanner -------------------------------------------------------------------

KEYWORDS = frozenset(
    {
        # binary and set operators, modifiers
        "and", "or", "unless", "offset", "bool", "atan2",
        "by", "without", "on", "ignoring", "group_left", "group_right",
        # aggregation operators (may be followed by a by/without clause before their parenthesis)
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
        # literals
        "inf", "nan",
    }
)  # fmt: skip
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"(0x[0-9A-Fa-f]+|[0-9][0-9A-Za-z_.]*)")


def _skip_string(text: str, i: int) -> int:
    quote = text[i]
    i += 1
    while i < len(text) and text[i] != quote:
        i += 2 if text[i] == "\\" and quote != "`" else 1
    return i + 1


def _skip_until(text: str, i: int, closing: str) -> int:
    """Index just after the ``closing`` character that ends the group opened at ``i``, strings skipped."""
    i += 1
    while i < len(text) and text[i] != closing:
        i = _skip_string(text, i) if text[i] in "\"'`" else i + 1
    if i >= len(text):
        raise ValueError(f"unbalanced {closing!r} in {text!r}")
    return i + 1


def selectors(expr: str) -> list[tuple[str | None, str]]:
    """The vector selectors of ``expr`` as (metric name, text of the {...} matchers or "").

    The name is None for a selector without a metric name (``{__name__=~"..."}``). Function and
    aggregation names, keywords, label lists of by/without/on/ignoring/group_*, strings, numbers,
    durations, range and subquery brackets and # comments are skipped.
    """
    found: list[tuple[str | None, str]] = []
    i, n = 0, len(expr)
    while i < n:
        char = expr[i]
        if char == "#":
            newline = expr.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif char in "\"'`":
            i = _skip_string(expr, i)
        elif char == "[":
            i = _skip_until(expr, i, "]")
        elif char == "{":
            end = _skip_until(expr, i, "}")
            found.append((None, expr[i:end]))
            i = end
        elif char.isdigit() or (char == "." and i + 1 < n and expr[i + 1].isdigit()):
            match = _NUMBER.match(expr, i)
            i = match.end() if match else i + 1
        elif char == "$":  # a Grafana variable outside brackets, e.g. in a number position
            match = re.compile(r"\$\{?[A-Za-z_]+\}?").match(expr, i)
            i = match.end() if match else i + 1
        elif (match := _IDENT.match(expr, i)) is not None:
            word = match.group()
            j = match.end()
            while j < n and expr[j].isspace():
                j += 1
            following = expr[j] if j < n else ""
            if word in _LABEL_LIST_KEYWORDS and following == "(":
                i = _skip_until(expr, j, ")")
            elif word in KEYWORDS or following == "(":
                i = match.end()
            elif following == "{":
                end = _skip_until(expr, j, "}")
                found.append((word, expr[j:end]))
                i = end
            else:
                found.append((word, ""))
                i = match.end()
        else:
            i += 1
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (selectors without a name are left out)."""
    return {name for name, _ in selectors(expr) if name is not None}


def range_selectors(expr: str) -> list[str]:
    """The contents of every [...] of ``expr`` (ranges and subqueries), strings skipped."""
    found: list[str] = []
    i = 0
    while i < len(expr):
        if expr[i] in "\"'`":
            i = _skip_string(expr, i)
        elif expr[i] == "[":
            end = _skip_until(expr, i, "]")
            found.append(expr[i + 1 : end - 1])
            i = end
        else:
            i += 1
    return found
