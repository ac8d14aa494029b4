"""The JSON documents of 4.0.4 built from the world, and Qt's way of writing them.

Why apart: which keys each document has, in which form (``-1`` against ``4294967295`` for "never",
no ``f_l_piece_prio`` without metadata, integers without a fraction) is what the recordings of a real
4.0.4 pin down and the exporter parses; the world only knows values. The encoding is Qt's: compact,
keys sorted (QVariantMap), non-ASCII as raw UTF-8.
"""

from __future__ import annotations

import json
import math
from typing import Any

from qbt_exporter.simulator.states import CHECKING
from qbt_exporter.simulator.torrent import Torrent
from qbt_exporter.simulator.world import World

__all__ = [
    "Raw",
    "list_item",
    "properties",
    "qt_json",
    "qt_number",
    "torrent_list",
    "trackers",
    "trackers_v2",
    "transfer_info",
]

UNSET_DATE = 4294967295  # Qt's toTime_t() of an invalid QDateTime, as sent in /query/torrents

_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class Raw:
    """Already-encoded JSON spliced into a larger document without decoding it again (maindata
    holds thousands of torrents whose encodings are also kept for the next incremental diff)."""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body


def qt_json(value: Any) -> bytes:
    """Qt-like compact JSON: sorted keys (QVariantMap), raw UTF-8, integers without a fraction."""
    if isinstance(value, Raw):
        return value.body
    if isinstance(value, dict) and any(isinstance(v, (Raw, dict)) for v in value.values()):
        parts = [_ENCODER.encode(str(k)).encode("utf-8") + b":" + qt_json(value[k]) for k in sorted(value)]
        return b"{" + b",".join(parts) + b"}"
    return _ENCODER.encode(value).encode("utf-8")


def qt_number(value: float) -> float | int:
    """Qt prints integral doubles without a fraction; keep Python from writing ``1.0``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def list_item(t: Torrent, now: float, priority: int, with_hash: bool = True) -> dict[str, Any]:
    """The ``/query/torrents`` object of 4.0.4 (maindata uses it without ``hash``)."""
    item: dict[str, Any] = {
        "added_on": t.added_on,
        "amount_left": max(0, t.size - t.completed),
        "auto_tmm": t.auto_tmm,
        "category": t.category,
        "completed": t.completed,
        "completion_on": UNSET_DATE if t.completion_on is None else t.completion_on,
        "dl_limit": t.dl_limit,
        "dlspeed": t.dlspeed,
        "downloaded": t.downloaded,
        "downloaded_session": t.downloaded_session,
        "eta": t.eta(),
        "force_start": t.force_start,
        "last_activity": t.last_activity(now),
        "magnet_uri": t.magnet_uri,
        "name": t.name,
        "num_complete": t.num_complete,
        "num_incomplete": t.num_incomplete,
        "num_leechs": t.num_leechs,
        "num_seeds": t.num_seeds,
        "priority": priority,
        "progress": qt_number(t.progress()),
        "ratio": qt_number(t.ratio()),
        "ratio_limit": t.ratio_limit,
        "save_path": t.save_path,
        "seen_complete": UNSET_DATE,
        "seq_dl": t.seq_dl,
        "size": t.size,
        "state": t.state,
        "super_seeding": t.super_seeding,
        "tags": t.tags,
        "time_active": t.time_active(now),
        "total_size": t.total_size,
        "tracker": t.working_tracker(),
        "up_limit": t.up_limit,
        "uploaded": t.uploaded,
        "uploaded_session": t.uploaded_session,
        "upspeed": t.upspeed,
    }
    if t.has_metadata:
        item["f_l_piece_prio"] = False  # absent without metadata, as in btjson.cpp
    if with_hash:
        item["hash"] = t.hash
    return item


def properties(t: Torrent, now: float) -> dict[str, Any]:
    """``/query/propertiesGeneral`` of 4.0.4, from the same state as the list item."""
    elapsed = t.time_active(now)
    pieces = t.pieces_num()
    return {
        "addition_date": t.added_on,
        "comment": t.comment,
        "completion_date": -1 if t.completion_on is None else t.completion_on,
        "created_by": t.created_by if t.has_metadata else "",
        "creation_date": t.creation_date if t.has_metadata else -1,
        "dl_limit": t.dl_limit if t.dl_limit > 0 else -1,
        "dl_speed": t.dlspeed,
        "dl_speed_avg": t.downloaded // elapsed if elapsed > 0 else 0,
        "eta": t.eta(),
        "last_seen": -1,
        "nb_connections": t.num_seeds + t.num_leechs,
        "nb_connections_limit": 100,
        "peers": t.num_leechs,
        "peers_total": t.num_incomplete,
        "piece_size": t.piece_size if t.has_metadata else -1,
        "pieces_have": (pieces if t.is_complete else t.completed // t.piece_size) if t.has_metadata else 0,
        "pieces_num": pieces,
        "reannounce": int((t.reannounce_at - now) % 1800) if t.working_tracker() else 0,
        "save_path": t.save_path,
        "seeding_time": t.seeding_time(now),
        "seeds": t.num_seeds,
        "seeds_total": t.num_complete,
        "share_ratio": qt_number(t.ratio()),
        "time_elapsed": elapsed,
        "total_downloaded": t.downloaded,
        "total_downloaded_session": t.downloaded_session,
        "total_size": t.total_size,
        "total_uploaded": t.uploaded,
        "total_uploaded_session": t.uploaded_session,
        "total_wasted": t.wasted,
        "up_limit": t.up_limit if t.up_limit > 0 else -1,
        "up_speed": t.upspeed,
        "up_speed_avg": t.uploaded // elapsed if elapsed > 0 else 0,
    }


# Why a simulated torrent's trackers fail (``Torrent.tracker_ok`` False), picked by its hash so that
# the world's random draws stay as they were: (libtorrent's error text, the tracker's failure reason).
# Most are what private trackers answer for a torrent they dropped, the rest are network failures.
TRACKER_FAILURES: tuple[tuple[str, str], ...] = (
    ("tracker sent a failure message", "Unregistered torrent"),
    ("tracker sent a failure message", "Unregistered torrent"),
    ("tracker sent a failure message", "Torrent not registered with this tracker"),
    ("tracker sent a failure message", "Invalid passkey"),
    ("Connection refused", ""),
    ("Connection timed out", ""),
    ("Host not found (authoritative)", ""),
    ("tracker sent a failure message", "Rate limited"),
)


def _tracker_states(t: Torrent) -> list[tuple[str, str, int, tuple[str, str] | None]]:
    """(url, status, peers, failure) per tracker of ``t``: the one state both APIs' documents show.
    ``status`` is 4.0.4's English string; ``failure`` is (libtorrent's error, the tracker's reason)."""
    running = t.running_since is not None and t.state not in CHECKING
    out: list[tuple[str, str, int, tuple[str, str] | None]] = []
    for index, url in enumerate(t.trackers):
        if not running:
            out.append((url, "Not contacted yet", 0, None))
        elif not t.tracker_ok:
            out.append((url, "Not working", 0, TRACKER_FAILURES[int(t.hash[:4], 16) % len(TRACKER_FAILURES)]))
        elif index == 0:
            out.append((url, "Working", t.num_complete + t.num_incomplete, None))
        else:
            out.append((url, "Not contacted yet", 0, None))
    return out


