"""``GET /probe?target=<qBittorrent URL>&module=<name>``: one qBittorrent's metrics, chosen by the
caller, read with a module's credentials, the multi-target pattern of blackbox_exporter.

Every check that can refuse a probe runs before the target is contacted, in this order, and a
refusal is an HTTP error with one line saying why (never ``qbittorrent_up 0``: the probe itself was
wrong, not qBittorrent): a missing, repeated or malformed parameter, an unknown module (400), a
target the module does not allow (400: its credentials go nowhere else), a full target pool (503).
A probe that passes is answered like ``/metrics``: 200 and ``qbittorrent_up 0`` when qBittorrent
is down.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import parse_qs

from qbt_exporter.allowlist import Target, TargetError, parse_target
from qbt_exporter.collectors import Collectors
from qbt_exporter.modules import Module, Modules
from qbt_exporter.stats import Stats
from qbt_exporter.targets import PoolFull, TargetPool

log = logging.getLogger(__name__)

DEFAULT_MODULE = "default"
MAX_FIELDS = 8


class ProbeRefused(Exception):
    """A probe answered with an HTTP error before any qBittorrent is contacted."""

    def __init__(self, status: str, message: str, outcome: str) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome


class Prober:
    """Checks a probe's parameters against the current modules and reads the target it names."""

    def __init__(self, modules: Callable[[], Modules], pool: TargetPool, stats: Stats | None = None) -> None:
        self._modules = modules
        self.pool = pool
        self.stats = stats if stats is not None else Stats()
        self._refusals = _Seen()

    def check(self, query: str) -> tuple[Module, Target]:
        """The module and canonical target a probe names; ProbeRefused (and counted) when refused."""
        try:
            return self._check(query)
        except ProbeRefused as refused:
            self.stats.inc("probes", refused.outcome)
            raise

    @contextmanager
    def lease(self, module: Module, target: Target) -> Iterator[Collectors]:
        """The collectors of ``target`` under ``module`` for one probe; ProbeRefused when the pool
        is full."""
        with ExitStack() as stack:
            try:
                reader = stack.enter_context(self.pool.lease(module, target))
            except PoolFull as full:
                self.stats.inc("probes", "pool_full")
                raise ProbeRefused(
                    "503 Service Unavailable", f"cannot probe {target.url}: {full}", "pool_full"
                ) from None
            self.stats.inc("probes", "ok")
            yield reader.collectors

    def _check(self, query: str) -> tuple[Module, Target]:
        try:
            params = parse_qs(query, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except ValueError:
            raise _bad(f"more than {MAX_FIELDS} query parameters") from None
        for name, values in params.items():
            if len(values) > 1:
                raise _bad(f"parameter {name!r} given {len(values)} times; give it once")
        text = params.get("target", [""])[0]
        if not text:
            raise _bad("missing 'target' parameter: /probe?target=http://qbittorrent:8080&module=NAME")
        module_name = params.get("module", [DEFAULT_MODULE])[0]
        module = self._modules().get(module_name)
        if module is None:
            raise ProbeRefused(
                "400 Bad Request",
                f"unknown module {module_name!r} (modules: {', '.join(sorted(self._modules().by_name))})",
                "unknown_module",
            )
        try:
            target = parse_target(text)
        except TargetError as err:
            shown = "" if "@" in text else f" {text!r}"  # user info may hold a password: not echoed
            raise _bad(f"target{shown} {err}") from None
        if not module.allows(target):
            if self._refusals.first((module.name, target.url)):
                log.warning("refused /probe of %s: module %s does not allow it", target.url, module.name)
            raise ProbeRefused(
                "400 Bad Request",
                f"target {target.url} is not allowed by module {module.name!r}: its credentials are sent "
                "only to the targets listed under its 'targets' in the config file",
                "not_allowed",
            )
        return module, target


class _Seen:
    """The last few refused (module, target) pairs, so that Prometheus scraping a refused target
    every 30 s logs it once, not on every scrape; bounded, since callers choose the targets."""

    SIZE = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: OrderedDict[tuple[str, str], None] = OrderedDict()

    def first(self, key: tuple[str, str]) -> bool:
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return False
            self._keys[key] = None
            if len(self._keys) > self.SIZE:
                self._keys.popitem(last=False)
            return True


def _bad(message: str) -> ProbeRefused:
    return ProbeRefused("400 Bad Request", message, "bad_request")
