"""The HTTP side: the request gate, routing, the scrape deadline, and starting the server.

A WSGI app served by ``httpserver.HTTPServer`` (which holds the limits on connections, timeouts
and header size). ``/metrics`` must always answer, quickly and with 200: a failing qBittorrent is
reported as ``qbittorrent_up 0``, never as an HTTP error. An exception inside one collector costs
only that collector's series (``collectors/base.py``); one anywhere else in building or rendering
the exposition is logged and answered with ``qbittorrent_up 0`` and the exporter's own metrics, so
Prometheus keeps the exporter's own series and alerts on ``qbittorrent_up``, not a scrape error.
"""

from __future__ import annotations

import html
import logging
import ssl
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder

try:  # ISA-L's deflate, where the platform has a wheel of it (pyproject's dependencies say which)
    from isal import isal_zlib
except ImportError:  # pragma: no cover - depends on the platform
    isal_zlib = None

from qbt_exporter import __version__
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import AsRegistry, Family, iter_chunks, render_text
from qbt_exporter.httpserver import HTTPServer, Limits
from qbt_exporter.metrics import spec
from qbt_exporter.probe import Prober, ProbeRefused
from qbt_exporter.webconfig import TLSSettings
from qbt_exporter.webtls import as_flag, server_context

log = logging.getLogger(__name__)

Server = HTTPServer
StartResponse = Callable[[str, list[tuple[str, str]]], Any]

TIMEOUT_HEADER = "HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS"
DEFAULT_SCRAPE_TIMEOUT = 10.0  # Prometheus's default scrape_timeout, for scrapers that send no header
# The longest scrape timeout believed. A larger header (1e10, inf: a typo or a hostile client) would
# let one scrape hold the shared scrape, and with it every other scraper, for that long, and
# overflows the waits that take it.
MAX_SCRAPE_TIMEOUT = 300.0
MIN_BUDGET = 0.1
METHODS = ("GET", "HEAD")
RELOAD_PATH = "/-/reload"
PROBE_PATH = "/probe"
TEXT = "text/plain; charset=utf-8"

# The answer when even the fallback exposition cannot be built: valid, and says qBittorrent is not read.
LAST_RESORT = render_text([Family(spec("qbittorrent_up"), [(0.0,)])])


def scrape_budget(environ: dict[str, Any], offset: float) -> float:
    """Seconds the qBittorrent calls of this scrape may take: Prometheus's timeout minus the offset.

    Always finite, between MIN_BUDGET and MAX_SCRAPE_TIMEOUT: the header is untrusted input.
    """
    raw = environ.get(TIMEOUT_HEADER)
    try:
        timeout = float(raw) if raw else DEFAULT_SCRAPE_TIMEOUT
    except ValueError:
        timeout = DEFAULT_SCRAPE_TIMEOUT
    if not timeout > 0:  # also rejects NaN
        timeout = DEFAULT_SCRAPE_TIMEOUT
    timeout = min(timeout, MAX_SCRAPE_TIMEOUT)  # also turns inf into a number
    return max(MIN_BUDGET, timeout - offset)


