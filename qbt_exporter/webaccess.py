"""Who may use the exporter's HTTP side, kept current: the web config file re-read when it
changes, and the WSGI gate that applies it (client certificate names, extra headers, rate limit,
Basic auth).

Re-reading: exporter-toolkit reads the file on every request and the certificate on every
handshake, so that a renewed certificate or a changed user needs no restart. So does this, but
cheaply: every handshake and every request reads the file and the TLS files it names (a few KiB,
tens of microseconds) and compares them with what was loaded; only a change parses YAML, loads
the certificate and swaps. Content is compared, not modification times, so two writes within
one clock tick are never missed. A change that does not load (bad YAML, a key that does not match
its certificate, a half-written file) keeps the last good configuration and is logged once; the
next change is tried again. Turning TLS on or off needs a restart (the listening side is decided
at start-up, as in exporter-toolkit): such a change counts as bad.

The gate protects every path except ``OPEN_PATHS`` (``/healthz``: it says only ``ok``, and the
container's HEALTHCHECK has no password to send). TLS, with or without client certificates,
applies to every connection, ``/healthz`` included: it happens before any path is known.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qbt_exporter.basicauth import Authenticator, Verdict
from qbt_exporter.httpserver import PEER_CERTIFICATE
from qbt_exporter.webconfig import RateLimit, TLSSettings, WebConfig, WebConfigError, parse
from qbt_exporter.webtls import as_flag, peer_allowed, server_context

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz"})

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class TLSTwice(WebConfigError):
    """The file has ``tls_server_config`` and the ``--web.tls-*`` flags give TLS too."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """One good configuration and the TLS context made from it."""

    config: WebConfig
    tls: ssl.SSLContext | None
    fingerprint: bytes


class WebAccess:
    """The web config file (or none) plus the ``--web.tls-*`` shorthand (or none), kept current.

    ``load()`` at start-up raises WebConfigError; afterwards ``current()`` never raises.
    """

    def __init__(self, path: str | None, flag_tls: TLSSettings | None = None) -> None:
        self.path = path
        self.flag_tls = flag_tls
        self._lock = threading.Lock()
        self._watched: tuple[str, ...] = ()
        self._loaded: Loaded | None = None
        self._refused: bytes | None = None  # fingerprint of the last change that did not load
        self.reloads_failed = 0

    def load(self) -> Loaded:
        """The first load: WebConfigError if the configuration cannot be used."""
        try:
            self._loaded = self._build()
        except _Refused as refused:
            raise refused.error from None
        return self._loaded

    @property
    def tls_on(self) -> bool:
        return self._require().tls is not None

    def current(self) -> Loaded:
        """The configuration to apply now: reloaded if a file changed, else the last good one."""
        loaded = self._require()
        seen = self._fingerprint(_read(self.path), self._watched)
        if seen in (loaded.fingerprint, self._refused):
            return loaded
        with self._lock:
            loaded = self._require()
            try:
                fresh = self._build()
                if (fresh.tls is None) != (loaded.tls is None):
                    needs = WebConfigError("tls_server_config: turning TLS on or off needs a restart")
                    raise _Refused(needs, fresh.fingerprint)
            except _Refused as refused:
                if refused.fingerprint != self._refused:  # once per change, not once per request
                    self.reloads_failed += 1
                    log.error(
                        "--web.config.file %s: %s; keeping the configuration loaded before",
                        self.path,
                        refused.error,
                    )
                self._refused = refused.fingerprint
                return loaded
            if fresh.fingerprint != loaded.fingerprint:
                self._loaded, self._refused = fresh, None
                log.info("--web.config.file %s reloaded", self.path)
            return self._loaded

    def tls_context(self) -> ssl.SSLContext:
        """For the HTTP server: the context of the connection being accepted (TLS is on)."""
        context = self.current().tls
        assert context is not None, "tls_context() asked for while TLS is off"
        return context

    def _require(self) -> Loaded:
        if self._loaded is None:
            raise RuntimeError("WebAccess.load() was not called")
        return self._loaded

    def _build(self) -> Loaded:
        """Read, parse, then load the TLS files; raises _Refused (a WebConfigError).

        The fingerprint is taken from the very bytes parsed and from the TLS files just before
        OpenSSL reads them: a file that changes while this runs changes the next fingerprint, so
        it is tried again (a certificate written before its key fails once, then loads).
        """
        raw = _read(self.path)
        fingerprint = self._fingerprint(raw, self._watched)
        try:
            config = self._parse(raw)
            # from now on watch this configuration's TLS files, even if they do not load yet: the
            # fix may be a new certificate rather than a new config file
            self._watched = config.tls.files if config.tls else ()
            fingerprint = self._fingerprint(raw, self._watched)
            context = None
            if config.tls is not None:
                context = server_context(config.tls, as_flag) if self.flag_tls else server_context(config.tls)
        except WebConfigError as err:
            raise _Refused(err, fingerprint) from None
        return Loaded(config, context, fingerprint)

    def _parse(self, raw: bytes | OSError | None) -> WebConfig:
        config = WebConfig()
        if isinstance(raw, OSError):
            raise WebConfigError(f"cannot read {self.path}: {raw.strerror or raw}")
        if raw is not None and self.path is not None:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise WebConfigError(f"{self.path} is not UTF-8 text") from None
            config = parse(text, Path(self.path).resolve().parent)
        if self.flag_tls is not None:
            if config.tls is not None:
                raise TLSTwice(
                    "tls_server_config: TLS is also given by --web.tls-cert-file and --web.tls-key-file; "
                    "use one or the other"
                )
            config = replace(config, tls=self.flag_tls)
        return config

    @staticmethod
    def _fingerprint(raw: bytes | OSError | None, files: tuple[str, ...]) -> bytes:
        digest = hashlib.sha256()
        for content in (raw, *(_read(name) for name in files)):
            if isinstance(content, OSError):
                content = f"unreadable: {content.errno}".encode()
            elif content is None:
                content = b"none"
            digest.update(len(content).to_bytes(8, "big"))
            digest.update(content)
        return digest.digest()


class _Refused(WebConfigError):
    """A configuration that did not load, with the fingerprint of the files it was read from."""

    def __init__(self, error: WebConfigError, fingerprint: bytes) -> None:
        super().__init__(str(error))
        self.error = error
        self.fingerprint = fingerprint


MAX_FILE_BYTES = 1024 * 1024  # a config, certificate or key is a few KiB; more is not read


def _read(path: str | None) -> bytes | OSError | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            return file.read(MAX_FILE_BYTES)
    except OSError as err:
        return err


class TokenBucket:
    """``rate_limit``: ``burst`` requests at once, then one per ``interval`` (Go's rate.Limiter)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.limit.burst, self._tokens + (now - self._at) / self.limit.interval)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class Gate:
    """The WSGI app in front of the exporter's: headers, rate limit and Basic auth from the web
    config, as exporter-toolkit's handler applies them (in that order)."""

    def __init__(
        self,
        app: WSGIApp,
        access: WebAccess,
        authenticator: Authenticator | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.access = access
        self.authenticator = authenticator or Authenticator()
        self._clock = clock
        self._bucket: TokenBucket | None = None
        users = access.current().config.users
        if users:
            self.authenticator.prepare(users)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        config = self.access.current().config
        extra = list(config.headers)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, *extra], exc_info)

        if config.tls is not None and not peer_allowed(
            environ.get(PEER_CERTIFICATE), config.tls.allowed_sans
        ):
            return _refuse(start, "403 Forbidden", [])

        if config.rate_limit is not None and not self._bucket_for(config.rate_limit).take():
            return _refuse(start, "429 Too Many Requests", [])
        if config.users and environ.get("PATH_INFO", "/") not in OPEN_PATHS:
            self.authenticator.prepare(config.users)
            verdict = self.authenticator.check(
                config.users, environ.get("HTTP_AUTHORIZATION"), str(environ.get("REMOTE_ADDR", ""))
            )
            if verdict is Verdict.DENIED:
                return _refuse(start, "401 Unauthorized", [("WWW-Authenticate", "Basic")])
            if verdict is Verdict.BUSY:
                return _refuse(start, "429 Too Many Requests", [("Retry-After", "1")])
        return self.app(environ, start)

    def _bucket_for(self, limit: RateLimit) -> TokenBucket:
        bucket = self._bucket
        if bucket is None or bucket.limit != limit:  # a reload changed it: start afresh
            bucket = self._bucket = TokenBucket(limit, self._clock)
        return bucket


def _refuse(start: StartResponse, status: str, headers: list[tuple[str, str]]) -> list[bytes]:
    body = f"{status.split(' ', 1)[1]}\n".encode()
    start(
        status, [*headers, ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]
