"""Basic auth against bcrypt hashes: right, wrong and unknown users, malformed headers, the cache,
and the bounds on bcrypt work. Hashes are made at cost 4 (the fastest bcrypt allows); the cost
is what the tests check, never the time a check takes."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import bcrypt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.processes import wait_until
from qbt_exporter.basicauth import Authenticator, Verdict, parse_basic
from qbt_exporter.webconfig import bcrypt_cost

WAIT = 10.0  # generous: these bounds catch a hang, not slowness


def _hash(password: bytes, cost: int = 4) -> bytes:
    return bcrypt.hashpw(password, bcrypt.gensalt(cost))


def basic(user: str | bytes, password: str | bytes) -> str:
    raw = (user.encode() if isinstance(user, str) else user) + b":"
    raw += password.encode() if isinstance(password, str) else password
    return "Basic " + base64.b64encode(raw).decode()


USERS = {"alice": _hash(b"right"), "zoë": _hash("pässwörd".encode())}


class CountingCheck:
    """bcrypt.checkpw that records the hashes it was given."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        self.hashes.append(hashed)
        return bcrypt.checkpw(password, hashed)


# --- the header ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("alice", "right"), ("alice", b"right")),
        ("basic " + base64.b64encode(b"alice:right").decode(), ("alice", b"right")),  # scheme in any case
        ("BASIC " + base64.b64encode(b"alice:a:b").decode(), ("alice", b"a:b")),  # split at the first colon
        (basic("", ""), ("", b"")),
        (basic("zoë", "pässwörd"), ("zoë", "pässwörd".encode())),
        (basic("alice", b"\xff\xfe"), ("alice", b"\xff\xfe")),  # the password stays bytes
    ],
)
def test_basic_credentials_are_read_as_go_reads_them(header: str, expected: tuple[str, bytes]) -> None:
    assert parse_basic(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic",
        "Basic ",
        "Bearer " + base64.b64encode(b"alice:right").decode(),
        "Basic " + base64.b64encode(b"no colon").decode(),
        "Basic " + base64.b64encode(b"alice:right").decode().rstrip("="),  # padding is required
        "Basic YWxpY2U6cmlnaHQ=!",
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),  # a user name that is not UTF-8
        "Basic ÿÿÿÿ",  # not base64 (latin-1 text, as the server hands headers on)
        basic("alice", "right") + ", " + basic("alice", "right"),  # two headers, joined by the server
        "Basic " + "A" * 9000,
    ],
)
def test_malformed_headers_are_no_credentials(header: str | None) -> None:
    assert parse_basic(header) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=100))
def test_any_header_text_is_credentials_or_none_never_an_exception(header: str) -> None:
    parse_basic(header)


# --- the verdicts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "verdict"),
    [
        (basic("alice", "right"), Verdict.ALLOWED),
        (basic("zoë", "pässwörd"), Verdict.ALLOWED),
        (basic("alice", "wrong"), Verdict.DENIED),
        (basic("alice", "Right"), Verdict.DENIED),
        (basic("Alice", "right"), Verdict.DENIED),  # user names are exact
        (basic("mallory", "right"), Verdict.DENIED),
        (basic("zoe", "pässwörd"), Verdict.DENIED),
        (basic("zoë", "passwort"), Verdict.DENIED),
        ("Basic !!!", Verdict.DENIED),
        (None, Verdict.DENIED),
    ],
)
def test_right_wrong_and_unknown_users(header: str | None, verdict: Verdict) -> None:
    assert Authenticator().check(USERS, header) is verdict


def test_an_unknown_user_costs_a_bcrypt_at_the_users_cost_so_timing_does_not_tell() -> None:
    check = CountingCheck()
    users = {"alice": _hash(b"right", cost=5), "bob": _hash(b"other", cost=4)}
    auth = Authenticator(checkpw=check)
    auth.prepare(users)
    assert auth.check(users, basic("mallory", "right")) is Verdict.DENIED
    assert auth.check(users, basic("alice", "wrong")) is Verdict.DENIED
    assert len(check.hashes) == 2  # both ran bcrypt, the unknown user too
    dummy, real = check.hashes
    assert dummy not in users.values()
    assert bcrypt_cost(dummy) == bcrypt_cost(real) == 5  # the highest cost among the users


def test_a_success_is_cached_so_a_scrape_pays_bcrypt_once() -> None:
    check = CountingCheck()
    auth = Authenticator(checkpw=check)
    for _ in range(5):
        assert auth.check(USERS, basic("alice", "right")) is Verdict.ALLOWED
    assert auth.check(USERS, basic("alice", "wrong")) is Verdict.DENIED
    assert auth.check(USERS, basic("alice", "wrong")) is Verdict.DENIED
    assert len(check.hashes) == 2  # one for the right password, one for the wrong one


