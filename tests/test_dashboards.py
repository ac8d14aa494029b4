"""The Grafana dashboards: importable, laid out, templated, and querying only catalogue metrics."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from qbt_exporter.metrics import exposed_names
from qbt_exporter.metrics import spec as spec_of
from tests.dashboard_exprs import (
    DASHBOARDS,
    alert_expressions,
    iter_panels,
    load_dashboard,
    metric_names,
    panel_expressions,
    promtool,
    range_selectors,
    selectors,
    substitute,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
ALLOWED_PANEL_TYPES = {"timeseries", "stat", "gauge", "bargauge", "table", "piechart", "text", "row"}
NO_DATA_PANEL_TYPES = {"text", "row"}
JOB_FILTER = re.compile(r'\bjob\s*=~\s*"\$(job|\{job\})"')
INSTANCE_FILTER = re.compile(r'\binstance\s*=~\s*"\$(instance|\{instance\})"')


@pytest.fixture(params=DASHBOARDS, ids=lambda path: path.name)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load_dashboard(request.param)


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(iter_panels(dashboard))


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in iter_panels(dashboard) if panel["type"] not in NO_DATA_PANEL_TYPES]


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"{panel['title']} [{target.get('refId')}]", target["expr"])
        for panel in data_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_valid_json_two_space_indented(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_importable_model(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] and dashboard["uid"]
    assert dashboard["schemaVersion"] >= 36
    assert dashboard.get("id") is None, "an exported dashboard carries no database id"
    inputs = dashboard["__inputs"]
    assert any(i["type"] == "datasource" and i["pluginId"] == "prometheus" for i in inputs)
    assert any(i["name"] == "DS_PROMETHEUS" for i in inputs)
    required = {(r["type"], r["id"]) for r in dashboard["__requires"]}
    assert ("datasource", "prometheus") in required
    assert ("grafana", "grafana") in required
    used = {panel["type"] for panel in panels(dashboard) if panel["type"] != "row"}
    assert used <= {panel_id for kind, panel_id in required if kind == "panel"}


def test_template_variables(dashboard: dict[str, Any]) -> None:
    found = variables(dashboard)
    datasource = found["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    for name, query in (
        ("job", "label_values(qbittorrent_up, job)"),
        ("instance", 'label_values(qbittorrent_up{job=~"$job"}, instance)'),
    ):
        variable = found[name]
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        text = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        assert text == query
        assert variable["multi"] is True
        assert variable["includeAll"] is True
        assert variable.get("allValue") == ".+"


@pytest.mark.parametrize(
    ("name", "metric"),
    [("category", "qbittorrent_torrents"), ("tag", "qbittorrent_tag_torrents"),
     ("tracker", "qbittorrent_tracker_torrents")],
)  # fmt: skip
def test_category_tag_and_tracker_variables_come_from_the_group_totals(
    dashboard: dict[str, Any], name: str, metric: str
) -> None:
    """Read from the totals, not from qbittorrent_torrent_info: they list every value even with
    per-torrent series filtered or off; "All" is ".*" so that the empty value (none) is included."""
    variable = variables(dashboard)[name]
    assert (
        variable["query"]["query"] == f'label_values({metric}{{job=~"$job", instance=~"$instance"}}, {name})'
    )
    assert variable["multi"] is True and variable["includeAll"] is True
    assert variable["allValue"] == ".*"
    used = [expr for _, expr in expressions(dashboard) if f"${name}" in expr]
    assert used, f"no panel follows the {name} variable"


def test_overview_group_panels_use_only_the_group_totals() -> None:
    """The overview's category, tag and tracker panels must work with per-torrent series off."""
    overview = load_dashboard(DASHBOARDS[0])
    group_panels = [
        panel
        for panel in data_panels(overview)
        if any(
            f"${name}" in target["expr"]
            for target in panel["targets"]
            for name in ("category", "tag", "tracker")
        )
    ]
    assert len(group_panels) >= 6
    for panel in group_panels:
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert all(spec_of(name).scope == "group" or name == "qbittorrent_torrents" for name in names), (
                panel["title"],
                names,
            )


def test_torrents_dashboard_shows_the_filters_in_force() -> None:
    torrents = load_dashboard(DASHBOARDS[1])
    shown = {name for _, expr in expressions(torrents) for name in metric_names(expr)}
    assert {"qbittorrent_exporter_torrents_filter_info", "qbittorrent_exporter_torrents_left_out"} <= shown


