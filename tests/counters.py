"""Read the exporter's own counters by their catalogue name, the way /metrics exposes them.

Why: Stats keeps its families under short internal keys ("requests", "logins") with label values in
positional tuples. A test that reads those keys pins an implementation detail and says nothing about
the metric a user sees; these helpers take the name from ``qbt_exporter.metrics`` and the labels by
name, and check both against the catalogue, so a renamed key or reordered label cannot pass silently.
"""

from __future__ import annotations

from qbt_exporter.collectors.exporter import STATS_COUNTERS
from qbt_exporter.metrics import spec
from qbt_exporter.stats import Stats


def counter(stats: Stats, name: str, **labels: str) -> float:
    """The value of counter ``name`` (a catalogue name) for ``labels`` (all of them, by name)."""
    metric = spec(name)
    assert metric.kind == "counter", f"{name} is a {metric.kind}"
    assert set(labels) == set(metric.labels), f"{name} has labels {metric.labels}, not {sorted(labels)}"
    return stats.get(STATS_COUNTERS[name], *(labels[label] for label in metric.labels))


def series(stats: Stats, name: str) -> dict[tuple[str, ...], float]:
    """Every series of counter ``name`` counted so far, keyed by label values in the catalogue's
    label order (the order /metrics prints them in)."""
    assert spec(name).kind == "counter"
    return dict(stats.items(STATS_COUNTERS[name]))


def requests(stats: Stats, endpoint: str, outcome: str) -> float:
    """qbittorrent_exporter_requests_total{endpoint, outcome}: the counter most tests read."""
    return counter(stats, "qbittorrent_exporter_requests_total", endpoint=endpoint, outcome=outcome)


def logins(stats: Stats, outcome: str) -> float:
    """qbittorrent_exporter_logins_total{outcome}."""
    return counter(stats, "qbittorrent_exporter_logins_total", outcome=outcome)


def invalid_values(stats: Stats, endpoint: str) -> float:
    """qbittorrent_exporter_invalid_values_total{endpoint}."""
    return counter(stats, "qbittorrent_exporter_invalid_values_total", endpoint=endpoint)


def all_requests(stats: Stats) -> dict[tuple[str, ...], float]:
    """Every qbittorrent_exporter_requests_total series: {(endpoint, outcome): count}."""
    return series(stats, "qbittorrent_exporter_requests_total")