def test_a_changed_hash_or_a_removed_user_never_hits_the_old_cache_entry() -> None:
    auth = Authenticator()
    assert auth.check(USERS, basic("alice", "right")) is Verdict.ALLOWED
    changed = {**USERS, "alice": _hash(b"new")}
    assert auth.check(changed, basic("alice", "right")) is Verdict.DENIED
    assert auth.check(changed, basic("alice", "new")) is Verdict.ALLOWED
    assert auth.check({"zoë": USERS["zoë"]}, basic("alice", "right")) is Verdict.DENIED


def test_a_flood_of_wrong_passwords_does_not_evict_a_cached_success() -> None:
    check = CountingCheck()
    auth = Authenticator(checkpw=check, cached_successes=2, cached_failures=3)
    assert auth.check(USERS, basic("alice", "right")) is Verdict.ALLOWED
    for guess in range(10):
        assert auth.check(USERS, basic("alice", f"guess{guess}")) is Verdict.DENIED
    before = len(check.hashes)
    assert auth.check(USERS, basic("alice", "right")) is Verdict.ALLOWED
    assert len(check.hashes) == before  # still cached


def test_the_cache_is_bounded() -> None:
    auth = Authenticator(cached_successes=2, cached_failures=3)
    for guess in range(10):
        auth.check(USERS, basic("alice", f"guess{guess}"))
    assert len(auth._failures) == 3


def test_the_cache_holds_no_password() -> None:
    auth = Authenticator()
    auth.check(USERS, basic("alice", "right"))
    auth.check(USERS, basic("alice", "a-wrong-one"))
    kept = b"".join(auth._successes._keys) + b"".join(auth._failures._keys)
    assert b"right" not in kept and b"a-wrong-one" not in kept


def test_passwords_longer_than_72_bytes_are_cut_as_go_and_htpasswd_do() -> None:
    long = b"x" * 72
    users = {"alice": bcrypt.hashpw(long, bcrypt.gensalt(4))}
    auth = Authenticator()
    assert auth.check(users, basic("alice", long + b"anything after 72 bytes")) is Verdict.ALLOWED
    assert auth.check(users, basic("alice", long[:-1])) is Verdict.DENIED


# --- bounded bcrypt work ------------------------------------------------------------------------


class GatedCheck:
    """A checkpw that blocks until released, to hold bcrypt 'busy' without sleeping."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.entered.release()
        self.release.wait(WAIT)
        with self._lock:
            self.running -= 1
        return False


@contextmanager
def checks_in_flight(auth: Authenticator, clients: list[str]) -> Iterator[list[Verdict]]:
    """Start one wrong-password check per client, in threads; join them when the block ends."""
    verdicts: list[Verdict] = []
    threads = [
        threading.Thread(
            target=lambda c=client, n=n: verdicts.append(auth.check(USERS, basic("alice", f"w{n}"), c))
        )
        for n, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        yield verdicts
    finally:
        for thread in threads:
            thread.join(WAIT)


def test_bcrypt_runs_one_at_a_time_and_the_queue_is_bounded() -> None:
    gate = GatedCheck()
    auth = Authenticator(checkpw=gate, max_waiting=3)
    auth.prepare(USERS)
    with checks_in_flight(auth, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) as verdicts:
        assert gate.entered.acquire(timeout=WAIT)  # one is in bcrypt...
        wait_until(lambda: auth.waiting() == 3, WAIT, what="three checks queued")  # ...two wait for it
        # the queue is full: a fourth check is answered at once, nothing checked
        assert auth.check(USERS, basic("alice", "another"), "10.0.0.4") is Verdict.BUSY
        # a success checked before is still answered from the cache meanwhile
        gate.release.set()
    assert sorted(v.value for v in verdicts) == ["denied"] * 3
    assert gate.most_at_once == 1


def test_one_address_cannot_fill_the_queue_for_the_others() -> None:
    gate = GatedCheck()
    auth = Authenticator(checkpw=gate, max_waiting=4)
    auth.prepare(USERS)
    with checks_in_flight(auth, ["10.0.0.1"]):
        assert gate.entered.acquire(timeout=WAIT)
        assert auth.check(USERS, basic("alice", "flood"), "10.0.0.1") is Verdict.BUSY
        gate.release.set()
        assert auth.check(USERS, basic("alice", "right-or-not"), "10.0.0.2") is Verdict.DENIED


def test_a_cached_success_is_answered_while_bcrypt_is_busy() -> None:
    gate = GatedCheck()
    auth = Authenticator(checkpw=lambda p, h: bcrypt.checkpw(p, h) if p == b"right" else gate(p, h))
    auth.prepare(USERS)
    assert auth.check(USERS, basic("alice", "right"), "prometheus") is Verdict.ALLOWED
    with checks_in_flight(auth, ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]):
        assert gate.entered.acquire(timeout=WAIT)
        assert auth.check(USERS, basic("alice", "right"), "prometheus") is Verdict.ALLOWED
        gate.release.set()
