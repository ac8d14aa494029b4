"""``qbt-exporter healthcheck``: ask the exporter running beside us for its ``/healthz``.

Why a subcommand and not a ``curl`` line in the Dockerfile: the image has no curl, and a fixed
``http://127.0.0.1:9561/healthz`` breaks as soon as the listen address or TLS changes. This reads
the very same flags and environment as the exporter (``--web.listen-address``, ``--web.tls-cert-file``,
``--web.config.file``), so a container's health check follows its configuration by itself. ``/healthz``
is open without Basic auth; a web config that requires client certificates refuses this check.

``/healthz`` answers 200 while the exporter serves, whether or not qBittorrent answers
(``qbittorrent_up`` says that): a health check must not restart the exporter because qBittorrent
is down. Exit status 0 healthy, 1 not, 2 a configuration the exporter would refuse too.
"""

from __future__ import annotations

import http.client
import ssl
import sys
from collections.abc import Mapping, Sequence

from qbt_exporter.config import Config, ConfigError, parse

__all__ = ["main", "probe_urls"]

TIMEOUT = 4.0  # seconds; below Docker's default 30 s interval and the Dockerfile's 5 s timeout


def probe_urls(config: Config) -> list[str]:
    """``/healthz`` URLs to try, the configured scheme first.

    A wildcard listen address is reached on the loopback of its family. TLS is on when
    ``--web.tls-cert-file`` or ``--web.config.file`` turns it on; the other scheme is tried second
    all the same (a web config file edited since the exporter started may have changed it).
    """
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(config.listen_host, config.listen_host)
    netloc = f"[{host}]:{config.listen_port}" if ":" in host else f"{host}:{config.listen_port}"
    schemes = ["https", "http"] if config.web_access.tls_on else ["http", "https"]
    return [f"{scheme}://{netloc}/healthz" for scheme in schemes]


def _get_status(url: str, timeout: float) -> int:
    scheme, _, rest = url.partition("://")
    netloc = rest.split("/", 1)[0]
    connection: http.client.HTTPConnection
    if scheme == "https":
        # Our own certificate, reached by a loopback address it was not issued for: identity is
        # not what this checks, only that the server answers.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(netloc, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(netloc, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    finally:
        connection.close()


def main(argv: Sequence[str], environ: Mapping[str, str] | None = None, timeout: float = TIMEOUT) -> int:
    try:
        config = parse(argv, environ)
    except ConfigError as err:
        print(f"qbt-exporter healthcheck: error: {err}", file=sys.stderr)
        return 2
    problems = []
    for url in probe_urls(config):
        try:
            status = _get_status(url, timeout)
        except (OSError, http.client.HTTPException) as err:
            problems.append(f"{url}: {err}")
            continue
        if status == 200:
            print(f"healthy: {url}")
            return 0
        problems.append(f"{url}: HTTP {status}")
    print(f"qbt-exporter healthcheck: unhealthy: {'; '.join(problems)}", file=sys.stderr)
    return 1
