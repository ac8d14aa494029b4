"""Wire-to-model translation shared by both API flavours.

The legacy API and ``/api/v2`` use the same names for almost every torrent, transfer and properties
field (qbittorrent-api.md section 8.9): what differs is the envelope (a list vs. an object keyed by
hash) and two renamed legacy fields, which the flavour passes in as ``category_key`` and
``amount_left_key``. Fields a version does not send simply read as ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from qbt_exporter.qbittorrent.errors import BadResponse, raise_for
from qbt_exporter.qbittorrent.flavours.values import Reader, valid_text
from qbt_exporter.qbittorrent.model import (
    CONNECTION_STATUSES,
    TORRENT_STATES,
    Torrent,
    TorrentProperties,
    TrackerEntry,
    Transfer,
)
from qbt_exporter.qbittorrent.redact import quote_reply

_HEX = "0123456789abcdefABCDEF"


def usable_hash(value: object) -> str | None:
    """The torrent's hash if it can identify series and be sent back in a URL, else ``None``.

    qBittorrent sends 40 hex characters (a v1 info-hash, or a v2 one truncated to 40 from 4.4); 64
    is accepted for a future full v2 id. The case is kept: legacy servers only know the hash in the
    case they sent it.
    """
    if type(value) is str and len(value) in (40, 64) and not value.strip(_HEX):  # only hex digits
        return value
    return None


@lru_cache(maxsize=4096)
def tracker_host(url: str) -> str:
    """The host name of a tracker URL, "" when there is none.

    Announce URLs carry the user's passkey in the path, query or user-info, so only the host may
    leave this function: it ends up in a label that anyone who can read the metrics sees. Cached
    because thousands of torrents usually share a handful of trackers.
    """
    if not url:
        return ""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return ""
    return host or ""


# Wire spellings of a state the exporter reports under another name: 5.0 renamed pausedUP/pausedDL
# to stoppedUP/stoppedDL, and older versions' torrents are reported under the new names.
STATE_ALIASES: dict[str, str] = {"pausedUP": "stoppedUP", "pausedDL": "stoppedDL"}


def normalise_state(raw: str) -> str | None:
    """Map a wire state string to one of TORRENT_STATES; ``None`` when it is not a known state."""
    state = STATE_ALIASES.get(raw, raw)
    return state if state in TORRENT_STATES else None


def normalise_tags(raw: str) -> str:
    """qBittorrent's ``"b, a"`` as ``"a,b"``: one spelling per set, so the label does not churn."""
    if not raw:
        return ""
    return ",".join(sorted({tag.strip() for tag in raw.split(",")} - {""}))


def _state(r: Reader) -> str:
    """The torrent's state as one of TORRENT_STATES; one qBittorrent does not name is "unknown"."""
    raw_state = r.text("state", required=True)
    state = normalise_state(raw_state) if raw_state is not None else None
    if state is None:
        if raw_state is not None:
            r.invalid += 1  # a state this exporter does not know; a missing one is already counted
        return "unknown"
    return state


def parse_torrent(
    obj: Mapping[str, Any],
    torrent_hash: str,
    *,
    category_key: str = "category",
    amount_left_key: str = "amount_left",
) -> tuple[Torrent, int]:
    """One torrent object as a Torrent, and how many of its values were unreadable.

    Property-only values (downloaded, wasted, seeding time, ...) are taken from the list where the
    version sends them there; the rest stay ``None`` for the properties call to fill.

    The reference reading of a torrent: ``torrentlist.TorrentReader.fast`` reads clean torrents
    faster and must agree with this function wherever it accepts one.
    """
    r = Reader(obj)
    state = _state(r)
    tags = r.text("tags")
    tracker = r.text("tracker")
    torrent = Torrent(
        hash=torrent_hash,
        name=r.text("name", required=True) or "",
        state=state,
        category=r.text(category_key) or "",
        tags=normalise_tags(tags) if tags else "",
        tracker=tracker_host(tracker) if tracker else "",
        tracker_error=r.flag("has_tracker_error"),
        tracker_warning=r.flag("has_tracker_warning"),
        size=r.amount("size"),
        amount_left=r.amount(amount_left_key),
        progress=r.amount("progress"),
        download_speed=r.amount("dlspeed"),
        upload_speed=r.amount("upspeed"),
        eta=r.eta("eta"),
        # 9999 is kept: it is qBittorrent's cap ("at least 9999") and still orders torrents
        # correctly; -1 (3.2.x, 5.1.1+) is an infinite ratio, which has no number.
        ratio=r.amount("ratio"),
        seeds=r.count("num_seeds"),
        leechers=r.count("num_leechs"),
        swarm_seeds=r.count("num_complete"),
        swarm_leechers=r.count("num_incomplete"),
        added=r.timestamp("added_on"),
        completed=r.timestamp("completion_on"),
        last_activity=r.timestamp("last_activity"),
        downloaded=r.amount("downloaded"),
        uploaded=r.amount("uploaded"),
        wasted=r.amount("total_wasted"),
        active_seconds=r.amount("time_active"),
        seeding_seconds=r.amount("seeding_time"),
        connections=r.count("connections_count"),
    )
    return torrent, r.invalid


