"""Where the WebUI password comes from, and whether it can change while the exporter runs.

Why a source and not a string: after a few rejected logins the client stops logging in (every
failure counts toward qBittorrent's ban, §4.5 of ``qbittorrent-api.md``) and waits for the operator
to fix the password. A password file can be fixed in place, so the client asks the source for the
current password on every login decision, and a new password ends the wait. A password from the
environment cannot change without a restart, and the source says so in what it tells the operator.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class PasswordSource(Protocol):
    """The current WebUI password, and what the operator must do when qBittorrent rejects it."""

    def current(self) -> str: ...

    def fix_hint(self) -> str: ...


@dataclass(frozen=True)
class FixedPassword:
    """A password that cannot change while the exporter runs (environment variable, demo, tests)."""

    value: str
    origin: str = "QBITTORRENT_PASSWORD"

    def current(self) -> str:
        return self.value

    def fix_hint(self) -> str:
        return (
            f"set the right password in {self.origin} and restart the exporter "
            "(a password from the environment cannot change while the exporter runs)"
        )

    def __repr__(self) -> str:  # never shows the password
        return f"FixedPassword(origin={self.origin!r})"


def read_password_file(path: str) -> str:
    """The password in ``path``: the file's text without its trailing line break."""
    with open(path, encoding="utf-8") as handle:
        return handle.read().rstrip("\r\n")


class PasswordFile:
    """A password file, read again each time the client asks.

    The client asks once per login and, while logins are held off after rejections, once or twice
    per scrape: reading a small file that often costs microseconds, and unlike a cached ``stat``
    it can never miss an edit made within one timestamp tick. A file that turns unreadable or empty
    (an editor truncating it before writing) keeps the last good password: logging in with an
    empty password would be a failed login for nothing.
    """

    def __init__(self, path: str, initial: str | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._value = initial if initial is not None else ""
        self._problem: str | None = None
        if initial is None:
            self.current()

    def current(self) -> str:
        with self._lock:
            try:
                text = read_password_file(self.path)
            except (OSError, UnicodeDecodeError) as err:
                reason = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
                self._warn(f"cannot read {self.path} ({reason}); keeping the password read before")
                return self._value
            if not text:
                self._warn(f"{self.path} is empty; keeping the password read before")
                return self._value
            self._problem = None
            self._value = text
            return text

    def fix_hint(self) -> str:
        return f"fix the password in {self.path}; the exporter tries again when the file changes"

    def _warn(self, problem: str) -> None:
        """Log a problem with the file once, not on every scrape."""
        if problem != self._problem:
            log.warning("password file: %s", problem)
            self._problem = problem

    def __repr__(self) -> str:
        return f"PasswordFile({self.path!r})"


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries ``user:password@``: any ``@`` before the query counts, because a
    password holding a ``/`` makes ``urlsplit`` see the rest of it as the path."""
    return "@" in url.partition("?")[0].partition("#")[0]


def as_source(password: str | PasswordSource | None) -> PasswordSource:
    """A source for what ``Client`` was given: a plain string (or nothing) cannot change."""
    if password is None or isinstance(password, str):
        return FixedPassword(password or "")
    return password
