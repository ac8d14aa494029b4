"""A time budget shared by every qBittorrent call of one scrape.

Prometheus abandons a scrape after its scrape_timeout and says how long that is in the
``X-Prometheus-Scrape-Timeout-Seconds`` header. Answering late is worse than answering with less, so
each call to qBittorrent is given at most what is left of the budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class Deadline:
    """A point on the monotonic clock; ``Deadline.never()`` for callers without a budget."""

    __slots__ = ("_clock", "_end")

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    @classmethod
    def never(cls) -> Deadline:
        return cls(math.inf)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._end - self._clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def cap(self, timeout: float) -> float:
        """The smaller of ``timeout`` and what is left, for one request's timeout."""
        return min(timeout, self.remaining())