def unidentified(obj: Mapping[str, Any], category_key: str) -> tuple[Torrent, int]:
    """A torrent object without a usable hash: only what the per-state totals need (hash "")."""
    r = Reader(obj)
    state = _state(r)
    return Torrent(hash="", name="", state=state, category=r.text(category_key) or ""), r.invalid


def parse_torrents(items: Iterable[tuple[object, object]], **keys: str) -> tuple[list[Torrent], int]:
    """(hash, object) pairs as Torrents, and how many values were unreadable: the flavours' reading
    (``torrentlist.TorrentReader.collect``, whose docstring says what is kept and counted) by a
    reader that remembers nothing, for tests and benchmarks."""
    from qbt_exporter.qbittorrent.flavours.torrentlist import TorrentReader  # it builds on this module

    return TorrentReader(**keys).collect(items)


def parse_transfer(obj: Mapping[str, Any]) -> tuple[Transfer, int]:
    """Legacy transferInfo or v2 server_state as a Transfer; keys a version lacks read as ``None``."""
    r = Reader(obj)
    status = r.text("connection_status")
    if status is not None and status not in CONNECTION_STATUSES:
        r.invalid += 1
        status = None
    transfer = Transfer(
        connection_status=status,
        dht_nodes=r.count("dht_nodes"),
        download_speed=r.amount("dl_info_speed"),
        upload_speed=r.amount("up_info_speed"),
        download_limit=r.amount("dl_rate_limit"),
        upload_limit=r.amount("up_rate_limit"),
        session_downloaded=r.amount("dl_info_data"),
        session_uploaded=r.amount("up_info_data"),
        alltime_downloaded=r.amount("alltime_dl"),
        alltime_uploaded=r.amount("alltime_ul"),
        peer_connections=r.count("total_peer_connections"),
        free_disk_space=r.amount("free_space_on_disk"),  # -1 until 4.6+'s checker has run
        alt_speed_limits=r.flag("use_alt_speed_limits"),
    )
    return transfer, r.invalid


def parse_properties(obj: Mapping[str, Any]) -> tuple[TorrentProperties, int]:
    """propertiesGeneral / torrents/properties, which use the same names in both APIs."""
    r = Reader(obj)
    props = TorrentProperties(
        downloaded=r.amount("total_downloaded"),
        uploaded=r.amount("total_uploaded"),
        wasted=r.amount("total_wasted"),
        active_seconds=r.amount("time_elapsed"),
        seeding_seconds=r.amount("seeding_time"),
        connections=r.count("nb_connections"),
    )
    return props, r.invalid


def shaped(kind: type, what: str, endpoint: str) -> Callable[[object], Any]:
    """A ``check`` for ``Client.get_json``: the reply must have this top-level JSON type."""
    return lambda value: expect(value, kind, what, endpoint)


