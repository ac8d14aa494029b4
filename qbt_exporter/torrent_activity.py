"""Which of the exporter's torrent states (``model.TORRENT_STATES``) have a torrent running, and which
have it held still: what the per-torrent calls' plans need to know to skip calls that cannot tell
anything new.

qBittorrent keeps a stopped, queued, errored or missing-files torrent paused in libtorrent: it has
no peers, announces to no tracker, and none of its counters moves (libtorrent counts active and
seeding time only while a torrent is not paused). A running torrent announces to its trackers
whichever of its running states it is in: moving between them (``stalledUP`` and ``uploading`` as
peers come and go, ``downloading`` to ``uploading`` when it completes) is not something its
trackers see.
"""

from __future__ import annotations

from qbt_exporter.qbittorrent.model import TORRENT_STATES

# Paused in libtorrent: no peers, no announce, no counter moves while it stays so.
HELD_STATES: frozenset[str] = frozenset(
    {"stoppedDL", "stoppedUP", "queuedDL", "queuedUP", "error", "missingFiles"}
)

# Not running yet: files being checked or allocated (no announce until they are), or a state this
# exporter cannot read.
_NOT_STARTED: frozenset[str] = frozenset(
    {"allocating", "checkingDL", "checkingResumeData", "checkingUP", "queuedForChecking", "unknown"}
)

# Started in libtorrent: it may have peers, it announces, its counters move (downloading, stalled,
# uploading, forced, fetching metadata, moving its files).
RUNNING_STATES: frozenset[str] = frozenset(TORRENT_STATES) - HELD_STATES - _NOT_STARTED


def announce_class(state: str) -> str:
    """``running`` for every running state, else the state itself: a change of it is a change its
    trackers may show (started, stopped, checked, failed)."""
    return "running" if state in RUNNING_STATES else state
