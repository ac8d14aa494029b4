"""The torrent list decoded by msgspec, where it is installed: from the reply's bytes straight into
one small struct per torrent that holds only the values ``TorrentReader`` reads.

The json module's scanner builds a dict of every torrent's 40-odd members, each key a str, from
text the body is first decoded into (``jsonstream``); the exporter then reads 27 of them and drops
the dict. msgspec reads the bytes themselves, skips the members nobody reads without making
objects of them, and gives the rest as a tuple: at 10,000 torrents it takes a third of the CPU of
the stdlib path and a lower memory peak (benchmarks/README.md, issue 13's third round).

It must not change a single value. Its fields are typed ``Any``, so whatever a member holds (a
string where a number belongs, an object, a boolean) reaches ``TorrentReader``'s own checks as the
json module gives it: msgspec decodes what it accepts to the same values (integers wider than 64
bits included). What it refuses (``NaN``, ``1e400``, an integer of more than 4,300 digits, bytes
that are not UTF-8, a lone surrogate escape, a byte order mark, an element of the list that is not
an object, a maindata without ``server_state``, anything that is not JSON) it refuses for the whole
reply, and the reply is read again by the stdlib path, which decides its values and its errors as
before. A member repeated within an object is its last copy either way, at the first copy's place.

msgspec has wheels for x86-64 and ARM64 (Linux glibc and musl, macOS, Windows); elsewhere it is not
installed (pyproject) and ``ListDecoder`` is never built: the stdlib path reads every reply.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

try:
    import msgspec
except ImportError:  # pragma: no cover - depends on the platform
    msgspec = None


class Refused(Exception):
    """msgspec does not decode this reply as it stands: read it with the stdlib path instead."""


class ListDecoder:
    """Decodes list replies into (hash, values) pairs, the values in the order of ``keys``."""

    __slots__ = ("_array", "_maindata")

    def __init__(self, keys: tuple[str, ...]) -> None:
        """``keys``: the wire names of the values to keep, "hash" first (``torrentlist.wire_keys``)."""
        if keys[0] != "hash":
            raise ValueError("the hash must be the first key")
        # Fields are named f0, f1, ...: the wire names are given to msgspec as the fields' names
        # in JSON. gc=False: a struct of decoded JSON values can be part of no reference cycle.
        fields = [(f"f{i}", Any, msgspec.field(default=None, name=key)) for i, key in enumerate(keys)]
        torrent = msgspec.defstruct("WireTorrent", fields, gc=False)
        maindata = msgspec.defstruct(
            "WireMaindata",
            [
                ("server_state", dict[str, Any]),
                # 4.6+ leaves out an empty "torrents" on a full update.
                ("torrents", dict[str, torrent], msgspec.field(default_factory=dict)),  # type: ignore[valid-type]
            ],
        )
        self._array = msgspec.json.Decoder(list[torrent])  # type: ignore[valid-type]
        self._maindata = msgspec.json.Decoder(maindata)

    def array(self, body: bytes) -> Iterable[tuple[object, tuple[Any, ...]]]:
        """A legacy ``/query/torrents`` body: each torrent's hash member and values."""
        torrents = _decode(self._array, body)
        return ((values[0], values) for values in map(msgspec.structs.astuple, torrents))

    def maindata(self, body: bytes) -> tuple[dict[str, Any], Iterable[tuple[object, tuple[Any, ...]]]]:
        """A full ``sync/maindata`` body: its ``server_state`` object, and each torrent's key (its
        hash) and values."""
        data = _decode(self._maindata, body)
        astuple = msgspec.structs.astuple
        return data.server_state, ((key, astuple(torrent)) for key, torrent in data.torrents.items())


def _decode(decoder: Any, body: bytes) -> Any:
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        raise Refused from None


def list_decoder(keys: tuple[str, ...]) -> ListDecoder | None:
    """A decoder for these keys, or None where msgspec is not installed."""
    return ListDecoder(keys) if msgspec is not None else None
