"""The torrent list, from the reply's bytes to Torrents, in the CPU and memory a 10,000-torrent
scrape can afford.

Two costs dominated a scrape of 10,000 torrents, besides rendering: the memory of decoding the
whole list into dicts before reading any (about 50 MB, the process's high-water mark) and reading
250,000 values through ``values.Reader`` one accessor call each (30 µs a torrent). So:

- where msgspec is installed, the reply is decoded by it straight from the bytes into the values
  the reader reads, one small tuple per torrent (``listdecoder``: a third of the CPU, no dicts);
  a reply it refuses (not JSON, NaN, bytes that are not UTF-8, ...) is read as where it is not:
- the reply is walked element by element (``jsonstream``): each torrent's dict is turned into a
  Torrent as soon as it is decoded and dropped;
- each torrent is first read by ``TorrentReader.fast``, straight-line code that accepts only
  values that are already clean (a finite number in range, a string, a boolean, a sentinel that
  means "unknown") and reads them without counting anything. On the first value it does not
  accept, the torrent is read again by ``common.parse_torrent``, the reference reader that counts
  unreadable values. The fast reader is therefore right only where it agrees with the reference,
  which tests/qbittorrent/flavours/test_torrentlist.py checks value by value;
- tracker hosts and normalised tags are remembered from one scrape to the next, keyed by the
  wire text: a seedbox has thousands of torrents but few distinct announce URLs and tag sets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from qbt_exporter.qbittorrent.flavours.common import (
    STATE_ALIASES,
    expect,
    normalise_tags,
    parse_torrent,
    tracker_host,
    unidentified,
    usable_hash,
)
from qbt_exporter.qbittorrent.flavours.listdecoder import Refused, list_decoder
from qbt_exporter.qbittorrent.flavours.values import MAX_ETA, MAX_MAGNITUDE, NEVER, valid_text
from qbt_exporter.qbittorrent.jsonbody import CHUNK
from qbt_exporter.qbittorrent.jsonbody import parse as parse_whole
from qbt_exporter.qbittorrent.jsonbody import text as whole_text
from qbt_exporter.qbittorrent.jsonstream import JsonCursor, NotStreamable
from qbt_exporter.qbittorrent.model import TORRENT_STATES, Torrent, new_torrent

# Every wire spelling of a state the exporter knows, mapped to the exporter's name for it.
_WIRE_STATES: dict[str, str] = {**{state: state for state in TORRENT_STATES}, **STATE_ALIASES}

_M = MAX_MAGNITUDE
_MF = float(MAX_MAGNITUDE)


def wire_keys(category_key: str, amount_left_key: str) -> tuple[str, ...]:
    """The keys of a torrent object that ``TorrentReader.fast_values`` reads, in its order; the
    names of the category and of the amount left differ between API versions."""
    return (
        "hash",
        "state",
        "name",
        category_key,
        "tags",
        "tracker",
        "has_tracker_error",
        "has_tracker_warning",
        "size",
        amount_left_key,
        "progress",
        "dlspeed",
        "upspeed",
        "ratio",
        "downloaded",
        "uploaded",
        "total_wasted",
        "time_active",
        "seeding_time",
        "eta",
        "num_seeds",
        "num_leechs",
        "num_complete",
        "num_incomplete",
        "connections_count",
        "added_on",
        "completion_on",
        "last_activity",
    )


class _Unclean(Exception):
    """A value the fast reader does not accept: the reference reader reads the torrent again."""


def _finite(value: Any) -> bool:
    """A number the reference reader accepts as one (``values.Reader._number``), not a boolean."""
    kind = type(value)
    return (kind is int and -_M < value < _M) or (kind is float and -_MF < value < _MF)


def _unknown(value: Any) -> None:
    """A finite number outside a field's range is that field's "unknown" (None); anything else
    is unclean. Called only once the in-range test has failed."""
    if not _finite(value):
        raise _Unclean


def _count(value: Any) -> int | None:
    """A count that is not a non-negative int: a whole float (Qt 4 doubles) is its int, a negative
    number is "no data", a fraction (counted as unreadable) and anything else are unclean."""
    if type(value) is float:
        if value.is_integer() and -_MF < value < _MF:
            return int(value) if value >= 0 else None
        raise _Unclean
    _unknown(value)
    return None


class TorrentReader:
    """Reads torrent objects of one API flavour (its wire names for category and amount left)
    into Torrents; keeps what is worth remembering between two scrapes of the same server."""

    __slots__ = ("_decoder", "_host_of", "_tags_of", "amount_left_key", "category_key", "keys")

    def __init__(self, *, category_key: str = "category", amount_left_key: str = "amount_left") -> None:
        self.category_key = category_key
        self.amount_left_key = amount_left_key
        self.keys = wire_keys(category_key, amount_left_key)
        self._decoder = list_decoder(self.keys)  # None where msgspec is not installed
        # tracker_host's own cache holds 4,096 URLs, fewer than a large library's when each
        # torrent's URL carries a passkey.
        self._host_of = _Remembered(tracker_host)
        self._tags_of = _Remembered(normalise_tags)

    # --- one list ------------------------------------------------------------------------------
    def collect(self, items: Iterable[tuple[object, object]]) -> tuple[list[Torrent], int]:
        """(hash, object) pairs as Torrents, and how many values were unreadable.

        Every torrent object is one torrent of qBittorrent's, counted once in the per-state totals:

        - the first object for a hash wins; a later one with the same hash (in any letter case) is
          the same torrent told twice, so it is left out and counted as invalid. Without this, each
          per-torrent series would be exported twice and ``qbittorrent_torrents`` would count it
          twice;
        - an object whose hash is unusable (missing, not a string, not 40 or 64 hex characters) has
          no identity for per-torrent series, but is still a torrent: it is kept with hash "",
          state and category only, and its hash is counted as invalid;
        - an item that is not an object (a number, a string, null) is no torrent: counted as invalid.
        """
        return self._collect(items, decoded=False)

    def _collect(self, items: Iterable[tuple[object, Any]], *, decoded: bool) -> tuple[list[Torrent], int]:
        """``collect``; with ``decoded``, each object is given as the tuple of its values in the
        order of ``self.keys`` (``listdecoder``), and made a dict only for the reference reader."""
        self._host_of.next_list()
        self._tags_of.next_list()
        keys = self.keys
        torrents: list[Torrent] = []
        append = torrents.append
        seen: set[str] = set()
        invalid = 0
        for raw_hash, obj in items:
            if decoded:
                values = obj
            elif isinstance(obj, dict):
                values = map(obj.get, keys)
            else:
                invalid += 1
                continue
            torrent_hash = usable_hash(raw_hash)
            if torrent_hash is None:
                torrent, bad = unidentified(_as_object(keys, obj, decoded), self.category_key)
                append(torrent)
                invalid += bad + 1
                continue
            identity = torrent_hash.lower()
            if identity in seen:
                invalid += 1
                continue
            seen.add(identity)
            try:
                append(self.fast_values(values, torrent_hash))
            except (_Unclean, TypeError):  # TypeError: a value of a type no range test takes
                torrent, bad = parse_torrent(
                    _as_object(keys, obj, decoded),
                    torrent_hash,
                    category_key=self.category_key,
                    amount_left_key=self.amount_left_key,
                )
                append(torrent)
                invalid += bad
        return torrents, invalid

    def read_array(self, body: bytes, chunk: int = CHUNK) -> tuple[list[Torrent], int]:
        """A legacy ``/query/torrents`` body (an array of objects that carry their hash); ``chunk``
        is the size of the cursor's window (tests make it small)."""
        if self._decoder is not None:
            try:
                return self._collect(self._decoder.array(body), decoded=True)
            except Refused:
                pass  # the stdlib path decides the values, or the error, of what msgspec refuses
        try:
            cursor = JsonCursor(body, chunk)
            if not cursor.take("["):
                raise NotStreamable
            result = self.collect(_with_hash(cursor.elements()))
            cursor.finish()
            return result
        except NotStreamable:
            items = expect(parse_whole(whole_text(body)), list, "array", "torrents")
            return self.collect(_with_hash(items))

    def read_maindata(self, body: bytes, chunk: int = CHUNK) -> tuple[dict[str, Any], list[Torrent], int]:
        """A full ``sync/maindata`` body: its ``server_state`` object, and its ``torrents`` object
        (keyed by hash) as Torrents with the number of unreadable values."""
        if self._decoder is not None:
            try:
                server_state, items = self._decoder.maindata(body)
                return (server_state, *self._collect(items, decoded=True))
            except Refused:
                pass
        try:
            return self._stream_maindata(JsonCursor(body, chunk))
        except NotStreamable:
            data = expect(parse_whole(whole_text(body)), dict, "object", "maindata")
            server_state = expect(data.get("server_state"), dict, "object", "maindata")
            # 4.6+ leaves out an empty "torrents" on a full update.
            items = expect(data.get("torrents", {}), dict, "object", "maindata")
            return (server_state, *self.collect(items.items()))

    def _stream_maindata(self, cursor: JsonCursor) -> tuple[dict[str, Any], list[Torrent], int]:
        if not cursor.take("{"):
            raise NotStreamable
        members: dict[str, Any] = {}
        torrents: tuple[list[Torrent], int] = ([], 0)
        for key in cursor.object_keys():
            if key == "torrents" and cursor.take("{"):
                torrents = self.collect((h, cursor.value()) for h in cursor.object_keys())
                members[key] = {}
            else:
                members[key] = cursor.value()
        cursor.finish()
        server_state = expect(members.get("server_state"), dict, "object", "maindata")
        expect(members.get("torrents", {}), dict, "object", "maindata")
        return (server_state, *torrents)

    # --- one torrent ---------------------------------------------------------------------------
    def fast(self, obj: dict[str, Any], torrent_hash: str) -> Torrent:
        """The torrent as ``parse_torrent`` reads it, when every value is clean; ``_Unclean`` (or
        TypeError) otherwise."""
        return self.fast_values(map(obj.get, self.keys), torrent_hash)

    def fast_values(self, values: Iterable[Any], torrent_hash: str) -> Torrent:
        """``fast`` of the torrent's values in the order of ``self.keys`` (``None`` for a key it lacks).

        One test per value, written out field by field: a loop or an accessor call per value
        would cost as much as the test itself, 20 times per torrent and 10,000 torrents a scrape.
        A number field accepts ``None`` (a key this version does not send), an in-range number
        (never a boolean: ``True < 2`` holds in Python), and a finite number outside the range
        as the field's "unknown"; ``_unknown``/``_count`` take the rare cases."""
        (
            _,  # the hash: the caller has it, read from wherever this API sends it
            state,
            name,
            category,
            raw_tags,
            raw_tracker,
            error,
            warning,
            size,
            left,
            progress,
            download_speed,
            upload_speed,
            ratio,
            downloaded,
            uploaded,
            wasted,
            active,
            seeding,
            eta,
            seeds,
            leechers,
            swarm_seeds,
            swarm_leechers,
            connections,
            added,
            completed,
            last_activity,
        ) = values
        state = _WIRE_STATES.get(state) if type(state) is str else None
        if state is None or type(name) is not str:
            raise _Unclean
        if not name.isascii():
            name = valid_text(name)
        if category is None:
            category = ""
        elif type(category) is not str:
            raise _Unclean
        elif not category.isascii():
            category = valid_text(category)
        tags = self._tags_of(raw_tags)
        tracker = self._host_of(raw_tracker)
        if error is not None and type(error) is not bool:
            raise _Unclean
        if warning is not None and type(warning) is not bool:
            raise _Unclean
        # amounts: [0, 2**64)
        if size is not None and not (0 <= size < _M and type(size) is not bool):
            size = _unknown(size)
        if left is not None and not (0 <= left < _M and type(left) is not bool):
            left = _unknown(left)
        if progress is not None and not (0 <= progress < _M and type(progress) is not bool):
            progress = _unknown(progress)
        if download_speed is not None and not (0 <= download_speed < _M and type(download_speed) is not bool):
            download_speed = _unknown(download_speed)
        if upload_speed is not None and not (0 <= upload_speed < _M and type(upload_speed) is not bool):
            upload_speed = _unknown(upload_speed)
        if ratio is not None and not (0 <= ratio < _M and type(ratio) is not bool):
            ratio = _unknown(ratio)
        if downloaded is not None and not (0 <= downloaded < _M and type(downloaded) is not bool):
            downloaded = _unknown(downloaded)
        if uploaded is not None and not (0 <= uploaded < _M and type(uploaded) is not bool):
            uploaded = _unknown(uploaded)
        if wasted is not None and not (0 <= wasted < _M and type(wasted) is not bool):
            wasted = _unknown(wasted)
        if active is not None and not (0 <= active < _M and type(active) is not bool):
            active = _unknown(active)
        if seeding is not None and not (0 <= seeding < _M and type(seeding) is not bool):
            seeding = _unknown(seeding)
        # eta: [0, MAX_ETA); MAX_ETA itself is "infinite"
        if eta is not None and not (0 <= eta < MAX_ETA and type(eta) is not bool):
            eta = _unknown(eta)
        # counts: whole numbers in [0, 2**64)
        if seeds is not None and not (type(seeds) is int and 0 <= seeds < _M):
            seeds = _count(seeds)
        if leechers is not None and not (type(leechers) is int and 0 <= leechers < _M):
            leechers = _count(leechers)
        if swarm_seeds is not None and not (type(swarm_seeds) is int and 0 <= swarm_seeds < _M):
            swarm_seeds = _count(swarm_seeds)
        if swarm_leechers is not None and not (type(swarm_leechers) is int and 0 <= swarm_leechers < _M):
            swarm_leechers = _count(swarm_leechers)
        if connections is not None and not (type(connections) is int and 0 <= connections < _M):
            connections = _count(connections)
        # dates: (0, NEVER); 0, negatives and NEVER (Qt's invalid date) are "never"
        if added is not None and not (0 < added < NEVER and type(added) is not bool):
            added = _unknown(added)
        if completed is not None and not (0 < completed < NEVER and type(completed) is not bool):
            completed = _unknown(completed)
        if last_activity is not None and not (0 < last_activity < NEVER and type(last_activity) is not bool):
            last_activity = _unknown(last_activity)
        return new_torrent(
            (
                torrent_hash,
                name,
                state,
                category,
                tags,
                tracker,
                error,
                warning,
                size,
                left,
                progress,
                download_speed,
                upload_speed,
                eta,
                ratio,
                seeds,
                leechers,
                swarm_seeds,
                swarm_leechers,
                added,
                completed,
                last_activity,
                downloaded,
                uploaded,
                wasted,
                active,
                seeding,
                connections,
            )
        )


