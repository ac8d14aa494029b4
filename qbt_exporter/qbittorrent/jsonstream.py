"""Walking a large JSON reply one element at a time, with the json module's own C scanner.

``json.loads`` of the 10,000-torrent list builds 10,000 dicts (about 50 MB) that all live until
the last one is turned into a model object, beside the reply's bytes and its text: that is the
scrape's memory peak. Here the reply is read as a cursor over a window of ASCII text (about one
``jsonbody.CHUNK`` of it, made by ``jsonbody.ascii_pieces``), and each element is decoded by
``json``'s C ``scan_once`` at the cursor and handed over at once, so only one torrent's dict
exists at a time and the reply's whole text never does.

The cursor checks the JSON grammar between the elements itself (brackets, commas, colons, white
space); the elements are the C scanner's. What it does not take on, it refuses with
``NotStreamable`` and the caller decodes the reply whole instead (``jsonbody``), which gives the
same values and the same error as before for every reply: a syntax error anywhere, an element
larger than a window, an integer longer than Python's int() takes, and a key repeated in an
object (where ``json.loads`` keeps the last copy at the place of the first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from qbt_exporter.qbittorrent.jsonbody import CHUNK, ascii_pieces

_scan_once = json.JSONDecoder().scan_once  # the C scanner, strict as json.loads is
_WHITESPACE_CHARS = " \t\n\r"  # JSON's white space, as json.decoder skips it
_WHITESPACE = re.compile(f"[{_WHITESPACE_CHARS}]*")


class NotStreamable(Exception):
    """The reply is not JSON, or not JSON this cursor reads: decode it whole instead."""


class JsonCursor:
    """A position in a JSON body, and the text around it decoded so far.

    ``value()`` and the iterators move the cursor past what they return; a value is never
    returned from a window that may have cut it short (a number at the end of the window is read
    again once the next piece is there).
    """

    __slots__ = ("_largest", "_pieces", "pos", "text")

    def __init__(self, body: bytes, chunk: int = CHUNK, largest: int = CHUNK) -> None:
        """``chunk``: bytes of the body decoded into the window at a time; ``largest``: the longest
        value (in characters of ASCII text) read here rather than left to ``jsonbody``."""
        self._largest = largest
        self._pieces: Iterator[str] | None = ascii_pieces(body, chunk)
        self.text = ""
        self.pos = 0

    def _more(self) -> bool:
        """Append the next piece of the body to the window, dropping what is behind the cursor;
        False when the window already reaches the end of the body."""
        piece = next(self._pieces, None) if self._pieces is not None else None
        if piece is None:
            self._pieces = None
            return False
        self.text = self.text[self.pos :] + piece
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next character that is not white space ("" at the end of the body)."""
        text, pos = self.text, self.pos
        if pos < len(text) and text[pos] not in _WHITESPACE_CHARS:
            return text[pos]  # the common case: Qt writes JSON without white space
        while True:
            pos = _WHITESPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]
            if pos < len(self.text):
                self.pos = pos
                return self.text[pos]
            self.pos = pos
            if not self._more():
                return ""

    def take(self, char: str) -> bool:
        """Step over ``char`` if it is the next character that is not white space."""
        if self.peek() == char:
            self.pos += 1
            return True
        return False

    def value(self) -> Any:
        """The JSON value at the cursor, decoded by the C scanner."""
        self.peek()
        while True:
            text, pos = self.text, self.pos
            try:
                value, end = _scan_once(text, pos)
            except (StopIteration, ValueError, RecursionError):
                # Cut short by the window, or no JSON at all: more pieces decide, as long as the
                # window is shorter than ``largest`` (a value that long is left to jsonbody).
                if len(text) - pos < self._largest and self._more():
                    continue
                raise NotStreamable from None
            if end == len(text) and self._more():
                continue  # a number may go on in the next piece
            self.pos = end
            return value

    def elements(self) -> Iterator[Any]:
        """Each value of the array whose "[" was just taken, up to and including its "]"."""
        if self.take("]"):
            return
        while True:
            yield self.value()
            if self.take(","):
                continue
            if self.take("]"):
                return
            raise NotStreamable

    def object_keys(self) -> Iterator[str]:
        """Each key of the object whose "{" was just taken, up to and including its "}"; the caller
        reads (or skips with ``value()``) each key's value before asking for the next key."""
        if self.take("}"):
            return
        seen: set[str] = set()
        while True:
            if self.peek() != '"':
                raise NotStreamable
            key = self.value()
            if key in seen or not self.take(":"):
                raise NotStreamable  # a repeated key: json.loads's last-copy-wins is left to it
            seen.add(key)
            yield key
            if self.take(","):
                continue
            if self.take("}"):
                return
            raise NotStreamable

    def finish(self) -> None:
        """Require that nothing but white space follows the top-level value."""
        if self.peek() != "":
            raise NotStreamable
