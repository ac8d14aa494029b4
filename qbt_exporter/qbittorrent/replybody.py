"""Reading one reply body with a cap on its decoded size, checked while reading and while inflating.

A reply is held whole in memory (the JSON parser needs it whole), so its size is the exporter's
memory: without a cap, a proxy error page streamed forever, a 60 MB body or a 300 KB gzip bomb that
inflates to 300 MB each take the process down with them. Checking the size after the fact is too
late, so the body is read in pieces and each piece is inflated with ``max_length``: no more than
``limit`` + one piece is ever held, whatever the server sends.

Inflating uses ISA-L (``isal``, a dependency where it has wheels, as for the exposition's gzip) when
it is installed: 1,000 torrents' ``sync/maindata`` (1.2 MB) inflates in about a third of zlib's
time, which is a few percent of a scrape's CPU. Its decompressor has zlib's interface (``max_length``,
``unconsumed_tail``, ``eof``, ``flush``); only its error class differs.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Callable
from urllib.parse import urlsplit

from qbt_exporter.qbittorrent.errors import BadResponse, TooLarge

try:
    from isal import isal_zlib
except ImportError:  # no wheel for this platform: pyproject installs it only where there is one
    isal_zlib = None

CHUNK = 1 << 16  # bytes asked of the socket at a time; the deadline is checked between pieces

# What we send in Accept-Encoding (``accept_encoding``), and so the only codings we must read.
# qBittorrent uses gzip.
ACCEPT_ENCODING = "gzip, deflate"
LOOPBACK_ACCEPT_ENCODING = "identity"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def accept_encoding(base_url: str, *, proxied: bool = False) -> str:
    """What to ask qBittorrent at ``base_url`` for: gzip unless it is on this machine's loopback
    and reached directly (``proxied``: through an HTTP proxy, which may be anywhere).

    qBittorrent gzips a reply at level 6 whenever it may: for 1,000 torrents' ``sync/maindata``
    (1.0 MB) that is 30–35 ms of its CPU a scrape, about a sixth of its work for the list, and
    for 10,000 torrents' legacy list about 0.3 s (``benchmarks/bench_inflate.py``). Over loopback
    the bytes cost nothing to move, so that work (and ours to inflate it) is waste; over any
    network a sixth of the bytes is worth it. A reply that comes gzipped anyway (a proxy, an odd
    server) is still read: the codings below stay accepted.
    """
    host = (urlsplit(base_url).hostname or "").lower()
    return LOOPBACK_ACCEPT_ENCODING if not proxied and _is_loopback(host) else ACCEPT_ENCODING


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name other than localhost: it may resolve anywhere
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 (Python 3.11 does not count it as loopback)
    return address.is_loopback


_WBITS = {
    "": None,
    "identity": None,
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": 32 + zlib.MAX_WBITS,  # zlib-wrapped as RFC 9110 says (a gzip header is accepted too)
}


# What a corrupt stream raises, from either inflater.
_CORRUPT: tuple[type[Exception], ...] = (zlib.error,) + ((isal_zlib.error,) if isal_zlib is not None else ())


def decompressobj(wbits: int) -> zlib._Decompress:
    """ISA-L's inflater where it is installed, zlib's otherwise (read at each call: tests swap them)."""
    if isal_zlib is not None:
        return isal_zlib.decompressobj(wbits)  # type: ignore[no-any-return]
    return zlib.decompressobj(wbits)


class _Inflater:
    """A decompressor that never returns more than the room left under the cap."""

    def __init__(self, wbits: int) -> None:
        self._zlib = decompressobj(wbits)

    def feed(self, data: bytes, room: int) -> list[bytes]:
        """The decoded pieces of ``data``; raises ``OverflowError`` as soon as they exceed ``room``."""
        pieces: list[bytes] = []
        produced = 0
        while data and not self._zlib.eof:
            piece = self._zlib.decompress(data, room - produced + 1)  # one byte over proves it
            produced += len(piece)
            if produced > room:
                raise OverflowError
            pieces.append(piece)
            data = self._zlib.unconsumed_tail
        return pieces  # bytes after the end of the stream (unused_data) are ignored, as browsers do

    def finish(self, room: int) -> list[bytes]:
        tail = self._zlib.flush()
        if len(tail) > room:
            raise OverflowError
        return [tail]


def _too_large(what: str, limit: int) -> TooLarge:
    return TooLarge(f"{what}: reply larger than {limit} bytes (--qbittorrent.max-reply-size)")


def read_capped(
    read: Callable[[int], bytes],
    *,
    limit: int,
    content_encoding: str | None,
    content_length: str | None,
    before_each_read: Callable[[], None],
    what: str,
) -> bytes:
    """The decoded body, read by ``read(n)`` until it returns ``b""``.

    Raises ``TooLarge`` once the decoded bytes (or the bytes on the wire) exceed ``limit``, before
    reading anything if ``Content-Length`` already says so; ``BadResponse`` for a coding we did not
    ask for or a corrupt gzip stream. ``before_each_read`` raises to stop early (the deadline).
    """
    if content_length is not None and content_length.strip().isdigit() and int(content_length) > limit:
        raise _too_large(what, limit)
    coding = (content_encoding or "").strip().lower()
    if coding not in _WBITS:
        raise BadResponse(f"{what}: reply in Content-Encoding {coding!r}, which was not asked for")
    wbits = _WBITS[coding]
    inflater = _Inflater(wbits) if wbits is not None else None
    pieces: list[bytes] = []
    size = wire = 0
    try:
        while True:
            before_each_read()
            data = read(CHUNK)
            if not data:
                break
            wire += len(data)
            if wire > limit:
                raise OverflowError
            decoded = inflater.feed(data, limit - size) if inflater else [data]
            size += sum(map(len, decoded))
            if size > limit:
                raise OverflowError
            pieces.extend(decoded)
        if inflater:
            pieces.extend(inflater.finish(limit - size))
    except OverflowError:
        raise _too_large(what, limit) from None
    except _CORRUPT as exc:
        raise BadResponse(f"{what}: corrupt {coding} body ({exc})") from exc
    return b"".join(pieces)
