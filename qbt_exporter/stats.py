"""The exporter's own counters, kept across scrapes and shared by the client, flavours and scraper.

Counters only ever go up and live for the life of the process, as Prometheus expects. They are kept
in plain dicts behind one lock: they are touched a handful of times per scrape, never per torrent
series, so simplicity wins over cleverness.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator


class Stats:
    """Thread-safe labelled counters. Each family is a Counter keyed by the tuple of label values."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, Counter[tuple[str, ...]]] = {}

    def inc(self, family: str, *labels: str, amount: float = 1) -> None:
        with self._lock:
            self._families.setdefault(family, Counter())[labels] += amount

    def get(self, family: str, *labels: str) -> float:
        with self._lock:
            return self._families.get(family, Counter()).get(labels, 0)

    def items(self, family: str) -> Iterator[tuple[tuple[str, ...], float]]:
        """A sorted copy of one family's (labels, value) pairs, safe to iterate while others inc."""
        with self._lock:
            pairs = sorted(self._families.get(family, Counter()).items())
        return iter(pairs)

    # Named helpers so call sites read as what happened, and family names live in one place.
    def request(self, endpoint: str, outcome: str) -> None:
        self.inc("requests", endpoint, outcome)

    def login(self, outcome: str) -> None:
        self.inc("logins", outcome)

    def invalid_value(self, endpoint: str, amount: int = 1) -> None:
        if amount:
            self.inc("invalid_values", endpoint, amount=amount)

    def properties_refresh(self, reason: str) -> None:
        self.inc("properties_refreshes", reason)

    def trackers_refresh(self, reason: str) -> None:
        self.inc("trackers_refreshes", reason)

    def collector_error(self, collector: str) -> None:
        self.inc("collector_errors", collector)
