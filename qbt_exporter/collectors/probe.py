"""What ``/metrics`` adds when ``--config.file`` is given: the state of ``/probe`` (its targets, their
bounds, the probes refused) and of the last config reload. Output::

    qbittorrent_exporter_probe_targets 2.0
    qbittorrent_exporter_probe_targets_max 100.0
    qbittorrent_exporter_probe_target_idle_timeout_seconds 600.0
    qbittorrent_exporter_probe_target_evictions_total{reason="idle"} 0.0
    qbittorrent_exporter_probes_total{outcome="not_allowed"} 1.0
    qbittorrent_exporter_config_last_reload_successful 1.0
    qbittorrent_exporter_config_last_reload_success_timestamp_seconds 1.7645e+09

``MetricsPage`` is what ``/metrics`` serves then: the flags' qBittorrent when there is one (with the
process metrics), else the exporter's build and process metrics alone, and these families after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qbt_exporter.collectors.base import named
from qbt_exporter.collectors.exporter import build_info, counter_family
from qbt_exporter.collectors.process import ProcessMetrics
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import Family
from qbt_exporter.stats import Stats

if TYPE_CHECKING:
    from qbt_exporter.collectors.registry import Collectors
    from qbt_exporter.reload import ReloadStatus
    from qbt_exporter.targets import PoolStatus

FAMILIES = (
    "qbittorrent_exporter_probe_targets",
    "qbittorrent_exporter_probe_targets_max",
    "qbittorrent_exporter_probe_target_idle_timeout_seconds",
    "qbittorrent_exporter_probe_target_evictions_total",
    "qbittorrent_exporter_probes_total",
    "qbittorrent_exporter_config_last_reload_successful",
    "qbittorrent_exporter_config_last_reload_success_timestamp_seconds",
)
PROBE_OUTCOMES = ("ok", "bad_request", "unknown_module", "not_allowed", "pool_full")


def probe_families(pool: PoolStatus, probes: Stats, reload: ReloadStatus) -> list[Family]:
    """The families above; every outcome and reason present from the start, at 0."""
    outcomes = {(outcome,): 0.0 for outcome in PROBE_OUTCOMES}
    outcomes.update(probes.items("probes"))
    return [
        named("qbittorrent_exporter_probe_targets", [(float(pool.live),)]),
        named("qbittorrent_exporter_probe_targets_max", [(float(pool.max_targets),)]),
        named("qbittorrent_exporter_probe_target_idle_timeout_seconds", [(pool.idle_timeout,)]),
        counter_family(
            "qbittorrent_exporter_probe_target_evictions_total",
            {(reason,): float(count) for reason, count in pool.evictions.items()},
        ),
        counter_family("qbittorrent_exporter_probes_total", outcomes),
        named("qbittorrent_exporter_config_last_reload_successful", [(1.0 if reload.successful else 0.0,)]),
        named("qbittorrent_exporter_config_last_reload_success_timestamp_seconds", [(reload.last_success,)]),
    ]


class MetricsPage:
    """``/metrics`` with a config file: the default qBittorrent's families (if any), then ``extra``."""

    def __init__(
        self, default: Collectors | None, extra: Callable[[], list[Family]], *, process_metrics: bool
    ) -> None:
        self.default = default
        self.extra = extra
        self.process = ProcessMetrics() if process_metrics and default is None else None

    def collect_within(self, deadline: Deadline) -> list[Family]:
        base = self.default.collect_within(deadline) if self.default is not None else self._own()
        return base + self.extra()

    def fallback(self) -> list[Family]:
        base = self.default.fallback() if self.default is not None else self._own()
        return base + self.extra()

    def answered(self) -> None:
        if self.default is not None:
            self.default.answered()

    def _own(self) -> list[Family]:
        return [build_info(), *(self.process.families() if self.process is not None else [])]
