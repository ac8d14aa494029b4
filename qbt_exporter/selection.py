"""The torrents that get per-torrent series this scrape: the filters, then the cap.

``--torrents.max`` keeps a sudden import of 50,000 torrents from multiplying Prometheus's series:
at most N torrents get per-torrent series (and per-torrent calls), chosen by one documented rule,
stable for the same list (README "Choosing torrents"):

1. active torrents first (qBittorrent's "Active" status, or any data moving),
2. then the most recently active (``last_activity``, newest first; unknown last),
3. then the most recently added (``added``, newest first; unknown last),
4. then by hash, so that ties never depend on the order qBittorrent happened to list them.

The torrents kept are returned in qBittorrent's list order. How many were left out, and why, is
exported, so a dashboard can say that the per-torrent view is not the whole library.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from qbt_exporter.filters import Filters, describe, is_active
from qbt_exporter.qbittorrent.model import Torrent, identified_torrents


def relevance(torrent: Torrent) -> tuple[bool, float, float, str]:
    """The cap's sort key: smaller is more relevant."""
    moving = is_active(torrent) or bool(torrent.download_speed) or bool(torrent.upload_speed)
    last = torrent.last_activity if torrent.last_activity is not None else -math.inf
    added = torrent.added if torrent.added is not None else -math.inf
    return (not moving, -last, -added, torrent.hash)


@dataclass(frozen=True, slots=True)
class SelectionReport:
    """The filters in force and how many identified torrents they left out this scrape."""

    include: str = ""  # the include selectors, canonical ("" = none: every torrent)
    exclude: str = ""
    max: int | None = None
    filtered_out: int = 0  # by --torrents.include / --torrents.exclude
    capped: int = 0  # passed the filters, left out by --torrents.max


@dataclass(frozen=True, slots=True)
class Selection:
    """The filters and the cap, as configured; ``choose`` applies them to one list."""

    filters: Filters = field(default_factory=Filters)
    max: int | None = None

    @property
    def include_text(self) -> str:
        return describe(self.filters.include)

    @property
    def exclude_text(self) -> str:
        return describe(self.filters.exclude)

    def choose(self, torrents: list[Torrent]) -> tuple[list[Torrent], SelectionReport]:
        """The identified torrents that pass the filters, at most ``max`` of them, in list order,
        and the report. Torrents without a usable hash never get per-torrent series and are not
        counted as left out."""
        identified = identified_torrents(torrents)
        passing = [t for t in identified if self.filters.passes(t)] if self.filters.active else identified
        kept = passing
        if self.max is not None and len(passing) > self.max:
            ranked = heapq.nsmallest(self.max, range(len(passing)), key=lambda i: relevance(passing[i]))
            kept = [passing[i] for i in sorted(ranked)]
        report = SelectionReport(
            self.include_text,
            self.exclude_text,
            self.max,
            filtered_out=len(identified) - len(passing),
            capped=len(passing) - len(kept),
        )
        return kept, report