class Compressor(Protocol):
    """What ``zlib.compressobj`` and ``isal_zlib.compressobj`` both return."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


class MetricsSource(Protocol):
    """What a metrics page is read from: ``Collectors`` (one qBittorrent) or ``MetricsPage``."""

    def collect_within(self, deadline: Deadline) -> list[Family]: ...

    def fallback(self) -> list[Family]: ...


class ExporterApp:
    """The WSGI application: ``/``, ``/healthz``, the telemetry path and, with a config file,
    ``/probe`` and ``POST /-/reload``."""

    def __init__(
        self,
        collectors: MetricsSource,
        *,
        telemetry_path: str = "/metrics",
        timeout_offset: float = 0.5,
        prober: Prober | None = None,
        reload: Callable[[], str | None] | None = None,
    ):
        self.collectors = collectors
        self.telemetry_path = telemetry_path
        self.timeout_offset = timeout_offset
        self.prober = prober
        self.reload = reload

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        refusal = self._admit(environ, start_response)
        if refusal is not None:
            return refusal
        path = environ.get("PATH_INFO", "/")
        if path == self.telemetry_path:
            return self._metrics(environ, start_response, self.collectors)
        if path == PROBE_PATH and self.prober is not None:
            return self._probe(environ, start_response, self.prober)
        if path == RELOAD_PATH and self.reload is not None:
            error = self.reload()
            if error is not None:
                return _reply(start_response, "500 Internal Server Error", TEXT, f"{error}\n".encode())
            return _reply(start_response, "200 OK", TEXT, b"reloaded\n")
        if path == "/healthz":
            return _reply(start_response, "200 OK", TEXT, b"ok\n")
        if path == "/":
            return _reply(start_response, "200 OK", "text/html; charset=utf-8", self._landing())
        return _reply(start_response, "404 Not Found", TEXT, b"not found\n")

    def _admit(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes] | None:
        """The one check every request passes before routing: an answer to refuse it, or None.

        Only GET and HEAD exist here, but for ``POST /-/reload``; anything else must not run a
        scrape (nor a GET, a reload). (Basic auth is checked before this app is called, by
        ``webaccess.Gate``.)
        """
        path = environ.get("PATH_INFO", "/")
        methods = ("POST",) if path == RELOAD_PATH and self.reload is not None else METHODS
        if environ.get("REQUEST_METHOD", "GET") not in methods:
            body = b"method not allowed\n"
            start_response(
                "405 Method Not Allowed",
                [
                    ("Allow", ", ".join(methods)),
                    ("Content-Type", TEXT),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        return None

    def _probe(self, environ: dict[str, Any], start_response: StartResponse, prober: Prober) -> list[bytes]:
        """``/probe``: refused with an HTTP error before any qBittorrent is contacted, or answered
        like ``/metrics`` from the target's own collectors."""
        try:
            module, target = prober.check(environ.get("QUERY_STRING", ""))
            with prober.lease(module, target) as collectors:
                return self._metrics(environ, start_response, collectors)
        except ProbeRefused as refused:
            return _reply(start_response, refused.status, TEXT, f"{refused}\n".encode())

    def _metrics(
        self, environ: dict[str, Any], start_response: StartResponse, source: MetricsSource
    ) -> list[bytes]:
        accept = environ.get("HTTP_ACCEPT", "")
        gzipped = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
        content_type = CONTENT_TYPE_PLAIN_0_0_4 if _text_is_acceptable(accept) else choose_encoder(accept)[1]
        headers = [("Content-Type", content_type)]
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        if environ.get("REQUEST_METHOD") == "HEAD":  # headers only: no scrape, no qBittorrent call
            start_response("200 OK", headers)
            return []
        chunks = Answer(self._exposition(environ, accept, source, gzipped), lambda: _answered(source))
        headers.append(("Content-Length", str(sum(len(chunk) for chunk in chunks))))
        start_response("200 OK", headers)
        return chunks

    def _exposition(
        self, environ: dict[str, Any], accept: str, source: MetricsSource, gzipped: bool
    ) -> list[bytes]:
        """The whole rendered (and gzipped) exposition, before anything is sent: a failure while
        reading or rendering (a bug, a value no check foresaw) becomes ``qbittorrent_up 0`` with
        the exporter's own metrics, never half a body or an HTTP error."""
        deadline = Deadline(scrape_budget(environ, self.timeout_offset))
        try:
            return _encode(_render(source.collect_within(deadline), accept), gzipped)
        except Exception:  # the HTTP server must never see an exception from a scrape
            log.exception("scrape failed unexpectedly; answering with qbittorrent_up 0")
        try:
            return _encode(_render(source.fallback(), accept), gzipped)
        except Exception:
            log.exception("cannot render even the exporter's own metrics; answering qbittorrent_up 0 alone")
            last = LAST_RESORT if _text_is_acceptable(accept) else LAST_RESORT + b"# EOF\n"
            return _encode([last], gzipped)

    def _landing(self) -> bytes:
        path = html.escape(self.telemetry_path)
        page = (
            "<!DOCTYPE html><html><head><title>qBittorrent exporter</title></head><body>"
            f"<h1>qBittorrent exporter</h1><p>Version {html.escape(__version__)}</p>"
            f'<ul><li><a href="{path}">Metrics</a></li><li><a href="/healthz">Health</a></li></ul>'
            "</body></html>\n"
        )
        return page.encode()


