"""The torrent states of qBittorrent 4.0.4 and how the simulated ones follow each other.

Why apart from the world: these are facts about the real server (every state string it can send,
which ones count as paused, complete or checking) plus the simulator's chosen mix and transition
weights; the evolution code and the documents both read them, and they change for different reasons
than either.
"""

from __future__ import annotations

#: Every state string 4.0.4 can produce (qbittorrent-api.md §7.6).
STATES: tuple[str, ...] = (
    "error",
    "missingFiles",
    "uploading",
    "pausedUP",
    "queuedUP",
    "stalledUP",
    "checkingUP",
    "forcedUP",
    "allocating",
    "downloading",
    "metaDL",
    "pausedDL",
    "queuedDL",
    "stalledDL",
    "checkingDL",
    "forcedDL",
    "queuedForChecking",
    "checkingResumeData",
    "unknown",
)
# Initial mix: most torrents sit idle, as on a real long-running seedbox.
INITIAL_WEIGHTS: dict[str, float] = {
    "stalledUP": 45,
    "pausedUP": 15,
    "uploading": 8,
    "stalledDL": 6,
    "downloading": 5,
    "pausedDL": 5,
    "queuedUP": 3,
    "queuedDL": 3,
    "checkingUP": 1,
    "checkingDL": 1,
    "error": 1,
    "missingFiles": 1,
    "forcedUP": 1,
    "forcedDL": 1,
    "metaDL": 1,
    "allocating": 0.5,
    "checkingResumeData": 0.5,
    "queuedForChecking": 0.5,
    "unknown": 0.3,
}
COMPLETE = frozenset({"uploading", "pausedUP", "queuedUP", "stalledUP", "checkingUP", "forcedUP"})
PAUSED = frozenset({"pausedUP", "pausedDL", "error", "missingFiles"})  # isPaused() in 4.0.4
CHECKING = frozenset({"checkingUP", "checkingDL", "checkingResumeData", "queuedForChecking"})
TRANSIENT = CHECKING | {"allocating"}
DL_ACTIVE = frozenset({"downloading", "forcedDL"})
UP_ACTIVE = frozenset({"uploading", "forcedUP"})
# What a random event turns a torrent into (weights), by current state.
TRANSITIONS: dict[str, dict[str, float]] = {
    "stalledUP": {"uploading": 6, "pausedUP": 2, "queuedUP": 0.5, "checkingUP": 0.5, "forcedUP": 0.3},
    "uploading": {"stalledUP": 8, "pausedUP": 2},
    "pausedUP": {"stalledUP": 6, "checkingUP": 1, "missingFiles": 0.3},
    "queuedUP": {"stalledUP": 5, "uploading": 3},
    "forcedUP": {"uploading": 5, "stalledUP": 5},
    "downloading": {"stalledDL": 5, "pausedDL": 2, "queuedDL": 1},
    "stalledDL": {"downloading": 7, "pausedDL": 2, "error": 0.2},
    "pausedDL": {"downloading": 5, "queuedDL": 2, "checkingDL": 1},
    "queuedDL": {"downloading": 6, "stalledDL": 2},
    "forcedDL": {"downloading": 5, "stalledDL": 2},
    "metaDL": {"downloading": 6, "stalledDL": 2},
    "error": {"checkingDL": 3, "pausedDL": 1},
    "missingFiles": {"checkingUP": 3, "pausedUP": 1},
    "unknown": {"stalledDL": 1, "stalledUP": 1},
}
