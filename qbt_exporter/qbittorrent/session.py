"""When the client may log in, and what a rejection or a ban costs: the login policy.

No HTTP here: ``client.Client`` sends the login and reads the reply, then tells the policy what
qBittorrent said (``accepted``, ``rejected``, ``banned``) and asks it before every request
(``check``). Why the policy is what it is:

* **Bans.** Five failed logins ban the exporter's IP, and qBittorrent counts them with no time
  window (≤ 4.2.1 never forget a failure, later versions only on a success or when a ban ends), so
  spacing attempts out is not enough: any back-off reaches a 5th failure in the end. After a
  rejection no login is attempted for ``login_backoff`` seconds (doubling up to
  ``login_backoff_max``); after ``max_rejections`` rejections in a row none at all until the
  password source gives a password not rejected yet (a fixed password file) or the process
  restarts, and never a 5th failure in a row from this process (``SAFE_FAILURES``). A ban reply
  stops *every* request for ``ban_duration`` (≤ 4.0.4 answers 403 on every path while banned);
  after it the client logs in again only if the ban was not earned by its own rejected password
  (someone else's failures from the same address ban it too). See ``LoginPolicy.hold``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from qbt_exporter.qbittorrent import redact
from qbt_exporter.qbittorrent.errors import BackingOff, Banned, LoginRejected
from qbt_exporter.qbittorrent.password import PasswordSource

log = logging.getLogger(__name__)

LOGIN_ENDPOINT = "login"
# qBittorrent bans an address at its 5th failed login in a row (the default of every version, §4.5):
# this process never makes more than 4 in a row, whatever the password source does.
SAFE_FAILURES = 4
SUSPENDED_REASONS = ("rejected", "banned")


@dataclass(frozen=True)
class _Hold:
    """Logins are held off: ``reason`` is exported ("rejected", "banned"; ``None`` for the plain
    back-off), ``until`` is a clock time (infinity: until the password changes or a restart)."""

    reason: str | None
    until: float
    message: str


_WAITING_FOR_BAN = "banned by qBittorrent; waiting for the ban to end"
_WAITING_AFTER_REJECTION = "login rejected earlier; waiting before the next attempt"


class LoginPolicy:
    """The login state of one client: failures in a row, rejected passwords, back-off, ban; and
    ``generation``, the number of accepted logins. Not thread-safe on its own: the client calls
    the mutating methods under its login lock."""

    def __init__(
        self,
        url: str,
        username: str,
        password: PasswordSource,
        *,
        clock: Callable[[], float],
        login_backoff: float,
        login_backoff_max: float,
        ban_duration: float,
        max_rejections: int,
    ) -> None:
        if not 1 <= max_rejections <= SAFE_FAILURES:
            raise ValueError(f"max_rejections must be between 1 and {SAFE_FAILURES}, got {max_rejections}")
        self._url = url
        self._username = username
        self._password = password
        self._clock = clock
        self._backoff = login_backoff
        self._backoff_max = login_backoff_max
        self._ban_duration = ban_duration
        self._max_rejections = max_rejections
        self.generation = 0  # accepted logins so far: see Client.session_generation
        self._rejections = 0  # failed logins in a row, whatever the password
        self._rejected_digests: set[str] = set()  # digests of the passwords rejected since the last success
        self._login_not_before = -math.inf
        self._banned_until = -math.inf
        self._ban_reply = False  # the last verdict on a login (or, ≤ 4.0.4, on any request) was a ban

    def backoff_remaining(self, logins: bool = True) -> float:
        """Seconds until a login may be attempted again (a ban counts too); 0 when allowed now,
        infinity while suspended. ``logins=False`` (an API key) counts only the ban."""
        hold = self.hold() if logins else None
        until = max(hold.until if hold else -math.inf, self._banned_until)
        return max(0.0, until - self._clock())

    def suspended(self, logins: bool = True) -> dict[str, bool]:
        """For each reason in ``SUSPENDED_REASONS``, whether it holds logins off right now."""
        hold = self.hold() if logins else None
        return {reason: hold is not None and hold.reason == reason for reason in SUSPENDED_REASONS}

    def attempting(self) -> None:
        """A login is about to be sent: say so when it follows rejections with another password."""
        if self._rejections and not self.password_rejected():
            log.info(
                "logging in to %s with a changed password (%d failed logins in a row so far)",
                self._url,
                self._rejections,
            )

    def accepted(self) -> None:
        """qBittorrent accepted the login: forget every failure, start a new generation."""
        if self._rejections or self._ban_reply:
            log.info("qBittorrent at %s accepted the login again", self._url)
        self._rejections = 0
        self._rejected_digests.clear()
        self._ban_reply = False
        self._login_not_before = -math.inf
        self.generation += 1

    def rejected(self, password: str) -> LoginRejected:
        """Count a rejection of ``password``: back off, or suspend logins after ``max_rejections``."""
        self._rejections += 1
        self._rejected_digests.add(_digest(password))
        self._ban_reply = False  # qBittorrent judged the credentials, so no ban is in force
        count = self._rejections
        if count >= SAFE_FAILURES:
            # Logged once: no login follows in this process, so no further rejection either.
            log.error(
                "qBittorrent at %s rejected the login of user %r %d times in a row; one more failed login "
                "would get this address banned, so this exporter will not log in again: fix the password, "
                "then restart the exporter",
                self._url,
                self._username,
                count,
            )
        elif count >= self._max_rejections:
            log.error(
                "qBittorrent at %s rejected the login of user %r %d times in a row; no login is attempted "
                "until the password changes: %s",
                self._url,
                self._username,
                count,
                self._password.fix_hint(),
            )
        else:
            wait = min(self._backoff * 2 ** (count - 1), self._backoff_max)
            self._login_not_before = self._clock() + wait
            log.warning(
                "qBittorrent at %s rejected the login of user %r (%d in a row); next login attempt in %.0f s",
                self._url,
                self._username,
                count,
                wait,
            )
        return LoginRejected(
            f"qBittorrent rejected the credentials of user {self._username!r}", endpoint=LOGIN_ENDPOINT
        )

    def banned(self, endpoint: str) -> Banned:
        """Stop every request for ``ban_duration``: ≤ 4.0.4 answers 403 on every path while banned.

        Anyone's failed logins from this address count toward a ban (a browser, another tool, an
        earlier run of this exporter), so after the ban the client logs in again, once — unless
        qBittorrent had rejected the password it would send: then it waits for a new password.
        """
        self._banned_until = self._clock() + self._ban_duration
        already = self._ban_reply
        self._ban_reply = True
        if already:
            # Still banned at the hourly retry (4.1.0 - 4.2.1 ban for ~41 days): said already.
            log.debug("qBittorrent at %s still bans this address", self._url)
        elif self.password_rejected():
            log.error(
                "qBittorrent at %s has banned this address after too many failed logins, and it rejected "
                "this password before; no login is attempted until the password changes: %s",
                self._url,
                self._password.fix_hint(),
            )
        else:
            log.warning(
                "qBittorrent at %s has banned this address after too many failed logins (from anyone at "
                "this address); no request for %.0f s, then one login attempt",
                self._url,
                self._ban_duration,
            )
        return Banned("qBittorrent has banned this IP after too many failed logins", endpoint=endpoint)

    def hold(self) -> _Hold | None:
        """Why no login may be attempted now, or ``None``: the one place that decides.

        In order: a ban (until it ends; for good when our rejected password earned it), the last
        safe failure reached, ``max_rejections`` reached with a password already rejected, and the
        back-off between the first rejections. A password not rejected yet (the file was fixed)
        ends the last two, so it gets exactly one attempt each time it changes.
        """
        now = self._clock()
        rejected = self.password_rejected()
        count = self._rejections
        if self._ban_reply and rejected:
            hint = self._password.fix_hint()
            return _Hold("banned", math.inf, f"banned by qBittorrent after a rejected login: {hint}")
        if self._ban_reply and now < self._banned_until:
            return _Hold("banned", self._banned_until, _WAITING_FOR_BAN)
        if count >= SAFE_FAILURES:
            return _Hold(
                "rejected",
                math.inf,
                f"{count} logins in a row rejected; one more would get this address banned: "
                "fix the password, then restart the exporter",
            )
        if rejected and count >= self._max_rejections:
            return _Hold(
                "rejected",
                math.inf,
                f"login suspended after {count} rejected logins in a row: {self._password.fix_hint()}",
            )
        if rejected and now < self._login_not_before:
            return _Hold(None, self._login_not_before, _WAITING_AFTER_REJECTION)
        return None

    def check(self, endpoint: str) -> None:
        """Raise ``BackingOff`` instead of making a request that a ban or the login policy forbids.

        The messages never contain a countdown (that is in ``backoff_remaining``): the
        scraper logs a failure once per distinct message.
        """
        hold: _Hold | None = None
        if endpoint == LOGIN_ENDPOINT:
            hold = self.hold()
        elif self._clock() < self._banned_until:
            hold = _Hold("banned", self._banned_until, _WAITING_FOR_BAN)
        if hold is not None:
            wait = max(0.0, hold.until - self._clock())
            raise BackingOff(hold.message, endpoint=endpoint, retry_in=wait)

    def current_password(self) -> str:
        """The password to send now, registered for redaction before it can be echoed anywhere."""
        password = self._password.current()
        redact.register(password)
        return password

    def password_rejected(self) -> bool:
        """Whether qBittorrent rejected the current password since the last success; reads the
        password source (a small file read) only while there are rejections."""
        return bool(self._rejected_digests) and _digest(self.current_password()) in self._rejected_digests


def _digest(password: str) -> str:
    """What is kept of a rejected password: enough to recognise it, nothing to leak."""
    return hashlib.sha256(password.encode("utf-8", "surrogatepass")).hexdigest()
