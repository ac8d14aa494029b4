"""JSON decoding of large replies without a four-bytes-per-character copy.

``json.loads(body)`` first decodes the whole body to one ``str``, and CPython stores a ``str`` with
the width of its widest character: one torrent named in Japanese or with an emoji turns the 10 MB
list of 10,000 torrents into a 41 MB string, beside the objects being built. Non-ASCII characters
can only stand inside JSON strings, where ``\\uXXXX`` means the same thing, so a large body is
rewritten piece by piece into pure-ASCII JSON first: one byte per character, the same values.
"""

from __future__ import annotations

import codecs
import json
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
    """``json.loads(body)`` for a UTF-8 body, with the same result and errors, in less memory."""
    if len(body) < SMALL or body.isascii():
        return json.loads(body)
    decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
    pieces = [_ascii(decoder.decode(body[start : start + CHUNK])) for start in range(0, len(body), CHUNK)]
    pieces.append(_ascii(decoder.decode(b"", final=True)))
    text = "".join(pieces)
    del pieces  # not alive beside the objects json builds
    return json.loads(text)


def _ascii(text: str) -> str:
    return text.encode("ascii", "qbt_exporter.json_escape").decode("ascii")
