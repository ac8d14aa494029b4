"""What a collector is, and the error boundary every collector runs inside.

A collector turns one ``ScrapeResult`` into the metric families of one concept (global transfer
state, the torrents, their properties, the exporter itself). It declares, by catalogue name, the
families it may emit, so that every family has exactly one owner; it reads nothing but the result,
so it can be built and tested from a plain value.

``guarded`` runs one collector: it times it, and turns an exception (an exporter bug: a value no
check foresaw, a typo) into a logged traceback, ``collector_success 0`` and one more
``collector_errors_total``, without the families it had half built. The other collectors and
``qbittorrent_up`` are untouched: one bug costs one collector's series for one scrape.
"""

from __future__ import annotations

import logging
import operator
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from qbt_exporter.exposition import Family
from qbt_exporter.metrics import spec
from qbt_exporter.scraper import ScrapeResult
from qbt_exporter.stats import Stats

log = logging.getLogger(__name__)


class Collector(ABC):
    """One concept's metric families, built from one scrape's result."""

    name: ClassVar[str]  # the value of the ``collector`` label
    families: ClassVar[tuple[str, ...]]  # catalogue names this collector may emit
    reads_qbittorrent: ClassVar[bool] = True  # nothing to build (success 0) while qBittorrent is down

    @abstractmethod
    def collect(self, result: ScrapeResult) -> Iterable[Family]:
        """The families for this scrape; called only with a snapshot if ``reads_qbittorrent``."""

    def succeeded(self, result: ScrapeResult) -> bool:
        """Whether this collector's part of the scrape worked (beyond not raising)."""
        return True


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    families: list[Family]
    success: bool
    duration: float


def named(name: str, rows: Iterable[tuple[object, ...]] | None = None) -> Family:
    """An empty family (or one over ``rows``) for the catalogue row ``name``."""
    return Family(spec(name), rows)


def labelled(name: str, labels: tuple[str, ...], rows: list[tuple[object, ...]]) -> Family:
    """The family ``name`` over ``rows`` of label values in ``labels``' order and then the value,
    put in the catalogue's label order at once: ``Family.add`` checks and orders each sample's
    keywords, and a count per state for every category, tag and tracker host is hundreds of
    samples a scrape. Labels other than the catalogue's are a bug, as they are for ``add``."""
    row = spec(name)
    if labels == row.labels:
        return Family(row, rows)
    if sorted(labels) != sorted(row.labels):
        raise ValueError(f"{name} takes labels {row.labels}, got {labels}")
    pick = operator.itemgetter(*(labels.index(label) for label in row.labels), len(labels))
    return Family(row, list(map(pick, rows)))


def guarded(
    collector: Collector, result: ScrapeResult, stats: Stats, clock: Callable[[], float] = time.perf_counter
) -> Outcome:
    """Run ``collector`` on ``result`` inside its error boundary."""
    started = clock()
    if collector.reads_qbittorrent and result.snapshot is None:
        return Outcome(collector.name, [], False, clock() - started)
    try:
        families = list(collector.collect(result))  # a generator that fails half-way fails here
        success = collector.succeeded(result)
    except Exception:
        log.exception("collector %s failed; its series are left out of this scrape", collector.name)
        stats.collector_error(collector.name)
        families, success = [], False
    return Outcome(collector.name, families, success, clock() - started)