def trackers(t: Torrent, now: float) -> list[dict[str, Any]]:
    """``/query/propertiesTrackers`` of 4.0.4: English status strings, no DHT/PeX/LSD pseudo-entries,
    and a failure's message in libtorrent 1.0's alert form, announce URL (passkey) included, as the
    recordings show it: ``name (url) (code) error "reason" (failures in a row)``."""
    items: list[dict[str, Any]] = []
    for url, status, peers, failure in _tracker_states(t):
        msg = ""
        if failure is not None:
            error, reason = failure
            msg = f'{t.name} ({url}) ({200 if reason else -1}) {error} "{reason}" (3)'
        items.append({"msg": msg, "num_peers": peers, "status": status, "url": url})
    return items


# 4.1.5+ status codes (qbittorrent-api.md 8.6) for 4.0.4's strings.
_V2_STATUS = {"Not contacted yet": 1, "Working": 2, "Updating...": 3, "Not working": 4}
_V2_PSEUDO = ("** [DHT] **", "** [PeX] **", "** [LSD] **")


def trackers_v2(t: Torrent, now: float) -> list[dict[str, Any]]:
    """``torrents/trackers`` of 4.6: the DHT/PeX/LSD pseudo-entries first (disabled: the simulated
    torrents are private, as in the 4.5.2 recordings), then integer status codes, and a failure's
    message as libtorrent 2.0 gives it: the tracker's reason, or the network error alone."""
    items: list[dict[str, Any]] = [
        {"msg": "This torrent is private", "num_downloaded": 0, "num_leeches": 0, "num_peers": 0,
         "num_seeds": 0, "status": 0, "tier": -1, "url": url}
        for url in _V2_PSEUDO
    ]  # fmt: skip
    for tier, (url, status, peers, failure) in enumerate(_tracker_states(t)):
        working = status == "Working"  # scrape counts only from a tracker that answered; else -1
        items.append(
            {
                "msg": "" if failure is None else (failure[1] or failure[0]),
                "num_downloaded": 0 if working else -1,
                "num_leeches": t.num_incomplete if working else -1,
                "num_peers": peers if working else -1,
                "num_seeds": t.num_complete if working else -1,
                "status": _V2_STATUS[status],
                "tier": tier,
                "url": url,
            }
        )
    return items


def transfer_info(world: World) -> dict[str, Any]:
    """``/query/transferInfo`` of 4.0.4: the session and all-time totals, the sum of the speeds."""
    dl_speed = sum(world.torrents[h].dlspeed for h in world.active)
    up_speed = sum(world.torrents[h].upspeed for h in world.active)
    if world.alltime_dl and world.alltime_ul:
        ratio = f"{math.floor(world.alltime_ul / world.alltime_dl * 100) / 100:.2f}"
    else:
        ratio = "-"
    return {
        "alltime_dl": world.alltime_dl,
        "alltime_ul": world.alltime_ul,
        "average_time_queue": 0,
        "connection_status": "connected",
        "dht_nodes": world.dht_nodes + (world.tick % 7),
        "dl_info_data": world.session_dl,
        "dl_info_speed": dl_speed,
        "dl_rate_limit": 0,
        "global_ratio": ratio,
        "queued_io_jobs": 0,
        "read_cache_hits": "-",
        "read_cache_overload": "0",
        "total_buffers_size": 0,
        "total_peer_connections": sum(t.num_seeds + t.num_leechs for t in world.torrents.values()),
        "total_queued_size": 0,
        "total_wasted_session": world.session_wasted,
        "up_info_data": world.session_ul,
        "up_info_speed": up_speed,
        "up_rate_limit": 0,
        "write_cache_overload": "0",
    }


def torrent_list(world: World, now: float) -> bytes:
    """The whole ``/query/torrents`` array, encoded item by item (no dict of dicts to walk again)."""
    priorities = world.priority_map()
    encode = _ENCODER.encode
    items = (list_item(t, now, priorities.get(t.hash, 0)) for t in world.torrents.values())
    return ("[" + ",".join(encode(item) for item in items) + "]").encode("utf-8")