def test_unique_panel_ids(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"


def test_grid_positions_do_not_overlap(dashboard: dict[str, Any]) -> None:
    boxes = []
    for panel in panels(dashboard):
        pos = panel["gridPos"]
        assert 1 <= pos["w"] <= 24 and pos["h"] >= 1, panel["title"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        assert pos["y"] >= 0, panel["title"]
        boxes.append((panel["title"], pos["x"], pos["y"], pos["x"] + pos["w"], pos["y"] + pos["h"]))
    for a, (title_a, ax0, ay0, ax1, ay1) in enumerate(boxes):
        for title_b, bx0, by0, bx1, by1 in boxes[a + 1 :]:
            overlap = ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1
            assert not overlap, f"{title_a!r} overlaps {title_b!r}"


def test_every_panel_and_target_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    for panel in data_panels(dashboard):
        assert panel.get("datasource") == DATASOURCE, panel["title"]
        assert panel.get("targets"), f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE, panel["title"]


def test_every_panel_has_a_description_and_a_unit(dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        assert panel.get("title"), panel
        if panel["type"] in NO_DATA_PANEL_TYPES:
            continue
        assert len(panel.get("description", "").strip()) >= 20, f"{panel['title']}: no description"
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']}: no unit"


def test_no_deprecated_panel_types(dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        assert panel["type"] in ALLOWED_PANEL_TYPES, f"{panel['title']}: {panel['type']}"


def test_ranges_use_grafana_interval_variables(dashboard: dict[str, Any]) -> None:
    for where, expr in expressions(dashboard):
        for window in range_selectors(expr):
            assert window in ("$__rate_interval", "$__range"), f"{where}: [{window}] in {expr}"
        if re.search(r"\b(rate|irate|increase|delta|idelta|deriv|changes|resets|\w+_over_time)\s*\(", expr):
            assert range_selectors(expr), f"{where}: range function without a range: {expr}"


def test_metric_names_are_in_the_catalogue(dashboard: dict[str, Any]) -> None:
    known = exposed_names() | {"up"}
    for where, expr in expressions(dashboard):
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr}"
        assert names <= known, f"{where}: not in the catalogue: {sorted(names - known)}"
    for variable in variables(dashboard).values():
        if variable["type"] == "query":
            text = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            assert re.search(r"\((\w+)", text).group(1) in known, text


def test_every_selector_filters_on_job_and_instance(dashboard: dict[str, Any]) -> None:
    for where, expr in expressions(dashboard):
        for name, matchers in selectors(expr):
            assert name is not None, f"{where}: selector without a metric name in {expr}"
            assert JOB_FILTER.search(matchers), f'{where}: {name} without job=~"$job"'
            assert INSTANCE_FILTER.search(matchers), f'{where}: {name} without instance=~"$instance"'


def test_both_dashboards_cover_the_brief() -> None:
    titles = {where.split(" [")[0] for where, _ in panel_expressions()}
    overview = {t.split(" / ", 1)[1] for t in titles if t.startswith("qBittorrent overview / ")}
    torrents = {t.split(" / ", 1)[1] for t in titles if t.startswith("qBittorrent torrents / ")}
    assert {"qBittorrent", "Connection status", "Download speed", "Upload speed", "Free disk space",
            "Logins", "Request errors", "Scrape duration", "DHT nodes"} <= overview  # fmt: skip
    assert {"Torrents", "Top uploaders in the time range", "Top downloaders in the time range",
            "Torrents needing attention"} <= torrents  # fmt: skip


def test_table_queries_are_instant() -> None:
    for path in DASHBOARDS:
        for panel in iter_panels(load_dashboard(path)):
            if panel["type"] in ("table", "bargauge", "piechart"):
                for target in panel["targets"]:
                    assert target.get("instant") is True and target.get("range") is False, panel["title"]


def test_helper_lists_every_expression() -> None:
    panel_exprs = panel_expressions()
    assert len(panel_exprs) == sum(len(expressions(load_dashboard(path))) for path in DASHBOARDS)
    assert len({where for where, _ in panel_exprs}) == len(panel_exprs), "ambiguous panel titles"
    alert_exprs = alert_expressions()
    assert alert_exprs and all(expr.strip() for _, expr in alert_exprs)


def test_expressions_are_valid_promql_after_substitution(tmp_path: Path) -> None:
    """Every panel and alert expression, variables replaced as the end-to-end test does, parses."""
    exprs = panel_expressions() + alert_expressions()
    for where, expr in exprs:
        assert "$" not in substitute(expr), f"{where}: variable left after substitution"
    rules = {
        "groups": [
            {
                "name": "syntax",
                "rules": [
                    {"record": f"check:expression_{index}", "expr": substitute(expr)}
                    for index, (_, expr) in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "expressions.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the scanner itself must be able to catch mistakes ------------------------------------------


def test_scanner_finds_names_and_matchers() -> None:
    expr = (
        'topk(10, increase(qbittorrent_bogus_total{job=~"$job", outcome="a{b}"}[$__range])\n'
        "* on (job, instance, hash) group_left (name) qbittorrent_torrent_info) # comment up\n"
        "> 0 and sum by (state) (rate(other[5m] offset 6h)) > 1e3"
    )
    assert selectors(expr) == [
        ("qbittorrent_bogus_total", '{job=~"$job", outcome="a{b}"}'),
        ("qbittorrent_torrent_info", ""),
        ("other", ""),
    ]
    assert range_selectors(expr) == ["$__range", "5m"]
    assert metric_names('{__name__="x"}') == set()
    assert selectors('{__name__="x"}') == [(None, '{__name__="x"}')]
