"""The /probe target pool: one reader per (module, target), idle ones evicted (logged out of first),
a cap on live ones, and a reload that drops the readers built with settings no longer in force.
Time is a fake clock: nothing here sleeps."""

from __future__ import annotations

import gc
import threading
import weakref
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from qbt_exporter.allowlist import Target, parse_rule, parse_target
from qbt_exporter.config import parse
from qbt_exporter.deadline import Deadline
from qbt_exporter.modules import Module, Modules, Secret
from qbt_exporter.modules import parse as parse_modules
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.selection import Selection
from qbt_exporter.simulator import Simulator, SimulatorConfig
from qbt_exporter.targets import PoolFull, Reader, Settings, TargetPool, build_reader, module_settings
from tests.clocks import FakeClock

FLAGS = parse([], environ={})


def module(name: str = "m", *targets: str, username: str = "admin") -> Module:
    return Module(
        name=name,
        username=username,
        password=None,
        api_key=None,
        timeout=5.0,
        max_reply_size=1 << 20,
        verify=True,
        host_header=None,
        collectors=FLAGS.collectors,
        targets=tuple(parse_rule(t) for t in targets or ("*.lan",)),
    )


@dataclass
class LoggingOutClient:
    """Stands in for Client: records logouts and closes."""

    url: str
    timeout: float = 5.0
    events: list[str] = field(default_factory=list)

    def logout(self, deadline: Deadline | None = None) -> None:
        self.events.append(f"logout {self.url}")

    def close(self) -> None:
        self.events.append(f"close {self.url}")


class Builder:
    def __init__(self) -> None:
        self.built: list[tuple[str, str]] = []
        self.events: list[str] = []

    def __call__(self, mod: Module, target: Target) -> Reader:
        self.built.append((mod.name, target.url))
        return Reader(LoggingOutClient(target.url, events=self.events), collectors=None)  # type: ignore[arg-type]


def pool(clock: FakeClock, builder: Builder, **kwargs: Any) -> TargetPool:
    return TargetPool(builder, clock=clock, retire=_retire_now, **kwargs)


def _retire_now(readers: list[Reader]) -> None:
    for reader in readers:
        reader.close()


A, B, C = (parse_target(f"http://{name}.lan:8080") for name in "abc")


def test_one_reader_per_target_reused_across_probes() -> None:
    builder, clock = Builder(), FakeClock()
    targets = pool(clock, builder)
    mod = module()
    with targets.lease(mod, A) as first:
        pass
    with targets.lease(mod, A) as again, targets.lease(mod, B) as other:
        assert again is first and other is not first
    assert builder.built == [("m", A.url), ("m", B.url)]
    assert targets.status().live == 2


def test_the_same_target_under_two_modules_gets_two_readers() -> None:
    """Two modules mean two sets of credentials: never one session for both."""
    builder, clock = Builder(), FakeClock()
    targets = pool(clock, builder)
    with targets.lease(module("one"), A) as one, targets.lease(module("two"), A) as two:
        assert one is not two


def test_a_target_idle_for_the_timeout_is_logged_out_of_and_forgotten() -> None:
    builder, clock = Builder(), FakeClock()
    targets = pool(clock, builder, idle_timeout=600)
    mod = module()
    with targets.lease(mod, A):
        pass
    with targets.lease(mod, B):
        pass
    clock.advance(599)
    with targets.lease(mod, B):  # B used again: only A goes idle for long enough
        pass
    assert targets.sweep() == 0
    clock.advance(1)
    assert targets.sweep() == 1
    assert builder.events == [f"logout {A.url}", f"close {A.url}"]  # logged out first
    status = targets.status()
    assert (status.live, status.evictions["idle"]) == (1, 1)
    with targets.lease(mod, A):  # probed again: a new reader (a new login)
        pass
    assert builder.built.count(("m", A.url)) == 2


def test_a_target_in_use_is_never_evicted_however_long_its_probe_takes() -> None:
    builder, clock = Builder(), FakeClock()
    targets = pool(clock, builder, idle_timeout=60)
    with targets.lease(module(), A):
        clock.advance(3600)
        assert targets.sweep() == 0
    clock.advance(59)
    assert targets.sweep() == 0  # idle time counts from the end of the probe
    clock.advance(1)
    assert targets.sweep() == 1


def test_the_cap_refuses_a_new_target_but_serves_the_live_ones() -> None:
    builder, clock = Builder(), FakeClock()
    targets = pool(clock, builder, max_targets=2, idle_timeout=600)
    mod = module()
    for target in (A, B):
        with targets.lease(mod, target):
            pass
    with pytest.raises(PoolFull, match=r"--probe\.max-targets"), targets.lease(mod, C):
        pass
    with targets.lease(mod, A):  # a live one still works
        pass
    assert builder.built == [("m", A.url), ("m", B.url)]  # C never built: nothing contacted
    clock.advance(600)  # ... until one goes idle: a new target first evicts the idle ones
    with targets.lease(mod, C):
        pass
    assert targets.status().live == 1
    assert builder.events == [f"logout {A.url}", f"close {A.url}", f"logout {B.url}", f"close {B.url}"]


def test_status_reports_the_bounds() -> None:
    status = pool(FakeClock(), Builder(), max_targets=7, idle_timeout=90).status()
    assert (status.live, status.max_targets, status.idle_timeout) == (0, 7, 90)
    assert status.evictions == {"idle": 0, "reload": 0}


