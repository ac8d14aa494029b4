"""Per-qBittorrent state: one reader (client, scraper, collectors) per target, and the pool that
bounds how many exist and how long they live.

A reader is everything that must outlive one scrape of one qBittorrent: its session cookie and
login back-off (``Client``), the detected API, the properties cache and the single-flight gate
(``Scraper``), its own counters (``Stats``). ``/metrics`` has one, built from the flags;
``/probe`` has one per (module, target), built on first use, so that two qBittorrents never share
a session, a cache or a counter.

The pool is bounded twice, because whoever can reach ``/probe`` picks the targets (within what
the modules allow, which a host pattern keeps open-ended):

* a target not probed for ``idle_timeout`` is evicted: logged out of, closed, forgotten (by
  ``sweep``, which the CLI runs periodically and every new target runs first);
* at most ``max_targets`` live at once: a probe of one more is refused (``PoolFull``, HTTP 503)
  rather than evicting a target Prometheus still scrapes, which would log in and out of every
  qBittorrent on each round once the cap is passed.

A reload evicts the targets whose module changed or went away, or that their module no longer
allows. Logging out (a network call) happens outside the pool's lock, in ``retire``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from qbt_exporter import properties, trackers
from qbt_exporter.allowlist import Target
from qbt_exporter.collectors import Collectors
from qbt_exporter.deadline import Deadline
from qbt_exporter.modules import Module, Modules
from qbt_exporter.qbittorrent.client import DEFAULT_MAX_REPLY_SIZE, Client
from qbt_exporter.qbittorrent.password import PasswordSource
from qbt_exporter.refresher import Refresher
from qbt_exporter.scraper import Scraper
from qbt_exporter.selection import Selection
from qbt_exporter.stats import Stats

log = logging.getLogger(__name__)

LOGOUT_BUDGET = 2.0  # seconds for one logout when a target is evicted: a dead target must not hold the rest
EVICTION_REASONS = ("idle", "reload")


@dataclass(frozen=True, slots=True)
class Settings:
    """How to reach and read one qBittorrent: what ``Client``, ``Scraper`` and ``Collectors`` take."""

    url: str
    username: str = "admin"
    password: PasswordSource | None = None
    api_key: str | None = None
    timeout: float = 5.0
    host_header: str | None = None
    verify: bool | str = True
    max_reply_size: int = DEFAULT_MAX_REPLY_SIZE
    collectors: frozenset[str] = frozenset()
    properties_max_age: float = properties.DEFAULT_MAX_AGE
    trackers_max_age: float = trackers.DEFAULT_MAX_AGE
    process_metrics: bool = False
    selection: Selection = field(default_factory=Selection)  # --torrents.include/exclude/max
    refresh_ahead: bool = False  # --torrents.refresh-ahead: per-torrent refreshes between scrapes


@dataclass(slots=True)
class Reader:
    """One qBittorrent's client and the collectors over it."""

    client: Client
    collectors: Collectors
    scraper: Scraper | None = None  # its refresh between scrapes is stopped first

    def close(self, budget: float = LOGOUT_BUDGET) -> None:
        """Stop the refresh between scrapes, log out (bounded by ``budget``) and drop the
        connections; never raises."""
        if self.scraper is not None:
            self.scraper.close()
        self.client.logout(Deadline(min(budget, self.client.timeout)))
        self.client.close()


def build_reader(settings: Settings) -> Reader:
    """A reader for ``settings``; nothing is contacted yet."""
    stats = Stats()
    client = Client(
        settings.url,
        settings.username,
        settings.password,
        api_key=settings.api_key,
        timeout=settings.timeout,
        host_header=settings.host_header,
        verify=settings.verify,
        max_reply_size=settings.max_reply_size,
        stats=stats,
    )
    scraper = Scraper(
        client,
        stats,
        properties="torrent_properties" in settings.collectors,
        properties_max_age=settings.properties_max_age,
        selection=settings.selection,
        trackers="trackers" in settings.collectors,
        trackers_max_age=settings.trackers_max_age,
        refresher=Refresher() if settings.refresh_ahead else None,
    )
    collectors = Collectors(
        scraper, stats, names=settings.collectors, process_metrics=settings.process_metrics
    )
    return Reader(client, collectors, scraper)


def module_settings(
    module: Module,
    target: Target,
    properties_max_age: float,
    trackers_max_age: float,
    refresh_ahead: bool = False,
) -> Settings:
    """The settings of ``module`` for ``target``: the module's credentials and torrent filters
    (the flags' --torrents.* where the module says nothing), the target's URL; the flags' per-torrent
    max ages and refresh between scrapes."""
    return Settings(
        url=target.url,
        username=module.username,
        password=module.password_source(),
        api_key=module.api_key.value if module.api_key else None,
        timeout=module.timeout,
        host_header=module.host_header,
        verify=module.verify,
        max_reply_size=module.max_reply_size,
        collectors=module.collectors,
        properties_max_age=properties_max_age,
        selection=module.selection,
        trackers_max_age=trackers_max_age,
        refresh_ahead=refresh_ahead,
    )


