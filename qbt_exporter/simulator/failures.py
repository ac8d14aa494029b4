"""The simulator's own fault switch: make the next request on a path fail the way legacy servers do.

Why a piece of its own: a test arms a failure from its thread and the server consumes it from a
connection's thread; what a failure does to a reply (an HTML error page from a proxy in front, a
body cut in half, a closed socket, a reply that never comes) is independent of both the WebUI and
the socket code. Hostile behaviour beyond this (drip-feeding, resets mid-body) belongs to the fault
proxy in front of the simulator, not here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from qbt_exporter.simulator.server import CT_HTML, REASONS, Drop, Response

__all__ = ["KINDS", "Failure", "FailureSwitch"]

#: ``hang`` never answers, ``html`` answers an HTML error page, ``truncated`` the real reply cut in
#: half (with a matching content-length), ``close`` closes the connection without answering.
KINDS = ("hang", "html", "truncated", "close")


@dataclass(frozen=True)
class Failure:
    kind: str
    status: int

    @property
    def drop(self) -> Drop | None:
        """For ``hang`` and ``close``: what the socket layer does instead of answering."""
        return {"hang": Drop.HANG, "close": Drop.CLOSE}.get(self.kind)

    def spoil(self, response: Response) -> Response:
        """The reply a client sees instead of ``response`` (``html`` and ``truncated``)."""
        if self.kind == "html":
            page = (
                f"<html><head><title>{self.status} Error</title></head><body><h1>Error {self.status}"
                "</h1><p>Something went wrong.</p></body></html>"
            ).encode()
            return Response(self.status, REASONS.get(self.status, "Error"), {"content-type": CT_HTML}, page)
        if self.kind == "truncated":
            response.body = response.body[: max(1, len(response.body) // 2)]
        return response


class FailureSwitch:
    """Armed failures, each used once by the first request whose path starts with its prefix."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[tuple[str, Failure]] = []

    def arm(self, path_prefix: str, kind: str, status: int = 200) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown failure kind {kind!r}")
        with self._lock:
            self._armed.append((path_prefix, Failure(kind, status)))

    def take(self, path: str) -> Failure | None:
        with self._lock:
            for index, (prefix, failure) in enumerate(self._armed):
                if path.startswith(prefix):
                    del self._armed[index]
                    return failure
        return None
