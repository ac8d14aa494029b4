"""Reading qBittorrent's wire values defensively, without knowing any field name.

qBittorrent's JSON is loosely typed: Qt 5 writes every number as a double, Qt 4 builds used another
serializer, some statistics arrive as strings formatted with the server's *system locale* ("1,25",
"1.234,50"), and sentinels such as -1 or 4294967295 stand for "unknown". A bad value must cost only
its own series, so nothing here raises: every accessor returns a clean value or ``None``, and counts
the values that were present but unreadable in ``Reader.invalid`` for the flavour to report.

The common case (a JSON int or float) is decided by one ``type() is`` check, because a scrape of
10,000 torrents reads a quarter of a million values.

Two kinds of value parse as JSON but are no quantity qBittorrent can mean, and are counted as
invalid: a number that is not finite (``1e400`` reads as infinity; Python's json also takes the
``NaN`` and ``Infinity`` literals, which Qt never writes: it writes ``null``) and a number wider
than 64 bits (a 400-digit integer). Every quantity qBittorrent keeps is a 64-bit integer or a
double of one, so nothing real is lost, and downstream code never meets a value that ``float()``
cannot hold or that would render as ``NaN`` for a size. Text is made valid Unicode where it is
read: a lone surrogate (``"\\ud800"``, which json decodes as is) becomes U+FFFD, so that every
label value can be written as UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Sentinels shared by all API versions (qbittorrent-api.md section 9).
MAX_ETA = 8640000  # eta: "infinite / unknown" (100 days)
NEVER = 4294967295  # Qt toTime_t() of an invalid date: "not set"

MAX_MAGNITUDE = 2**64  # no qBittorrent quantity is wider than 64 bits (qint64, quint64, a double of one)
_MAX_FLOAT = float(MAX_MAGNITUDE)  # the same bound, compared float to float on the hot path

_GROUPING = str.maketrans("", "", " '\u00a0\u202f")  # group separators other than . and ,


def parse_number(text: str) -> float | None:
    """A number from a locale-formatted string, or ``None`` when it is not one.

    qBittorrent prints these strings with two decimals (``QLocale::system().toString(x, 'f', 2)``), so
    the last separator followed by other than three digits is the decimal separator, whichever
    character it is; the other one (and spaces, apostrophes) only group digits. A single separator
    followed by exactly three digits is a group separator ("1,234"), except a lone "." which is what
    any machine-written decimal looks like.
    """
    s = text.strip().translate(_GROUPING)
    if not s:
        return None
    comma, dot = s.rfind(","), s.rfind(".")
    if comma >= 0 and dot >= 0:
        decimal, group = (",", ".") if comma > dot else (".", ",")
        s = s.replace(group, "").replace(decimal, ".")
    elif comma >= 0:
        grouping = s.count(",") > 1 or len(s) - comma - 1 == 3
        s = s.replace(",", "" if grouping else ".")
    elif s.count(".") > 1:
        s = s.replace(".", "")
    if not _plain_decimal(s):
        return None
    value = float(s)
    return value if abs(value) < MAX_MAGNITUDE else None  # also rejects inf (a 400-digit string)


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so that it encodes as UTF-8.

    json decodes a ``\\ud800`` escape without its pair into a lone surrogate, which no UTF-8
    encoder accepts: left in a label, it would fail the rendering of the whole exposition. (Pairs
    are joined by json itself, and raw bytes that are not UTF-8 never get this far: the body is
    decoded with replacement, see ``jsonbody``.) ASCII, nearly every name, is checked in one pass.
    """
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def _plain_decimal(s: str) -> bool:
    """True for [+-]digits[.digits]: rejects what float() would also take (``nan``, ``1e5``, ``_``)."""
    if not s.isascii():  # str.isdigit() accepts superscripts that float() refuses
        return False
    body = s[1:] if s[:1] in "+-" else s
    whole, _, frac = body.partition(".")
    return (whole.isdigit() or (not whole and frac != "")) and (not frac or frac.isdigit())


class Reader:
    """Typed access to one JSON object; ``invalid`` counts the present-but-unreadable values.

    ``None`` is returned for a missing key (a field this version does not send), for JSON ``null``
    (Qt's rendering of a non-finite double), for the sentinels each accessor documents, and for
    unreadable values, which alone are counted.
    """

    __slots__ = ("invalid", "obj")

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.obj = obj
        self.invalid = 0

    def _number(self, key: str) -> float | int | None:
        value = self.obj.get(key)
        kind = type(value)
        if kind is int:
            if -MAX_MAGNITUDE < value < MAX_MAGNITUDE:
                return value
        elif kind is float:
            if -_MAX_FLOAT < value < _MAX_FLOAT:  # False for NaN and +-inf too
                return value
        elif value is None:
            return None
        elif kind is str:
            if value == "-":  # qBittorrent's "no data" for its string statistics
                return None
            number = parse_number(value)
            if number is not None:
                return int(number) if number.is_integer() else number
        self.invalid += 1  # bool, list, object, garbage text, non-finite or wider than 64 bits
        return None

    def number(self, key: str) -> float | int | None:
        """Any finite number, negative ones included."""
        return self._number(key)

    def amount(self, key: str) -> float | int | None:
        """A quantity that cannot be negative; negative values are qBittorrent's -1 "unknown"."""
        value = self.obj.get(key)
        kind = type(value)
        if (kind is int and 0 <= value < MAX_MAGNITUDE) or (kind is float and 0.0 <= value < _MAX_FLOAT):
            return value  # the common case, decided without a second call (NaN fails the test)
        value = self._number(key)
        return None if value is None or value < 0 else value

    def eta(self, key: str) -> float | int | None:
        """Seconds to go; ``MAX_ETA`` and negatives mean infinite or unknown."""
        value = self.obj.get(key)
        if type(value) is int and 0 <= value < MAX_ETA:
            return value
        value = self._number(key)
        return None if value is None or value < 0 or value >= MAX_ETA else value

    def count(self, key: str) -> int | None:
        """A whole non-negative number; -1 means "no data". A fraction is not a count: invalid."""
        value = self.obj.get(key)
        if type(value) is int and 0 <= value < MAX_MAGNITUDE:
            return value
        value = self._number(key)
        if value is None or type(value) is int:
            return None if value is None or value < 0 else value
        if value.is_integer():
            return None if value < 0 else int(value)
        self.invalid += 1
        return None

    def timestamp(self, key: str) -> float | int | None:
        """Unix seconds; <= 0 (-1, 0, Qt's invalid-date offsets) and >= 4294967295 mean "never"."""
        value = self.obj.get(key)
        if type(value) is int and 0 < value < NEVER:
            return value
        value = self._number(key)
        return None if value is None or value <= 0 or value >= NEVER else value

    def text(self, key: str, *, required: bool = False) -> str | None:
        """A string as sent (never stripped: names are shown exactly, only lone surrogates become
        U+FFFD); a missing required one counts."""
        value = self.obj.get(key)
        if type(value) is str:
            return valid_text(value)
        if value is not None or required:
            self.invalid += 1
        return None

    def flag(self, key: str) -> bool | None:
        """A JSON boolean; numbers and strings are not accepted as booleans."""
        value = self.obj.get(key)
        if value is None or type(value) is bool:
            return value
        self.invalid += 1
        return None