class Answer(list[bytes]):
    """An answer's chunks, with what to do once they are sent: WSGI's ``close``, which a server
    calls after the last byte is written (or the client gave up), as the exporter's own server
    does (``httpserver``). Runs ``sent`` once however often it is called; under a server that never
    calls it, the work between scrapes never starts."""

    def __init__(self, chunks: Iterable[bytes], sent: Callable[[], None]) -> None:
        super().__init__(chunks)
        self._sent: Callable[[], None] | None = sent

    def close(self) -> None:
        sent, self._sent = self._sent, None
        if sent is not None:
            sent()


def _answered(source: MetricsSource) -> None:
    """Tell ``source`` its answer is sent (``Collectors.answered``), so that the work it keeps off
    the scrape's path (the per-torrent refresh between scrapes) competes for the interpreter with
    neither the rendering nor the sending: the server writes a 10,000-torrent answer in about a
    hundred pieces, and waited up to the interpreter's switch interval (5 ms) for each while the
    refresh ran. A source without such work has no ``answered``."""
    answered = getattr(source, "answered", None)
    if answered is not None:
        try:
            answered()
        except Exception:  # the answer stands; only the work between scrapes is lost
            log.exception("cannot start the work between scrapes")


def _render(families: list[Family], accept: str) -> Iterable[bytes]:
    """The exposition in the chosen format, family by family as it is consumed (text format)."""
    if _text_is_acceptable(accept):
        return iter_chunks(families)
    encoder, _ = choose_encoder(accept)  # only OpenMetrics will do: prometheus_client's own encoder
    return [encoder(AsRegistry(families))]  # type: ignore[arg-type]


def _encode(chunks: Iterable[bytes], gzipped: bool) -> list[bytes]:
    return _gzip(chunks) if gzipped else list(chunks)


def _compressor() -> Compressor:
    """A gzip stream at the fastest level of the fastest deflate at hand.

    Prometheus asks for gzip on every scrape, and at 10,000 torrents the text is 20 MB: zlib's
    level 1 spent 0.25 s of CPU on it, more than rendering it. ISA-L (``isal``, installed with the
    exporter where it has wheels: x86-64 and ARM64) writes the same stream format about four times
    faster and a little smaller; elsewhere, zlib's level 1. Either way the client inflates the
    same text.
    """
    if isal_zlib is not None:
        return isal_zlib.compressobj(1, isal_zlib.DEFLATED, 16 + isal_zlib.MAX_WBITS)  # type: ignore[no-any-return]
    return zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)


def _gzip(chunks: Iterable[bytes]) -> list[bytes]:
    """gzip the chunks one by one into one stream as they are rendered, so that the uncompressed
    text (20 MB at 10,000 torrents) is never held whole (``_compressor`` says which deflate)."""
    compressor = _compressor()
    out = [compressor.compress(chunk) for chunk in chunks]
    out.append(compressor.flush())
    return [part for part in out if part]


def _text_is_acceptable(accept: str) -> bool:
    """True when the client takes the classic text format.

    Prometheus lists it in every Accept header it sends (after OpenMetrics). The exporter prefers
    it: it has nothing that needs OpenMetrics (no exemplars, no created timestamps), and its
    renderer is several times faster than building prometheus_client samples at 10,000 torrents.
    """
    if not accept.strip():
        return True
    for item in accept.split(","):
        media = item.split(";")[0].strip()
        if media in ("text/plain", "text/*", "*/*"):
            return True
    return False


def _reply(start_response: StartResponse, status: str, content_type: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """The server's TLS settings for a certificate and key, with the web config's defaults (TLS 1.2
    or later); raises WebConfigError on a bad file."""
    return server_context(TLSSettings(cert_file=certfile, key_file=keyfile), as_flag)


def serve(
    app: ExporterApp,
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None = None,
    limits: Limits | None = None,
) -> HTTPServer:
    """Bind and start serving ``app``; HTTPS when given a TLS context."""
    return HTTPServer(app, host, port, limits=limits, tls=tls).start()
