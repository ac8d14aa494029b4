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
from dataclasses import dataclass, replace
from types import FrameType

from qbt_exporter import __version__, healthcheck, logs, malloc
from qbt_exporter.collectors.probe import MetricsPage, probe_families
from qbt_exporter.config import Config, ConfigError, parse
from qbt_exporter.httpserver import HTTPServer
from qbt_exporter.modules import Modules
from qbt_exporter.modules import load as load_modules
from qbt_exporter.probe import Prober
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.password import FixedPassword
from qbt_exporter.reload import Reloader
from qbt_exporter.selection import Selection
from qbt_exporter.startup import credential_warnings
from qbt_exporter.targets import Reader, Settings, TargetPool, build_reader, module_settings
from qbt_exporter.web import ExporterApp
from qbt_exporter.webaccess import Gate

log = logging.getLogger("qbt_exporter")


def default_settings(config: Config) -> Settings:
    """The flags' qBittorrent, read for ``/metrics``."""
    return Settings(
        url=config.qbittorrent_url,
        username=config.username,
        password=config.password,
        api_key=config.api_key,
        timeout=config.timeout,
        host_header=config.host_header,
        verify=config.verify,
        max_reply_size=config.max_reply_size,
        collectors=config.collectors,
        properties_max_age=config.properties_max_age,
        trackers_max_age=config.trackers_max_age,
        process_metrics=config.exporter_metrics,
        selection=Selection(config.torrent_filters, config.torrents_max),
        refresh_ahead=config.refresh_ahead,
    )


def _default_reader(config: Config) -> Reader:
    if config.verify is False:
        # Said once here; the transport keeps urllib3 from repeating it on every request.
        log.warning(
            "TLS certificate of qBittorrent at %s is not verified (--qbittorrent.tls-insecure-skip-verify)",
            config.qbittorrent_url,
        )
    return build_reader(default_settings(config))


def build(config: Config) -> tuple[Client, ExporterApp]:
    """The client and the WSGI app for ``config`` without a config file; nothing is contacted yet."""
    service = build_service(config)
    assert service.default is not None
    return service.default.client, service.app


@dataclass
class Service:
    """Everything ``main`` runs: the app, and what it must sweep, reload and close."""

    app: ExporterApp
    default: Reader | None = None
    pool: TargetPool | None = None
    reloader: Reloader | None = None

    def close(self) -> None:
        """Log out of every qBittorrent (shutdown)."""
        if self.pool is not None:
            self.pool.close()
        if self.default is not None:
            self.default.close(budget=self.default.client.timeout)


def build_service(config: Config, modules: Modules | None = None) -> Service:
    """The whole exporter for ``config``: with ``modules`` (the config file), ``/probe`` and
    ``/-/reload`` too, and ``/metrics`` reads the flags' qBittorrent only when one was given."""
    if modules is None:
        reader = _default_reader(config)
        app = ExporterApp(
            reader.collectors, telemetry_path=config.telemetry_path, timeout_offset=config.timeout_offset
        )
        return Service(app, default=reader)
    default = _default_reader(config) if config.default_target else None
    pool = TargetPool(
        lambda module, target: build_reader(
            module_settings(
                module, target, config.properties_max_age, config.trackers_max_age, config.refresh_ahead
            )
        ),
        idle_timeout=config.probe_idle_timeout,
        max_targets=config.probe_max_targets,
    )
    reloader = Reloader(modules, config, pool)
    prober = Prober(reloader.modules, pool)
    page = MetricsPage(
        default.collectors if default is not None else None,
        lambda: probe_families(pool.status(), prober.stats, reloader.status()),
        process_metrics=config.exporter_metrics,
    )
    app = ExporterApp(
        page,
        telemetry_path=config.telemetry_path,
        timeout_offset=config.timeout_offset,
        prober=prober,
        reload=reloader.reload,
    )
    return Service(app, default, pool, reloader)


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
        modules = load_modules(config.config_file, config) if config.config_file else None
    except ConfigError as err:
        print(f"qbt-exporter: error: {err}", file=sys.stderr)
        return 2
    logs.setup(config.log_level, config.log_format)
    malloc.hand_back_large_blocks()  # before the first scrape's large blocks (malloc.py)
    for warning in credential_warnings(config, os.environ):
        log.warning("%s", warning)
    stop = threading.Event()
    wake = threading.Event()  # the main loop's alarm: a signal, or the next sweep
    reload_asked = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()
        wake.set()

    def on_hangup(_signum: int, _frame: FrameType | None) -> None:
        reload_asked.set()  # the reload runs in the main loop, not inside the signal handler
        wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if modules is not None:
        signal.signal(signal.SIGHUP, on_hangup)
    with ExitStack() as stack:
        if config.demo:
            config = _start_demo(config, stack)
        service = build_service(config, modules)
        access = config.web_access
        try:
            server = HTTPServer(
                Gate(service.app, access),
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
            "qbt-exporter %s serving %s on %s:%d (%s%s) for %s%s",
            __version__,
            config.telemetry_path,
            config.listen_host,
            server.port,
            "https" if loaded.tls else "http",
            f", Basic auth for {len(loaded.config.users)} users" if loaded.config.users else "",
            config.qbittorrent_url if service.default is not None else "no default qBittorrent",
            f"; /probe with the modules of {config.config_file}" if modules is not None else "",
        )
        # Sweeping often enough that an idle target outlives its timeout by at most a quarter of it.
        sweep_every = min(60.0, config.probe_idle_timeout / 4)
        while not stop.is_set():
            wake.wait(sweep_every if service.pool is not None else None)
            wake.clear()
            if reload_asked.is_set() and service.reloader is not None:
                reload_asked.clear()
                service.reloader.reload()
            if service.pool is not None:
                service.pool.sweep()
        server.stop()
        service.close()
    log.info("stopped")
    return 0
