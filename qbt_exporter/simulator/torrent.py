"""One simulated torrent: its state and the values 4.0.4 derives from it (ratio, progress, ETA...).

Why apart: the world changes torrents and the documents read them; both need the same rules for
derived values (libtorrent's float progress, the 9999 ratio cap, "never transferred" activity), so
those rules live once, with the state they are computed from. Nothing here knows HTTP or JSON.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from qbt_exporter.simulator.states import CHECKING, DL_ACTIVE, PAUSED

__all__ = ["MAX_ETA", "MAX_RATIO", "Torrent"]

MAX_ETA = 8640000
MAX_RATIO = 9999


def _f32(value: float) -> float:
    """Round through a C float: libtorrent's progress is a float, printed by Qt as a double."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


@dataclass(slots=True, eq=False)
class Torrent:
    """One torrent's state. Time counters are kept as base + running-since, so idle torrents cost
    nothing per tick: only transferring ones are touched by the evolution loop."""

    hash: str = ""
    name: str = ""
    category: str = ""
    tags: str = ""
    save_path: str = "/downloads/"
    comment: str = ""
    created_by: str = "mktorrent 1.1"
    creation_date: int = 0
    added_on: int = 0
    piece_size: int = 262144
    total_size: int = 0
    size: int = 0
    completed: int = 0
    downloaded: int = 0
    uploaded: int = 0
    downloaded_session: int = 0
    uploaded_session: int = 0
    wasted: int = 0
    state: str = "stalledUP"
    dlspeed: int = 0
    upspeed: int = 0
    dl_mean: int = 0  # the speeds a transferring torrent wanders around (bytes/s)
    ul_mean: int = 0
    num_seeds: int = 0
    num_leechs: int = 0
    num_complete: int = 0
    num_incomplete: int = 0
    time_active_base: float = 0.0
    running_since: float | None = None
    seeding_base: float = 0.0
    seeding_since: float | None = None
    completion_on: int | None = None
    last_transfer: float | None = None
    trackers: list[str] = field(default_factory=list)
    tracker_ok: bool = True
    dl_limit: int = -1
    up_limit: int = -1
    ratio_limit: int = -1
    force_start: bool = False
    seq_dl: bool = False
    super_seeding: bool = False
    auto_tmm: bool = False
    has_metadata: bool = True
    magnet_uri: str = ""
    reannounce_at: float = 0.0
    transient_until: float = 0.0

    # --- derived values -------------------------------------------------------------------------
    @property
    def is_complete(self) -> bool:
        return self.has_metadata and self.completed >= self.size

    def time_active(self, now: float) -> int:
        extra = now - self.running_since if self.running_since is not None else 0.0
        return int(self.time_active_base + max(0.0, extra))

    def seeding_time(self, now: float) -> int:
        extra = now - self.seeding_since if self.seeding_since is not None else 0.0
        return int(self.seeding_base + max(0.0, extra))

    def ratio(self) -> float:
        """``TorrentHandle::realRatio`` of 4.0.4, capped at 9999 (never -1)."""
        download = self.downloaded
        if download < self.completed * 0.01:
            download = self.completed  # "a seeder who lost its stats"
        if download == 0:
            return 0 if self.uploaded == 0 else MAX_RATIO
        return min(self.uploaded / download, float(MAX_RATIO))

    def progress(self) -> float:
        if not self.has_metadata or self.size <= 0:
            return 0
        if self.completed >= self.size:
            return 1
        # libtorrent: progress_ppm / 1e6 as a float, so an incomplete torrent never shows 1
        return _f32((self.completed * 1_000_000 // self.size) / 1_000_000)

    def eta(self) -> int:
        if self.state in DL_ACTIVE and self.dlspeed > 0:
            return min(MAX_ETA, (self.size - self.completed) // self.dlspeed)
        return MAX_ETA

    def last_activity(self, now: float) -> int:
        """0 when paused or checking; otherwise now minus the time since the last transfer, and
        ``now + 1`` for a torrent that never transferred (libtorrent reports -1 then)."""
        if self.state in PAUSED or self.state in CHECKING:
            return 0
        if self.last_transfer is None:
            return int(now) + 1
        return int(self.last_transfer)

    def working_tracker(self) -> str:
        if not self.trackers or not self.tracker_ok or self.running_since is None:
            return ""
        if self.state in CHECKING or self.state in {"queuedUP", "queuedDL", "allocating"}:
            return ""
        return self.trackers[0]

    def pieces_num(self) -> int:
        if not self.has_metadata:
            return -1
        return max(1, -(-self.total_size // self.piece_size))
