"""The HTTP side: routing, the scrape deadline, and the server that runs it.

A WSGI app on prometheus_client's threading WSGI server. ``/metrics`` must always answer, quickly
and with 200: a failing qBittorrent is reported as ``qbittorrent_up 0``, never as an HTTP error,
and an unexpected exception in the exporter is logged and answered the same way, so Prometheus
keeps the exporter's own series and alerts on ``qbittorrent_up`` rather than on a scrape error.
"""

from __future__ import annotations

import html
import logging
import socket
import ssl
import threading
import zlib
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client.exposition import (
    CONTENT_TYPE_PLAIN_0_0_4,
    ThreadingWSGIServer,
    _SilentHandler,
    choose_encoder,
)

from qbt_exporter import __version__
from qbt_exporter.collector import Collector
from qbt_exporter.deadline import Deadline
from qbt_exporter.exposition import AsRegistry, render_chunks
from qbt_exporter.scraper import ScrapeResult

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

TIMEOUT_HEADER = "HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS"
DEFAULT_SCRAPE_TIMEOUT = 10.0  # Prometheus's default scrape_timeout, for scrapers that send no header
MIN_BUDGET = 0.1


def scrape_budget(environ: dict[str, Any], offset: float) -> float:
    """Seconds the qBittorrent calls of this scrape may take: Prometheus's timeout minus the offset."""
    raw = environ.get(TIMEOUT_HEADER)
    try:
        timeout = float(raw) if raw else DEFAULT_SCRAPE_TIMEOUT
    except ValueError:
        timeout = DEFAULT_SCRAPE_TIMEOUT
    if not timeout > 0:  # also rejects NaN
        timeout = DEFAULT_SCRAPE_TIMEOUT
    return max(MIN_BUDGET, timeout - offset)


class ExporterApp:
    """The WSGI application: ``/``, ``/healthz`` and the telemetry path."""

    def __init__(
        self, collector: Collector, *, telemetry_path: str = "/metrics", timeout_offset: float = 0.5
    ):
        self.collector = collector
        self.telemetry_path = telemetry_path
        self.timeout_offset = timeout_offset

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == self.telemetry_path:
            return self._metrics(environ, start_response)
        if path == "/healthz":
            return _reply(start_response, "200 OK", "text/plain; charset=utf-8", b"ok\n")
        if path == "/":
            return _reply(start_response, "200 OK", "text/html; charset=utf-8", self._landing())
        return _reply(start_response, "404 Not Found", "text/plain; charset=utf-8", b"not found\n")

    def _metrics(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        deadline = Deadline(scrape_budget(environ, self.timeout_offset))
        try:
            families = self.collector.collect_within(deadline)
        except Exception:  # the HTTP server must never see an exception from a scrape
            log.exception("scrape failed unexpectedly; answering with qbittorrent_up 0")
            families = self.collector.families(ScrapeResult(None, error="internal error"))
        accept = environ.get("HTTP_ACCEPT", "")
        if _text_is_acceptable(accept):
            chunks, content_type = render_chunks(families), CONTENT_TYPE_PLAIN_0_0_4
        else:  # only OpenMetrics will do: prometheus_client's own encoder, from ordinary families
            encoder, content_type = choose_encoder(accept)
            chunks = [encoder(AsRegistry(families))]  # type: ignore[arg-type]
        headers = [("Content-Type", content_type)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            chunks = _gzip(chunks)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(sum(len(chunk) for chunk in chunks))))
        start_response("200 OK", headers)
        return chunks

    def _landing(self) -> bytes:
        path = html.escape(self.telemetry_path)
        page = (
            "<!DOCTYPE html><html><head><title>qBittorrent exporter</title></head><body>"
            f"<h1>qBittorrent exporter</h1><p>Version {html.escape(__version__)}</p>"
            f'<ul><li><a href="{path}">Metrics</a></li><li><a href="/healthz">Health</a></li></ul>'
            "</body></html>\n"
        )
        return page.encode()


def _gzip(chunks: list[bytes]) -> list[bytes]:
    """gzip the chunks one by one into one stream (level 1: Prometheus asks for gzip on every
    scrape, and on loopback the CPU matters more than the last few percent of size)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
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


class Server:
    """A running HTTP server on its own thread; ``stop()`` shuts it down and frees the port."""

    def __init__(self, httpd: WSGIServer) -> None:
        self.httpd = httpd
        self.thread = threading.Thread(target=httpd.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> Server:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class _IPv6Server(ThreadingWSGIServer):
    address_family = socket.AF_INET6


def serve(
    app: ExporterApp,
    host: str,
    port: int,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> Server:
    """Bind and start serving ``app``; TLS when a certificate and key are given."""
    server_class = _IPv6Server if ":" in host else ThreadingWSGIServer
    httpd = make_server(host, port, app, server_class, handler_class=_SilentHandler)
    if certfile and keyfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile, keyfile)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    return Server(httpd).start()
