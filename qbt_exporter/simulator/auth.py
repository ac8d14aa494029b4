"""Who may ask the simulated 4.0.4: its sessions, its failed-login count and its ban, on one clock.

Why apart: this is the part of the server an exporter's login policy is judged against (five
failures from one address ban it for ``ban_duration`` on every path, a success never resets the
count, idle sessions expire), and tests run days of that policy in a moment by handing in a fake
clock. The torrents keep their own scaled clock; nothing here knows HTTP.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qbt_exporter.simulator.config import SimulatorConfig

__all__ = ["MAX_FAILED_LOGINS", "Auth", "Session"]

MAX_FAILED_LOGINS = 5


@dataclass
class Session:
    """One logged-in client; ``routes`` keeps what a route remembers per session (maindata's rid)."""

    sid: str
    last_seen: float
    routes: dict[str, Any] = field(default_factory=dict)


class Auth:
    """Sessions by SID, failed logins and bans by client address; counts what clients did
    (``logins_ok``, ``logins_failed``, ``bans``) so tests need not parse logs."""

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self._sid_rng = random.Random(f"sid-{config.seed}")
        self._sessions: dict[str, Session] = {}
        self._failed: dict[str, int] = {}
        self._banned_until: dict[str, float] = {}
        self.logins_ok = 0
        self.logins_failed = 0
        self.bans = 0

    def banned(self, client_ip: str) -> bool:
        """Whether this address is banned now (an expired ban also forgets its failures)."""
        banned_until = self._banned_until.get(client_ip)
        if banned_until is not None and self._clock() >= banned_until:
            del self._banned_until[client_ip]
            self._failed.pop(client_ip, None)
            banned_until = None
        return banned_until is not None

    def session(self, cookie_header: str) -> Session | None:
        """The live session named by the request's SID cookie, touched; None if absent or idle."""
        sid = None
        for part in cookie_header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == "SID":
                sid = value
        if sid is None or sid not in self._sessions:
            return None
        session = self._sessions[sid]
        now = self._clock()
        if now - session.last_seen > self._config.session_timeout:
            del self._sessions[sid]
            return None
        session.last_seen = now
        return session

    def login(self, client_ip: str, username: str, password: str) -> str | None:
        """The SID of a new session, or None after counting the failure (and maybe banning)."""
        if username == self._config.username and password == self._config.password and self._config.username:
            sid = base64.b64encode(self._sid_rng.randbytes(24)).decode()
            self._sessions[sid] = Session(sid, self._clock())
            self.logins_ok += 1
            return sid
        self.logins_failed += 1
        count = self._failed.get(client_ip, 0) + 1
        self._failed[client_ip] = count
        if count >= MAX_FAILED_LOGINS and client_ip not in self._banned_until:
            self._banned_until[client_ip] = self._clock() + self._config.ban_duration
            self.bans += 1
        return None

    def logout(self, session: Session) -> None:
        del self._sessions[session.sid]

    def drop_sessions(self) -> None:
        """Forget every session, as a restarted qBittorrent does."""
        self._sessions.clear()

    def clear_bans(self) -> None:
        """Forget failed-login counts and bans (a restart does this too)."""
        self._failed.clear()
        self._banned_until.clear()
