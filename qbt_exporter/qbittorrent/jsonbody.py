"""JSON decoding of large replies without a four-bytes-per-character copy.

``json.loads(body)`` first decodes the whole body to one ``str``, and CPython stores a ``str`` with
the width of its widest character: one torrent named in Japanese or with an emoji turns the 10 MB
list of 10,000 torrents into a 41 MB string, beside the objects being built. Non-ASCII characters
can only stand inside JSON strings, where ``\\uXXXX`` means the same thing, so a large body is
rewritten piece by piece into pure-ASCII JSON first: one byte per character, the same values.

Two things json.loads(body) does are not what an exporter wants from a server it does not trust:

- bytes that are not UTF-8 (a torrent name written in another encoding, CESU-8's encoded
  surrogates) fail the whole reply there; here they become U+FFFD, costing only the spelling of
  that one name. (A ``\\ud800`` *escape* still decodes to a lone surrogate, as JSON says it must:
  ``flavours.values.valid_text`` repairs those where text enters the model.)
- an integer of more than 4,300 digits fails the whole reply (Python's guard against slow int
  parsing); here it reads as infinity, which the value reader counts as one invalid value. The
  plain parse is tried first, so the common reply pays nothing for this.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Iterator
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

CHUNK = 1 << 20  # bytes turned into text at a time by ``ascii_pieces``
SMALL = 1 << 20  # below this, the plain path costs too little to matter
ERRORS = "qbt_exporter.json_escape"

_NON_ASCII_RUN = re.compile(rb"[\x80-\xff]+")


def _escape_as_json(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler for ``bytes.decode("ascii", ERRORS)``: the run of non-ASCII bytes that
    starts at the error, decoded as UTF-8 (U+FFFD for what is not UTF-8) and written as JSON's
    ``\\u`` escapes (surrogate pairs above the Basic Multilingual Plane, as JSON spells them).

    One call per run, not per byte: the ASCII decoder copies everything else at C speed. A run
    ends at an ASCII byte, which UTF-8 never uses inside a character, so decoding runs one at a
    time gives the characters decoding the whole body would give, replacements included."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    raw = error.object
    match = _NON_ASCII_RUN.match(raw, error.start)
    end = match.end() if match else error.end
    return encode_basestring_ascii(raw[error.start : end].decode("utf-8", "replace"))[1:-1], end


codecs.register_error(ERRORS, _escape_as_json)


def loads(body: bytes) -> Any:
    """``json.loads(body)`` for a UTF-8 body, in less memory, with bytes that are not UTF-8 read as
    U+FFFD and overlong integers as infinity; ``ValueError`` for what is not JSON."""
    return parse(text(body))


def text(body: bytes) -> str:
    """The body as the text ``parse`` takes: one byte per character whatever it holds.

    Split from ``parse`` so that a caller can let go of the bytes before the objects are built:
    json decodes a bytes body to a str anyway, and holding both beside the torrent list costs the
    body's size again (10 MB at 10,000 torrents) at the scrape's peak (``client.get_json``)."""
    if body.isascii():
        return body.decode("ascii")  # nothing to replace or to widen
    if len(body) < SMALL:
        return body.decode("utf-8-sig", "replace")
    return "".join(ascii_pieces(body))


def ascii_pieces(body: bytes, chunk: int = CHUNK) -> Iterator[str]:
    """The body as pure-ASCII JSON text, about ``chunk`` bytes at a time, a leading UTF-8 byte
    order mark dropped (as the ``utf-8-sig`` codec does).

    Each piece ends where UTF-8 decoding may restart without changing any character: before a
    byte that is not a continuation byte (0x80 - 0xBF), or after three of them, the longest tail
    a character can have (so no replacement character is split in two either). Hence pieces of
    at least four bytes: the cut then never goes back to the piece's start."""
    chunk = max(chunk, 4)
    start = len(codecs.BOM_UTF8) if body.startswith(codecs.BOM_UTF8) else 0
    size = len(body)
    while start < size:
        end = min(start + chunk, size)
        if end < size:
            cut = end
            while cut > end - 3 and 0x80 <= body[cut] < 0xC0:
                cut -= 1
            if not 0x80 <= body[cut] < 0xC0:
                end = cut
        piece = body[start:end]
        yield piece.decode("ascii") if piece.isascii() else piece.decode("ascii", ERRORS)
        start = end


def parse(json_text: str) -> Any:
    """JSON of ``text``'s result; ``ValueError`` for what is not JSON."""
    try:
        return json.loads(json_text)
    except ValueError:
        # Rare (the reply is broken either way): parse again, with integers that int() refuses
        # read as infinity; a reply that is not JSON raises the same kind of error again.
        return json.loads(json_text, parse_int=_bounded_int)


def _bounded_int(digits: str) -> int | float:
    """An integer literal as int, or as +-infinity when it is too long for int() to take."""
    try:
        return int(digits)
    except ValueError:
        return -math.inf if digits.startswith("-") else math.inf
