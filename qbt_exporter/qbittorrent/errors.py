"""Why a call to qBittorrent did not give us data.

Each error carries the ``outcome`` label it is counted under in
``qbittorrent_exporter_requests_total``; the scraper only needs to know that the call failed, the
operator needs to know how.

Every message passes through ``redact`` when the error is made: messages quote replies, and a reply
may echo the password or the API key (a proxy's error page showing the request it got).
"""

from __future__ import annotations

from qbt_exporter.qbittorrent.redact import redact


class QbtError(Exception):
    """A call to qBittorrent failed; the scrape reports ``qbittorrent_up 0`` for it."""

    outcome = "error"

    def __init__(self, message: str, *, endpoint: str = "") -> None:
        super().__init__(redact(message))
        self.endpoint = endpoint


class Unreachable(QbtError):
    """No HTTP answer: connection refused or reset, DNS failure, TLS failure."""

    outcome = "connection_error"


class TimedOut(Unreachable):
    """The request (or the scrape's remaining budget) ran out before qBittorrent answered."""

    outcome = "timeout"


class HttpError(QbtError):
    """qBittorrent answered with a status the exporter cannot use."""

    outcome = "http_error"

    def __init__(self, message: str, *, endpoint: str = "", status: int = 0) -> None:
        super().__init__(message, endpoint=endpoint)
        self.status = status


class NotFound(HttpError):
    """404: an unknown path (wrong API flavour) or, on /api/v2, an unknown torrent hash."""

    outcome = "not_found"


class Unauthorized(HttpError):
    """401: qBittorrent's CSRF (Origin/Referer) or Host-header check refused the request."""

    outcome = "unauthorized"


class Forbidden(HttpError):
    """403 without the ban text, even after logging in again."""

    outcome = "forbidden"


class BadResponse(QbtError):
    """A 2xx answer whose body is not what the endpoint promises (HTML, truncated JSON, ...)."""

    outcome = "bad_response"


class TooLarge(QbtError):
    """The reply grew past ``--qbittorrent.max-reply-size`` (decoded): dropped before it could take
    the exporter's memory with it."""

    outcome = "too_large"


class LoginRejected(QbtError):
    """qBittorrent refused the credentials (200 ``Fails.`` or, from 5.2, 401)."""

    outcome = "rejected"


class Banned(QbtError):
    """qBittorrent banned this IP after too many failed logins (403 with the ban text)."""

    outcome = "banned"


class BackingOff(QbtError):
    """No call was made: a rejected login or a ban makes the exporter wait before trying again."""

    outcome = "backoff"

    def __init__(self, message: str, *, endpoint: str = "", retry_in: float = 0.0) -> None:
        super().__init__(message, endpoint=endpoint)
        self.retry_in = retry_in


# The one status → error mapping of the package: the client's checked calls, the probe and the
# version readers all raise through it, and the ``outcome`` of a reply the caller reads itself is
# taken from it too, so a status is counted under the same label whichever path met it.
_BY_STATUS: dict[int, type[HttpError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound}
_HINTS: dict[int, str] = {401: " (CSRF/Host check)"}


def outcome_for(status: int) -> str:
    """The ``outcome`` label of a reply with this status: "ok" for 2xx, else its error's label."""
    if 200 <= status < 300:
        return "ok"
    return _BY_STATUS.get(status, HttpError).outcome


def raise_for(status: int, *, endpoint: str, message: str = "") -> None:
    """Raise the ``HttpError`` that a non-2xx ``status`` means (``message`` defaults to the status)."""
    if not 200 <= status < 300:
        error = _BY_STATUS.get(status, HttpError)
        text = message or f"{endpoint}: HTTP {status}{_HINTS.get(status, '')}"
        raise error(text, endpoint=endpoint, status=status)
