"""The exporter's own picture of one qBittorrent, independent of the API flavour that produced it.

Every value is in base units (bytes, bytes per second, seconds, Unix seconds, ratios 0..1) and is
``None`` where qBittorrent means "unknown" or "not applicable" (-1, eta 8640000, the 4294967295 date,
``"-"``, a field this version does not send, a value that did not parse). ``None`` is never turned
into 0 downstream: an absent series is honest, a zero is a lie that ``rate()`` reads as a reset.

Only the flavour modules (``qbt_exporter.qbittorrent.flavours.*``) build these objects from wire
JSON; everything after them reads only this module.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, NamedTuple

ApiKind = Literal["legacy", "v2"]

CONNECTION_STATUSES: tuple[str, ...] = ("connected", "firewalled", "disconnected")

# The exporter's own torrent states: every state any qBittorrent 3.2.0 - 5.2.x reports
# (qbittorrent-api.md section 7.6) under 5.0's names, so that one dashboard and one rule file serve
# every version. The flavours map the wire spellings onto these (flavours.common.normalise_state);
# a state they do not know is "unknown".
TORRENT_STATES: tuple[str, ...] = (
    "allocating",
    "checkingDL",
    "checkingResumeData",
    "checkingUP",
    "downloading",
    "error",
    "forcedDL",
    "forcedMetaDL",
    "forcedUP",
    "metaDL",
    "missingFiles",
    "moving",
    "queuedDL",
    "queuedForChecking",
    "queuedUP",
    "stalledDL",
    "stalledUP",
    "stoppedDL",
    "stoppedUP",
    "unknown",
    "uploading",
)

# States in which a torrent moves data or its files, so its per-torrent properties go stale fast.
BUSY_STATES: frozenset[str] = frozenset(
    {
        "allocating",
        "checkingDL",
        "checkingResumeData",
        "checkingUP",
        "downloading",
        "forcedDL",
        "forcedMetaDL",
        "forcedUP",
        "metaDL",
        "moving",
        "uploading",
    }
)


# What qBittorrent says about one tracker of a torrent, under the exporter's own names (the flavours map
# the wire's translated strings and integer codes onto these; qbittorrent-api.md sections 7.4, 8.6).
# "not_working" is every version's "Not working"; "error" (the tracker answered with a failure) and
# "unreachable" are 5.0+'s finer codes; "unknown" is a string or code this exporter does not know,
# such as a status translated into the WebUI's language on the legacy API.
TRACKER_ENTRY_STATUSES: tuple[str, ...] = (
    "working",
    "updating",
    "not_contacted",
    "not_working",
    "error",
    "unreachable",
    "unknown",
)


@dataclass(frozen=True, slots=True)
class TrackerEntry:
    """One real tracker of a torrent (never the DHT/PeX/LSD pseudo-entries).

    ``host`` is the announce URL's host name only: the URL carries the user's passkey in its path,
    query or user-info and never leaves the flavour. ``message`` is the tracker's last message as
    qBittorrent reports it; it may quote the announce URL (legacy versions do), so it is for
    classification only and must never become a label or be logged unredacted.
    """

    host: str
    status: str  # one of TRACKER_ENTRY_STATUSES
    message: str = ""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """Who answered: the application version and which API dialect it speaks."""

    version: str  # as qBittorrent prints it, e.g. "v4.0.4"
    api: ApiKind
    api_version: str  # legacy: the integer of /version/api ("17"); v2: webapiVersion ("2.8.19")


@dataclass(frozen=True, slots=True)
class Transfer:
    """Global transfer state (legacy /query/transferInfo, v2 sync/maindata server_state)."""

    connection_status: str | None = None  # one of CONNECTION_STATUSES
    dht_nodes: int | None = None
    download_speed: float | None = None
    upload_speed: float | None = None
    download_limit: float | None = None  # 0 = no limit, as qBittorrent reports it
    upload_limit: float | None = None
    session_downloaded: float | None = None
    session_uploaded: float | None = None
    alltime_downloaded: float | None = None
    alltime_uploaded: float | None = None
    peer_connections: int | None = None
    free_disk_space: float | None = None
    alt_speed_limits: bool | None = None


@dataclass(frozen=True, slots=True)
class TorrentProperties:
    """The per-torrent values only the properties endpoint has on some versions."""

    downloaded: float | None = None
    uploaded: float | None = None
    wasted: float | None = None
    active_seconds: float | None = None
    seeding_seconds: float | None = None
    connections: int | None = None


PROPERTY_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TorrentProperties))


class Torrent(NamedTuple):
    """One torrent from the torrent list, optionally completed from its properties.

    A named tuple rather than a frozen dataclass: just as immutable and read by attribute, but
    built by one C call (``tuple.__new__``) where a frozen dataclass runs an ``object.__setattr__``
    per field, 8 µs a torrent, a quarter of a second per scrape at 10,000 torrents. Immutability
    matters: a snapshot's torrents are shared by every scrape that joins it.
    """

    # 40 (or 64) hex characters as qBittorrent sent them, the identity of every per-torrent series;
    # "" for a torrent whose hash was unusable: it counts in the per-state totals and nowhere else.
    hash: str
    name: str
    state: str  # one of TORRENT_STATES
    category: str = ""  # "" = none
    tags: str = ""  # comma-separated, sorted, no spaces; "" = none
    tracker: str = ""  # host name of the working tracker only (announce URLs carry passkeys)
    # 5.2+ (sync/maindata): qBittorrent's own "some tracker failed" flags; None on other versions.
    tracker_error: bool | None = None
    tracker_warning: bool | None = None
    size: float | None = None
    amount_left: float | None = None
    progress: float | None = None
    download_speed: float | None = None
    upload_speed: float | None = None
    eta: float | None = None
    ratio: float | None = None
    seeds: int | None = None
    leechers: int | None = None
    swarm_seeds: int | None = None
    swarm_leechers: int | None = None
    added: float | None = None
    completed: float | None = None
    last_activity: float | None = None
    # The same fields as TorrentProperties: filled from the list where the version has them there,
    # otherwise from the properties endpoint (see with_properties).
    downloaded: float | None = None
    uploaded: float | None = None
    wasted: float | None = None
    active_seconds: float | None = None
    seeding_seconds: float | None = None
    connections: int | None = None

    @property
    def identified(self) -> bool:
        """False for a torrent without a usable hash: no per-torrent series, no properties call."""
        return bool(self.hash)

    def missing_properties(self) -> bool:
        """True when some property-only value is absent from the list, so a properties call helps
        (never for an unidentified torrent: there is no hash to ask about)."""
        return bool(self.hash) and None in property_values(self)

    def with_properties(self, props: TorrentProperties | None) -> Torrent:
        """Fill the values the list lacked from ``props``; the list's own values always win.

        Runs for every torrent of every scrape, so the copy is built positionally from the tuple."""
        if props is None:
            return self
        values = list(self)
        filled = False
        for index, value in zip(_PROPERTY_INDEX, property_values(props), strict=True):
            if value is not None and values[index] is None:
                values[index] = value
                filled = True
        return new_torrent(values) if filled else self


TORRENT_FIELDS: tuple[str, ...] = Torrent._fields


# A Torrent from all its values in field order, by one C-level call: without the keyword-argument
# constructor's Python-level ``__new__`` (the flavours and the properties pass build 10,000 of
# these per scrape).
new_torrent: Callable[[Iterable[object]], Torrent] = partial(tuple.__new__, Torrent)
# A torrent's hash, by one C-level getter: truthy exactly when ``Torrent.identified``.
hash_of = operator.attrgetter("hash")
# The property-only values of a Torrent or a TorrentProperties, in PROPERTY_FIELDS order.
property_values = operator.attrgetter(*PROPERTY_FIELDS)


def identified_torrents(torrents: Iterable[Torrent]) -> list[Torrent]:
    """The torrents with a usable hash (``Torrent.identified``), in list order, by one C-level
    pass: the selection and the per-torrent passes ask it of every list, every scrape."""
    return list(filter(hash_of, torrents))


_PROPERTY_INDEX = tuple(TORRENT_FIELDS.index(name) for name in PROPERTY_FIELDS)


@dataclass(slots=True)
class Snapshot:
    """Everything one scrape learned from qBittorrent, ready for the collector."""

    server: ServerInfo
    transfer: Transfer
    torrents: list[Torrent] = field(default_factory=list)
