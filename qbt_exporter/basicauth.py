"""HTTP Basic authentication against ``basic_auth_users`` (bcrypt hashes), cheap for Prometheus
and bounded for everyone else.

bcrypt is slow on purpose: about 70 ms at cost 10 on a quiet core, several times that on a busy
one. Paid on every scrape of every Prometheus it would be a tax; paid for every guess of a flood of
wrong passwords it would take the machine's two cores. So, as in exporter-toolkit:

- a verdict is cached, keyed by the user, the hash and the password. The key is an HMAC with a
  key made at start-up, so the cache holds no password (exporter-toolkit keeps them in clear). A
  changed hash (a user's new password) or a removed user can never hit an old entry. Successes and
  failures have separate, bounded LRU caches, so a flood of wrong passwords evicts failures only:
  a scrape whose credentials were checked once never pays bcrypt again, whatever else happens;
- an unknown user is checked against a dummy hash of the highest cost among the users, so the
  time of a 401 does not tell whether the user exists (exporter-toolkit does the same with a
  fixed cost-10 hash); a malformed header is refused at once, which tells nothing either;
- bcrypt runs one check at a time (exporter-toolkit holds a mutex too), so it can take one core
  at most; and at most ``max_waiting`` checks may be in it or wait for it, one per client address: the rest
  are answered ``BUSY`` (429) at once instead of piling up threads, and one address flooding
  cannot fill the queue for the others.

bcrypt uses at most 72 bytes of a password; longer ones are cut to 72 bytes, as Go's bcrypt and
htpasswd do, so a hash made by either verifies the same here.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping

import bcrypt

from qbt_exporter.webconfig import bcrypt_cost

MAX_PASSWORD_BYTES = 72


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"  # 401
    BUSY = "busy"  # 429: too many password checks waiting; nothing was checked


def parse_basic(header: str | None) -> tuple[str, bytes] | None:
    """(user, password) from an ``Authorization: Basic`` header, None when it is not one.

    As Go's ``Request.BasicAuth``: the scheme in any case, standard base64 with its padding, split
    at the first colon. The user name must be UTF-8 (RFC 7617); the password stays bytes.
    """
    if not header or len(header) > 8192:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(" ").encode("ascii"), validate=True)
        user, colon, password = decoded.partition(b":")
        if not colon:
            return None
        return user.decode("utf-8"), password
    except (UnicodeError, binascii.Error, ValueError):
        return None


def _dummy_cost(users: Mapping[str, bytes]) -> int:
    return max((bcrypt_cost(hashed) for hashed in users.values()), default=10)


class _LRU:
    """A bounded set of keys, least recently seen dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, key: bytes) -> bool:
        if key in self._keys:
            self._keys.move_to_end(key)
            return True
        return False

    def add(self, key: bytes) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.size:
            self._keys.popitem(last=False)

    def __len__(self) -> int:
        return len(self._keys)


class Authenticator:
    """Checks Basic credentials against a users mapping; lives as long as the server, so its
    cache survives reloads of the users (entries of changed users simply never match again)."""

    def __init__(
        self,
        *,
        max_waiting: int = 4,
        cached_successes: int = 64,
        cached_failures: int = 1024,
        checkpw: Callable[[bytes, bytes], bool] = bcrypt.checkpw,
    ) -> None:
        self._checkpw = checkpw
        self._key = os.urandom(32)
        self._lock = threading.Lock()  # guards the caches and the queue counts
        self._bcrypt = threading.Lock()  # one bcrypt at a time
        self._successes = _LRU(cached_successes)
        self._failures = _LRU(cached_failures)
        self._max_waiting = max_waiting
        self._waiting: dict[str, int] = {}
        self._dummies: dict[int, bytes] = {}
        self.bcrypt_checks = 0  # how many times bcrypt really ran (for tests and curiosity)

    def prepare(self, users: Mapping[str, bytes]) -> None:
        """Make the dummy hash for these users now (it takes a bcrypt), not on the first unknown
        user: that first answer would be slower than the others, and tell."""
        self._dummy(_dummy_cost(users))

    def check(self, users: Mapping[str, bytes], header: str | None, client: str = "") -> Verdict:
        credentials = parse_basic(header)
        if credentials is None:
            return Verdict.DENIED
        user, password = credentials
        hashed = users.get(user)
        known = hashed is not None
        if hashed is None:
            hashed = self._dummy(_dummy_cost(users))
        key = self._cache_key(user, hashed, password)
        with self._lock:
            if key in self._successes:
                return Verdict.ALLOWED if known else Verdict.DENIED
            if key in self._failures:
                return Verdict.DENIED
            if sum(self._waiting.values()) >= self._max_waiting or self._waiting.get(client, 0) >= 1:
                return Verdict.BUSY
            self._waiting[client] = self._waiting.get(client, 0) + 1
        try:
            with self._bcrypt:
                ok = self._verify(key, password, hashed) and known
        finally:
            with self._lock:
                self._waiting[client] -= 1
                if not self._waiting[client]:
                    del self._waiting[client]
        return Verdict.ALLOWED if ok else Verdict.DENIED

    def waiting(self) -> int:
        """Checks waiting for bcrypt or in it now."""
        with self._lock:
            return sum(self._waiting.values())

    def _verify(self, key: bytes, password: bytes, hashed: bytes) -> bool:
        """bcrypt, unless a check that waited ahead of this one settled the same key."""
        with self._lock:
            if key in self._successes:
                return True
            if key in self._failures:
                return False
        self.bcrypt_checks += 1
        try:
            ok = self._checkpw(password[:MAX_PASSWORD_BYTES], hashed)
        except ValueError:  # a hash bcrypt will not take after all: nobody gets in with it
            ok = False
        with self._lock:
            (self._successes if ok else self._failures).add(key)
        return ok

    def _cache_key(self, user: str, hashed: bytes, password: bytes) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (user.encode("utf-8"), hashed, password):
            mac.update(len(part).to_bytes(8, "big"))
            mac.update(part)
        return mac.digest()

    def _dummy(self, cost: int) -> bytes:
        """A hash of a random password at ``cost`` (made once per cost: that takes a bcrypt too)."""
        with self._lock:
            dummy = self._dummies.get(cost)
        if dummy is None:
            dummy = bcrypt.hashpw(os.urandom(18).hex().encode(), bcrypt.gensalt(cost))
            with self._lock:
                dummy = self._dummies.setdefault(cost, dummy)
        return dummy
