"""``qbt-exporter``: parse the configuration, wire the parts together, serve until told to stop.

Start-up never talks to qBittorrent: the exporter must come up (and answer ``qbittorrent_up 0``)
while qBittorrent is still down. The first scrape detects the API and logs in.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from types import FrameType

from qbt_exporter import __version__, healthcheck, logs
from qbt_exporter.collectors import Collectors
from qbt_exporter.config import Config, ConfigError, parse
from qbt_exporter.httpserver import HTTPServer
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.password import FixedPassword
from qbt_exporter.scraper import Scraper
from qbt_exporter.startup import credential_warnings
from qbt_exporter.stats import Stats
from qbt_exporter.web import ExporterApp
from qbt_exporter.webaccess import Gate

log = logging.getLogger("qbt_exporter")


def build(config: Config) -> tuple[Client, ExporterApp]:
    """The client and the WSGI app for ``config``; nothing is contacted yet."""
    stats = Stats()
    client = Client(
        config.qbittorrent_url,
        config.username,
        config.password,
        api_key=config.api_key,
        timeout=config.timeout,
        host_header=config.host_header,
        verify=config.verify,
        max_reply_size=config.max_reply_size,
        stats=stats,
    )
    if config.verify is False:
        # Said once here; the transport keeps urllib3 from repeating it on every request.
        log.warning(
            "TLS certificate of qBittorrent at %s is not verified (--qbittorrent.tls-insecure-skip-verify)",
            config.qbittorrent_url,
        )
    scraper = Scraper(
        client,
        stats,
        properties="torrent_properties" in config.collectors,
        properties_max_age=config.properties_max_age,
    )
    collectors = Collectors(scraper, stats, names=config.collectors, process_metrics=config.exporter_metrics)
    app = ExporterApp(collectors, telemetry_path=config.telemetry_path, timeout_offset=config.timeout_offset)
    return client, app


def _start_demo(config: Config, stack: ExitStack) -> Config:
    """Start the built-in simulated qBittorrent and point the exporter at it.

    The /api/v2 one (4.6.7): unlike the legacy 4.0.4 it reports free disk space and the alternative
    speed limits, so every panel of the dashboards and the disk alerts have data in the demo."""
    from qbt_exporter.simulator import Simulator, SimulatorConfig
    from qbt_exporter.simulator.v2 import APP_VERSION

    sim_config = SimulatorConfig(torrents=200, api="v2")
    simulator = stack.enter_context(Simulator(sim_config).start())
    log.info(
        "demo: simulated qBittorrent %s (/api/v2) with %d torrents at %s",
        APP_VERSION,
        sim_config.torrents,
        simulator.url,
    )
    return replace(
        config,
        qbittorrent_url=simulator.url,
        username=sim_config.username,
        password=FixedPassword(sim_config.password, "the demo"),
        api_key=None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["healthcheck"]:
        return healthcheck.main(args[1:])
    try:
        config = parse(args)
    except ConfigError as err:
        print(f"qbt-exporter: error: {err}", file=sys.stderr)
        return 2
    logs.setup(config.log_level, config.log_format)
    for warning in credential_warnings(config, os.environ):
        log.warning("%s", warning)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with ExitStack() as stack:
        if config.demo:
            config = _start_demo(config, stack)
        client, app = build(config)
        access = config.web_access
        try:
            server = HTTPServer(
                Gate(app, access),
                config.listen_host,
                config.listen_port,
                tls=access.tls_context if access.tls_on else None,
                limits=config.web_limits,
            ).start()
        except OSError as err:
            print(f"qbt-exporter: error: --web.listen-address: cannot listen: {err}", file=sys.stderr)
            return 2
        loaded = access.current()
        log.info(
            "qbt-exporter %s serving %s on %s:%d (%s%s) for %s",
            __version__,
            config.telemetry_path,
            config.listen_host,
            server.port,
            "https" if loaded.tls else "http",
            f", Basic auth for {len(loaded.config.users)} users" if loaded.config.users else "",
            config.qbittorrent_url,
        )
        stop.wait()
        server.stop()
        client.logout()
        client.close()
    log.info("stopped")
    return 0
