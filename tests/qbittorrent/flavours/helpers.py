"""Helpers for the flavour tests: hand-made replies derived from the real recordings."""

from __future__ import annotations

import json
from typing import Any

from qbt_exporter.stats import Stats
from tests.counters import invalid_values
from tests.recording import Recording

BASE = "http://qbt.test:8080"


def edited(recording: Recording, value: Any, content_type: str | None = None) -> Recording:
    """``recording`` with ``value`` as its JSON body (and maybe another Content-Type): a hand-made
    reply of another version is the real one, changed only where that version differs."""
    headers = dict(recording.headers)
    if content_type is not None:
        headers["content-type"] = content_type
    return Recording(
        recording.status,
        recording.reason,
        headers,
        recording.set_cookies,
        json.dumps(value).encode(),
    )


def raw(recording: Recording, body: bytes, status: int | None = None) -> Recording:
    """``recording`` with another body (and status): for broken replies."""
    return Recording(
        recording.status if status is None else status,
        recording.reason,
        recording.headers,
        recording.set_cookies,
        body,
    )


def invalid(stats: Stats, endpoint: str) -> float:
    return invalid_values(stats, endpoint)