class PoolFull(Exception):
    """Every slot holds a live target: this new one is refused."""


@dataclass(slots=True)
class _Entry:
    module: Module
    target: Target
    reader: Reader
    last_used: float
    leases: int = 0
    retired: bool = False  # evicted while leased: closed when the last lease ends


@dataclass(frozen=True, slots=True)
class PoolStatus:
    live: int
    max_targets: int
    idle_timeout: float
    evictions: dict[str, int]


def _retire_in_background(readers: list[Reader]) -> None:
    """Log out of evicted targets on a thread of their own: a slow or dead one must not hold up the
    probe, reload or sweep that evicted it."""
    if readers:
        threading.Thread(target=_retire, args=(readers,), name="qbt-logout", daemon=True).start()


def _retire(readers: list[Reader]) -> None:
    for reader in readers:
        try:
            reader.close()
        except Exception:  # one bad logout must not keep the others logged in
            log.debug("closing an evicted target failed", exc_info=True)


class TargetPool:
    """The readers of ``/probe``, keyed by (module name, canonical target URL)."""

    def __init__(
        self,
        build: Callable[[Module, Target], Reader],
        *,
        idle_timeout: float = 600.0,
        max_targets: int = 100,
        clock: Callable[[], float] = time.monotonic,
        retire: Callable[[list[Reader]], None] = _retire_in_background,
    ) -> None:
        self._build = build
        self.idle_timeout = idle_timeout
        self.max_targets = max_targets
        self._clock = clock
        self._retire = retire
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._evictions: Counter[str] = Counter({reason: 0 for reason in EVICTION_REASONS})

    @contextmanager
    def lease(self, module: Module, target: Target) -> Iterator[Reader]:
        """The reader for ``target`` under ``module``, kept from eviction until the block ends.

        Raises PoolFull when the target is new and ``max_targets`` others are live.
        """
        key = (module.name, target.url)
        stale: list[Reader] = []
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.module != module:  # reloaded since: rebuild with the new one
                stale.extend(self._pop(key, "reload"))
                entry = None
            if entry is None:
                stale.extend(self._evict_idle_locked())
                if len(self._entries) >= self.max_targets:
                    self._retire(stale)
                    raise PoolFull(
                        f"{len(self._entries)} targets are live, the most --probe.max-targets allows; "
                        f"one is evicted after {self.idle_timeout:g}s without a probe"
                    )
                entry = _Entry(module, target, self._build(module, target), self._clock())
                self._entries[key] = entry
            entry.leases += 1
            entry.last_used = self._clock()
        self._retire(stale)
        try:
            yield entry.reader
        finally:
            with self._lock:
                entry.leases -= 1
                entry.last_used = self._clock()
                done = entry.retired and entry.leases == 0
            if done:
                self._retire([entry.reader])

    def sweep(self) -> int:
        """Evict every target idle for ``idle_timeout``; how many were."""
        with self._lock:
            evicted = self._evict_idle_locked()
        self._retire(evicted)
        return len(evicted)

    def reconfigure(self, modules: Modules) -> int:
        """Evict targets whose module changed or is gone, or that it no longer allows; how many."""
        with self._lock:
            doomed = [
                key
                for key, entry in self._entries.items()
                if modules.get(entry.module.name) != entry.module or not entry.module.allows(entry.target)
            ]
            evicted = [reader for key in doomed for reader in self._pop(key, "reload")]
        self._retire(evicted)
        return len(evicted)

    def close(self) -> None:
        """Log out of every target (at shutdown), synchronously."""
        with self._lock:
            readers = [entry.reader for entry in self._entries.values()]
            self._entries.clear()
        _retire(readers)

    def status(self) -> PoolStatus:
        with self._lock:
            return PoolStatus(len(self._entries), self.max_targets, self.idle_timeout, dict(self._evictions))

    def _evict_idle_locked(self) -> list[Reader]:
        now = self._clock()
        idle = [
            key
            for key, entry in self._entries.items()
            if entry.leases == 0 and now - entry.last_used >= self.idle_timeout
        ]
        return [reader for key in idle for reader in self._pop(key, "idle")]

    def _pop(self, key: tuple[str, str], reason: str) -> list[Reader]:
        """Forget ``key``; its reader to retire now, or none when a probe still uses it (the last
        lease retires it)."""
        entry = self._entries.pop(key)
        self._evictions[reason] += 1
        log.info("forgetting /probe target %s (module %s): %s", entry.target.url, entry.module.name, reason)
        if entry.leases:
            entry.retired = True
            return []
        return [entry.reader]
