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
from typing import Any

CHUNK = 1 << 20  # bytes decoded at a time: the only wide copy ever held
SMALL = 1 << 20  # below this, the plain path costs too little to matter


def _escape_as_json(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each non-ASCII character as its JSON ``\\u`` escape (surrogate pairs above
    the Basic Multilingual Plane, as JSON spells them)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    parts = []
    for char in error.object[error.start : error.end]:
        code = ord(char)
        if code > 0xFFFF:
            code -= 0x10000
            parts.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            parts.append(f"\\u{code:04x}")
    return "".join(parts), error.end


codecs.register_error("qbt_exporter.json_escape", _escape_as_json)


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
    decoder = codecs.getincrementaldecoder("utf-8-sig")("replace")
    pieces = [_ascii(decoder.decode(body[start : start + CHUNK])) for start in range(0, len(body), CHUNK)]
    pieces.append(_ascii(decoder.decode(b"", final=True)))
    joined = "".join(pieces)
    del pieces  # not alive beside the objects json builds
    return joined


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


def _ascii(text: str) -> str:
    return text.encode("ascii", "qbt_exporter.json_escape").decode("ascii")
