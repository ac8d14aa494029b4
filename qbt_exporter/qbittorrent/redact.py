"""One place that removes secrets from text the exporter shows: error messages and log lines.

Why: error messages quote what qBittorrent (or a proxy in front of it) answered, and a proxy's
error page may echo the request — the login form with the password, URL-encoded, or the
``Authorization`` header with the API key. Every ``QbtError`` passes its message through
``redact`` when it is created, so no code path that quotes a reply can forget to.

The secrets are registered by the code that reads them (the client, for every password value its
source ever gave and for the API key). They are process-wide on purpose: a secret must stay hidden
from every message, whichever object produced it.
"""

from __future__ import annotations

import html
import json
import re
import threading
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"

# scheme://user:password@host -> scheme://<redacted>@host, whoever's URL it is.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@]+@")
_PERCENT = re.compile(r"%([0-9A-F])([0-9A-F])")

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def _forms(secret: str) -> set[str]:
    """The spellings a secret may take in an echoed request: raw, form- or URL-encoded, escaped."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        html.escape(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    return {form for form in forms if form}


def _regex(form: str) -> str:
    """``form`` as a regex in which percent-escapes match in either case (%2F and %2f)."""
    escaped = re.escape(form)
    return _PERCENT.sub(lambda m: f"%[{m[1]}{m[1].lower()}][{m[2]}{m[2].lower()}]", escaped)


def register(secret: str | None) -> None:
    """Hide ``secret`` (and its encoded forms) from every message from now on."""
    global _pattern
    if not secret or secret in _secrets:
        return
    with _lock:
        _secrets.add(secret)
        forms = set().union(*(_forms(s) for s in _secrets))
        # Longest first, so that an encoded form is replaced whole, not a raw prefix of it.
        ordered = sorted(forms, key=lambda f: (-len(f), f))
        _pattern = re.compile("|".join(_regex(f) for f in ordered))


def redact(text: str) -> str:
    """``text`` with URL credentials and every registered secret replaced by ``<redacted>``."""
    text = _URL_USERINFO.sub(lambda m: m[1] + REDACTED + "@", text)
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return text


def quote_reply(text: str, limit: int) -> str:
    """``repr`` of at most ``limit`` characters of a reply, redacted *before* it is cut, so that a
    cut can never leave part of a secret in view. Every quote of a reply in a message uses this."""
    return repr(redact(text)[:limit])