# Tracker status as the legacy API and v2 4.1.0-4.1.4 send it: the English source text, translated into
# the WebUI's language before it is sent (qbittorrent-api.md 7.4, 8.6). Other texts are "unknown".
TRACKER_STATUS_TEXTS: dict[str, str] = {
    "Working": "working",
    "Updating...": "updating",
    "Not working": "not_working",
    "Not contacted yet": "not_contacted",
}
# Tracker status codes from 4.1.5 (0, "disabled", is only ever a DHT/PeX/LSD pseudo-entry's; 3 is not
# produced from 5.2, which sends a separate "updating" flag; 5 and 6 are 5.0+).
TRACKER_STATUS_CODES: dict[int, str] = {
    1: "not_contacted",
    2: "working",
    3: "updating",
    4: "not_working",
    5: "error",
    6: "unreachable",
}
# 4.1.5+ list DHT, PeX and LSD first as "** [DHT] **" etc.: they are no trackers.
PSEUDO_TRACKER_PREFIX = "** ["


def _tracker_status(raw: object) -> tuple[str, bool]:
    """The exporter's status for a wire status, and whether the value was unreadable."""
    if type(raw) is str:
        return TRACKER_STATUS_TEXTS.get(raw, "unknown"), False  # a translation is no fault
    if type(raw) is float and raw.is_integer():
        raw = int(raw)
    if type(raw) is int and raw in TRACKER_STATUS_CODES:
        return TRACKER_STATUS_CODES[raw], False
    return "unknown", True


def _tracker_message(obj: Mapping[str, Any]) -> str:
    """The tracker's message; 5.2+ keep a failure's text per endpoint, so look there when the
    entry's own is empty."""
    msg = obj.get("msg")
    if type(msg) is str and msg:
        return valid_text(msg)
    endpoints = obj.get("endpoints")
    if type(endpoints) is list:
        for endpoint in endpoints:
            text = endpoint.get("msg") if type(endpoint) is dict else None
            if type(text) is str and text:
                return valid_text(text)
    return ""


def parse_trackers(items: object, endpoint: str = "torrent_trackers") -> tuple[list[TrackerEntry], int]:
    """A trackers reply (legacy propertiesTrackers, v2 torrents/trackers) as TrackerEntries, and how
    many values were unreadable. Given to ``Client.get_json`` as its ``check``, so that a reply of
    the wrong shape counts as ``bad_response``.

    The pseudo-entries are skipped. An entry that is not an object or has no URL string makes the
    whole reply BadResponse: with one tracker unreadable, "none works" may be false, so that
    torrent has no tracker series this time rather than a wrong one. An unknown status is
    "unknown"; a message that is not a string is "".
    """
    entries: list[TrackerEntry] = []
    invalid = 0
    for obj in expect(items, list, "array", endpoint):
        url = obj.get("url") if isinstance(obj, dict) else None
        if type(url) is not str:
            raise BadResponse(f"{endpoint}: a tracker entry without a URL", endpoint=endpoint)
        if url.startswith(PSEUDO_TRACKER_PREFIX):
            continue
        status, bad = _tracker_status(obj.get("status"))
        if status != "working" and obj.get("updating") is True:  # 5.2+: announcing right now
            status = "updating"
        msg = obj.get("msg")
        invalid += bad + (msg is not None and type(msg) is not str)
        entries.append(TrackerEntry(tracker_host(valid_text(url)), status, _tracker_message(obj)))
    return entries, invalid


def expect(value: object, kind: type, what: str, endpoint: str) -> Any:
    """``value`` if it has the top-level JSON type the endpoint promises, else BadResponse.

    A reply of the wrong shape (an HTML page that happens to parse, a bare string) says nothing
    reliable about any torrent, so the whole call fails rather than yielding an empty list.
    """
    if not isinstance(value, kind):
        raise BadResponse(
            f"{endpoint}: expected a JSON {what}, got {type(value).__name__}", endpoint=endpoint
        )
    return value


def version_text(status: int, text: str, endpoint: str) -> str:
    """A version string reply ("v4.0.4", "2.8.19") checked for being one, not an error page."""
    raise_for(status, endpoint=endpoint)
    version = text.strip()
    if not version or len(version) > 40 or not version.isprintable() or " " in version or "<" in version:
        raise BadResponse(f"{endpoint}: not a version string: {quote_reply(version, 40)}", endpoint=endpoint)
    return version