def test_a_reload_evicts_targets_whose_module_changed_went_away_or_no_longer_allows_them() -> None:
    builder, clock = Builder(), FakeClock()
    targets = pool(clock, builder)
    kept, changed, gone = module("kept", "a.lan:8080", "b.lan:8080"), module("changed"), module("gone")
    for mod, target in ((kept, A), (kept, B), (changed, A), (gone, A)):
        with targets.lease(mod, target):
            pass
    narrowed = replace(kept, targets=(parse_rule("a.lan:8080"),))
    renewed = replace(changed, username="someone-else")
    evicted = targets.reconfigure(Modules("f", {"kept": kept, "changed": renewed}))
    assert evicted == 2  # changed/A and gone/A; kept/A and kept/B stay (same module)
    assert targets.status().live == 2
    assert (
        targets.reconfigure(Modules("f", {"kept": narrowed, "changed": renewed})) == 2
    )  # kept/*: module changed
    assert targets.status().evictions["reload"] == 4


def test_a_probe_with_a_changed_module_gets_a_new_reader_and_the_old_one_is_closed_after_its_probe() -> None:
    builder, clock = Builder(), FakeClock()
    targets = pool(clock, builder)
    old, new = module("m", username="old"), module("m", username="new")
    with targets.lease(old, A) as first:
        with targets.lease(new, A) as second:
            assert second is not first
        assert builder.events == []  # the first probe still runs: not closed under it
    assert builder.events == [f"logout {A.url}", f"close {A.url}"]


def test_concurrent_probes_of_a_new_target_build_one_reader() -> None:
    builder, clock = Builder(), FakeClock()
    targets = pool(clock, builder)
    mod = module()
    start = threading.Barrier(8)

    def probe() -> None:
        start.wait()
        with targets.lease(mod, A):
            pass

    threads = [threading.Thread(target=probe) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builder.built == [("m", A.url)]


def test_close_logs_out_of_every_target() -> None:
    builder, clock = Builder(), FakeClock()
    targets = pool(clock, builder)
    for target in (A, B):
        with targets.lease(module(), target):
            pass
    targets.close()
    assert sorted(builder.events) == sorted(f"{what} {t.url}" for t in (A, B) for what in ("logout", "close"))
    assert targets.status().live == 0


def test_module_settings_send_the_modules_credentials_to_the_canonical_url_only() -> None:
    mod = module("m", "*.example")
    target = parse_target("http://QBT.bücher.example.:8080/")
    reader = build_reader(module_settings(mod, target, 300.0, 1800.0))
    assert isinstance(reader.client, Client)
    assert reader.client.base_url == "http://qbt.xn--bcher-kva.example:8080"
    assert reader.collectors.process is None  # the process's own metrics belong to /metrics


def test_build_reader_honours_the_collectors() -> None:
    reader = build_reader(Settings("http://qbt.lan", collectors=frozenset({"transfer", "exporter"})))
    assert {c.name for c in reader.collectors.collectors} == {"transfer", "exporter"}
    assert reader.collectors.scraper.properties is None


def test_the_flags_torrent_filters_reach_every_reader() -> None:
    """--torrents.include/exclude/max apply to /metrics and to every /probe target whose module
    does not choose its own."""
    flags = parse(["--torrents.include", "category=movies", "--torrents.max", "7"], environ={})
    selection = Selection(flags.torrent_filters, flags.torrents_max)
    mod = parse_modules("modules: {m: {targets: ['*.example']}}", flags, {})["m"]
    probed = build_reader(module_settings(mod, parse_target("http://qbt.example"), 300.0, 1800.0))
    assert probed.collectors.scraper.selection == selection
    assert (
        build_reader(Settings("http://qbt.lan", selection=selection)).collectors.scraper.selection
        == selection
    )
    assert not build_reader(Settings("http://qbt.lan")).collectors.scraper.selection.filters.active


def test_a_modules_own_torrent_filters_reach_its_targets() -> None:
    flags = parse(["--torrents.include", "category=movies", "--torrents.max", "7"], environ={})
    mod = parse_modules(
        "modules: {m: {targets: ['*.example'], torrents: {exclude: 'tag=private', max: 3}}}", flags, {}
    )["m"]
    selection = build_reader(
        module_settings(mod, parse_target("http://qbt.example"), 300.0, 1800.0)
    ).collectors.scraper.selection
    assert (selection.include_text, selection.exclude_text, selection.max) == (
        "category=movies",
        "tag=private",
        3,
    )


def test_the_flags_reader_gets_the_flags_filters() -> None:
    from qbt_exporter.cli import default_settings

    flags = parse(["--torrents.exclude", "status=errored"], environ={})
    assert default_settings(flags).selection == Selection(flags.torrent_filters, None)


def test_an_evicted_target_leaves_nothing_behind() -> None:
    """After a real scrape and its eviction, no reference keeps the reader's client, scraper or
    caches alive: the pool is bounded in memory, not only in count."""
    clock = FakeClock()
    with Simulator(SimulatorConfig(torrents=5, latency=False, churn=False, time_scale=0)) as simulator:
        targets = TargetPool(
            lambda mod, target: build_reader(module_settings(mod, target, 300.0, 1800.0)),
            idle_timeout=60,
            clock=clock,
            retire=_retire_now,
        )
        mod = replace(module("m", "127.0.0.1"), password=Secret("env", "TEST", simulator.config.password))
        with targets.lease(mod, parse_target(simulator.url)) as reader:
            families = reader.collectors.collect_within(Deadline(10))
            assert any(family.spec.name == "qbittorrent_torrent_info" for family in families)
            refs = [weakref.ref(reader.client), weakref.ref(reader.collectors.scraper)]
        del reader, families
        clock.advance(60)
        assert targets.sweep() == 1
        assert simulator.requests_by_path["/logout"] == 1  # logged out first
        gc.collect()
        assert [ref() for ref in refs] == [None, None]