class _Remembered:
    """What a wire text reads as (normalised tags, a tracker's host), for the texts of the current
    list and of the one before: a seedbox has thousands of torrents but few distinct tag sets and
    announce URLs, and texts no longer listed are forgotten after one list."""

    __slots__ = ("_before", "_now", "_read")

    def __init__(self, read: Callable[[str], str]) -> None:
        self._read = read
        self._now: dict[str, str] = {}
        self._before: dict[str, str] = {}

    def next_list(self) -> None:
        self._before, self._now = self._now, {}

    def __call__(self, raw: Any) -> str:
        """``read(valid_text(raw))`` for a non-empty string; "" for none; ``_Unclean`` otherwise."""
        if raw is None or raw == "":
            return ""
        if type(raw) is not str:
            raise _Unclean
        value = self._now.get(raw)
        if value is None:
            value = self._before.get(raw)
            if value is None:
                value = self._read(valid_text(raw))
            self._now[raw] = value
        return value


def _as_object(keys: tuple[str, ...], obj: Any, decoded: bool) -> dict[str, Any]:
    """A torrent object for the reference reader: as decoded by json, or made from its values (a
    key the reply lacked reads as None there, as a missing key does in every accessor)."""
    return dict(zip(keys, obj, strict=True)) if decoded else obj  # type: ignore[no-any-return]


def _with_hash(items: Iterable[object]) -> Iterable[tuple[object, object]]:
    """Legacy list elements as (hash, object) pairs: the hash is a field of the object."""
    return ((obj.get("hash") if isinstance(obj, dict) else None, obj) for obj in items)
