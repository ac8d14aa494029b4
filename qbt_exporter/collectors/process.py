"""The exporter process's own metrics (``process_*``, ``python_*``), from prometheus_client's own
collectors, rendered through the same fast path as everything else.

These are what node_exporter calls the exporter metrics: ``--web.disable-exporter-metrics`` turns
them off (the ``qbittorrent_exporter_*`` series stay: they are about qBittorrent's reading, not the
process). Output (values vary per run)::

    process_resident_memory_bytes 4.2e+07
    process_cpu_seconds_total 1.3
    process_open_fds 9.0
    python_gc_collections_total{generation="0"} 112.0
    python_info{implementation="CPython",major="3",minor="11",patchlevel="7",version="3.11.7"} 1.0

They live in a private prometheus_client registry, never the global one: nothing else in the
process can add series to the exposition, and a second ``Collectors`` in one process (the tests)
does not collide with the first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import Metric

from qbt_exporter.exposition import Family
from qbt_exporter.metrics import MetricSpec

log = logging.getLogger(__name__)


def as_families(metrics: Iterable[Metric]) -> list[Family]:
    """prometheus_client families as the exporter's own, gauges and counters only (the only kinds
    these collectors produce); rendered byte for byte as ``generate_latest`` would."""
    out: list[Family] = []
    for metric in metrics:
        if metric.type not in ("gauge", "counter"):
            continue
        name = metric.name + "_total" if metric.type == "counter" else metric.name
        samples = [sample for sample in metric.samples if sample.name == name]
        labels = tuple(samples[0].labels) if samples else ()
        spec = MetricSpec(name, metric.type, metric.documentation, "exporter", labels)  # type: ignore[arg-type]
        out.append(Family(spec, [(*(s.labels[n] for n in labels), s.value) for s in samples]))
    return out


class ProcessMetrics:
    """process_* (where /proc exists), python_info and python_gc_* of this process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def families(self) -> list[Family]:
        try:
            return as_families(self.registry.collect())
        except Exception:  # the process's own metrics must never cost qBittorrent's
            log.exception("cannot read the process metrics; left out of this scrape")
            return []
