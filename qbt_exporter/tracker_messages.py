"""What a tracker's failure message means, in a small fixed set of classes, and the message made safe
to log.

A tracker that rejects a torrent says why in free text, and every tracker software says it its own
way. The text itself can never be a label (unbounded values, and qBittorrent 4.0.4 and older quote
the announce URL, passkey included, in it), so it is classified:

- ``unregistered``: the tracker does not know the torrent (or no longer does): it was deleted,
  trumped or never uploaded there. The torrent seeds to nobody; the user should remove it.
- ``auth``: the tracker rejects the user or the client: passkey/authkey wrong or revoked, account
  disabled, client not allowed.
- ``unreachable``: no tracker answer at all: refused, timed out, no route, name not resolved, a
  proxy saying the tracker behind it is down.
- ``other``: any other failure, including an empty message.

``MESSAGES`` is the list of what real trackers and libtorrent send, and the table test
(``tests/test_tracker_messages.py``) checks each of them; the README lists the same phrases.
Matching ignores case, and treats ``_``, ``-`` and runs of spaces alike ("info_hash" = "info hash").
"""

from __future__ import annotations

import re
from functools import lru_cache

CLASSES: tuple[str, ...] = ("unregistered", "auth", "unreachable", "other")

# (class, phrase) in the order they are tried: unregistered first, because its messages often also
# say "not authorized" ("info hash not authorized"), which alone means auth.
MESSAGES: tuple[tuple[str, str], ...] = (
    # Gazelle/Ocelot, UNIT3D, Luminance ("Unregistered torrent"), often with a reason appended.
    ("unregistered", "unregistered torrent"),
    # XBT Tracker, NexusPHP, many TBDev descendants.
    ("unregistered", "torrent not registered"),
    ("unregistered", "not registered with this tracker"),
    ("unregistered", "torrent is not registered"),
    # Ocelot, chihaya, Torrust and others.
    ("unregistered", "info hash not found"),
    ("unregistered", "infohash not found"),
    ("unregistered", "torrent not found"),
    ("unregistered", "torrent does not exist"),
    ("unregistered", "unknown torrent"),
    ("unregistered", "unknown info hash"),
    # opentracker with a whitelist; chihaya's "info hash not authorized".
    ("unregistered", "info hash not authorized"),
    ("unregistered", "infohash not authorized"),
    ("unregistered", "requested download is not authorized"),
    # Private trackers telling why the torrent went away.
    ("unregistered", "torrent has been deleted"),
    ("unregistered", "torrent has been removed"),
    ("unregistered", "torrent has been nuked"),
    ("unregistered", "trumped"),
    # The user or the client is refused.
    ("auth", "passkey"),
    ("auth", "authkey"),
    ("auth", "torrent pass"),
    ("auth", "account"),  # "Your account is disabled", "account not enabled", "account banned"
    ("auth", "not authorized"),
    ("auth", "unauthorized"),
    ("auth", "access denied"),
    ("auth", "forbidden"),
    ("auth", "client is banned"),
    ("auth", "client is not allowed"),
    ("auth", "client not whitelisted"),
    ("auth", "login required"),
    # libtorrent / the OS: no answer from the tracker.
    ("unreachable", "timed out"),
    ("unreachable", "connection refused"),
    ("unreachable", "connection reset"),
    ("unreachable", "host not found"),
    ("unreachable", "no route to host"),
    ("unreachable", "network is unreachable"),
    ("unreachable", "host is unreachable"),
    ("unreachable", "name or service not known"),
    ("unreachable", "temporary failure in name resolution"),
    ("unreachable", "no such host is known"),
    # A proxy or CDN in front of a tracker that is down.
    ("unreachable", "bad gateway"),
    ("unreachable", "service unavailable"),
    ("unreachable", "gateway timeout"),
    ("unreachable", "gateway time out"),
)

_SEPARATORS = re.compile(r"[\s_\-]+")
# qBittorrent <= 4.0.4 (libtorrent 1.0/1.1 alert text) prefix the message with the torrent's name and
# the announce URL: 'alpha.bin (http://tracker/ann?passkey=...) (-1) Connection refused "" (2)'. The
# name could contain any phrase above, and the URL a secret: keep only what follows them.
_LEGACY_PREFIX = re.compile(r"^.*?\([a-z][a-z0-9+.-]*://[^\s]*\) \(-?\d+\) ", re.IGNORECASE | re.DOTALL)


def _normalised(message: str) -> str:
    return _SEPARATORS.sub(" ", _LEGACY_PREFIX.sub("", message).lower())


@lru_cache(maxsize=1024)
def classify(message: str) -> str:
    """The class (one of CLASSES; "other" when no phrase matches) of a failed tracker's message.

    The earliest phrase in MESSAGES that occurs anywhere in the message wins, whatever its position
    in the text. Cached: thousands of torrents on one tracker share a handful of messages.
    """
    text = _normalised(message)
    return next((cls for cls, phrase in MESSAGES if phrase in text), "other")


# What is stripped from a message before it is logged: URLs, key=value pairs whose key names a
# secret, and long runs of letters and digits (passkeys are 32 hex characters, often bare in a path).
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S*", re.IGNORECASE)
_KEY_VALUE = re.compile(r"(?i)\b(\w*(?:key|pass|token|secret|auth|uid|sid)\w*)\s*[=:]\s*\S+")
_LONG_TOKEN = re.compile(r"\b[A-Za-z0-9]{16,}\b")
LOG_LIMIT = 200


def loggable(message: str) -> str:
    """``message`` fit for a debug log line: no URL, nothing that looks like a key, at most
    LOG_LIMIT characters, printable."""
    text = _URL.sub("<url>", message)
    text = _KEY_VALUE.sub(lambda m: m[1] + "=<redacted>", text)
    text = _LONG_TOKEN.sub("<redacted>", text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text[:LOG_LIMIT]


def markdown_table() -> str:
    """The README's classification table, one row per class, generated so that it cannot drift."""
    rows = ["| class | the message contains (any case; `_`, `-` and spaces alike) |", "|---|---|"]
    for cls in CLASSES[:-1]:
        phrases = ", ".join(f"`{phrase}`" for c, phrase in MESSAGES if c == cls)
        rows.append(f"| `{cls}` | {phrases} |")
    rows.append("| `other` | anything else, an empty message included |")
    return "\n".join(rows)
