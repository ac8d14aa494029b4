"""Reloading ``--config.file`` (SIGHUP, ``POST /-/reload``): the new modules, or the old ones kept.

A bad file on reload must not take ``/probe`` down: the modules in force stay, the error is logged
in one line and ``qbittorrent_exporter_config_last_reload_successful`` turns 0 until a reload
works. A good one swaps the modules at once and evicts the targets whose module changed (their
sessions were made with the old credentials), as Prometheus and blackbox_exporter do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from qbt_exporter.config import Config, ConfigError
from qbt_exporter.modules import Modules, load
from qbt_exporter.targets import TargetPool

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    successful: bool
    last_success: float  # wall-clock seconds of the last good load (start-up included)


class Reloader:
    """Holds the modules in force and replaces them from the file when asked."""

    def __init__(
        self,
        modules: Modules,
        flags: Config,
        pool: TargetPool,
        *,
        environ: Mapping[str, str] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._modules = modules
        self._flags = flags
        self._pool = pool
        self._environ = environ
        self._wall_clock = wall_clock
        self._lock = threading.Lock()  # one reload at a time: SIGHUP and POST may come together
        self._status = ReloadStatus(True, wall_clock())

    def modules(self) -> Modules:
        return self._modules

    def status(self) -> ReloadStatus:
        return self._status

    def reload(self) -> str | None:
        """Load the file again; None when the new modules are in force, else the error (the old
        modules stay)."""
        with self._lock:
            try:
                modules = load(self._modules.path, self._flags, self._environ)
            except ConfigError as err:
                self._status = ReloadStatus(False, self._status.last_success)
                log.error("reload failed, keeping the modules loaded before: %s", err)
                return str(err)
            self._modules = modules
            self._status = ReloadStatus(True, self._wall_clock())
            evicted = self._pool.reconfigure(modules)
            log.info(
                "reloaded %s: modules %s; %d /probe targets forgotten",
                modules.path,
                ", ".join(sorted(modules.by_name)),
                evicted,
            )
            return None
