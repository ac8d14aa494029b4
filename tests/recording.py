"""Load the recorded qBittorrent HTTP exchanges in ``tests/recordings/`` and replay them.

The recordings are what a real qBittorrent answered (raw status line, headers, blank line, body;
``INDEX.tsv`` in each folder says what was asked). Tests load them instead of retyping them, so a
fixture can never drift from what the server really sends.

Usage::

    from tests.recording import add, load

    rec = load("4.0.4", "04-login-ok")          # .http suffix optional
    rec.status, rec.headers["content-type"], rec.set_cookies, rec.body
    with responses.RequestsMock() as rsps:
        add(rsps, "POST", "http://qbt/login", rec)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from urllib3 import HTTPHeaderDict

RECORDINGS = Path(__file__).parent / "recordings"


@dataclass(frozen=True)
class Recording:
    """One recorded reply.

    ``headers`` has lower-case names and one value each (the last one if a name repeats);
    ``set_cookies`` keeps every ``Set-Cookie`` value in order, since a reply may set several.
    """

    status: int
    reason: str
    headers: dict[str, str]
    set_cookies: tuple[str, ...]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


def path_of(version: str, name: str) -> Path:
    """The file of recording ``name`` (with or without ``.http``) of ``qbittorrent-<version>``."""
    file_name = name if name.endswith(".http") else f"{name}.http"
    return RECORDINGS / f"qbittorrent-{version}" / file_name


def parse(raw: bytes) -> Recording:
    """Parse one raw HTTP reply; the body is every byte after the first empty line, unchanged."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, _, body = raw.partition(b"\n\n")
    lines = head.decode("latin-1").splitlines()
    _version, status, *reason = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = value
        if name == "set-cookie":
            cookies.append(value)
    return Recording(int(status), reason[0] if reason else "", headers, tuple(cookies), body)


def load(version: str, name: str) -> Recording:
    """Recording ``name`` of qBittorrent ``version`` ("4.0.4" or "4.5.2")."""
    return parse(path_of(version, name).read_bytes())


def add(rsps: Any, method: str, url: str, recording: Recording, **kwargs: Any) -> None:
    """Register ``recording`` as the reply to ``method url`` on a ``responses.RequestsMock``.

    Status, body, Content-Type (only if the recording has one) and every Set-Cookie are replayed;
    extra keyword arguments (``match=...``) go to ``rsps.add``.
    """
    headers = HTTPHeaderDict()
    content_type = recording.headers.get("content-type")
    if content_type is not None:
        headers.add("Content-Type", content_type)
    for cookie in recording.set_cookies:
        headers.add("Set-Cookie", cookie)
    if content_type is None:
        kwargs["content_type"] = None  # responses would otherwise invent text/plain
    rsps.add(method, url, body=recording.body, status=recording.status, headers=headers, **kwargs)


def request_of(version: str, name: str) -> tuple[str, str]:
    """The method and path (with query) that produced recording ``name``, from ``INDEX.tsv``.

    The index's third column is the curl command that was run; its URL gives the path, and a
    ``-X`` or ``--data`` gives the method.
    """
    stem = name.removesuffix(".http")
    for line in (RECORDINGS / f"qbittorrent-{version}" / "INDEX.tsv").read_text().splitlines():
        file_name, _what, command = line.split("\t", 2)
        if file_name.removesuffix(".http") != stem:
            continue
        words = command.split()
        url = next(word for word in reversed(words) if word.startswith("http"))
        method = words[words.index("-X") + 1] if "-X" in words else "POST" if "--data" in words else "GET"
        split = urlsplit(url)
        return method, split.path + (f"?{split.query}" if split.query else "")
    raise KeyError(f"{name} is not in the {version} index")
