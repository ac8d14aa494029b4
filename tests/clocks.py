"""Fake clocks for tests: time passes when the test says so, never by sleeping.

Why: the suite runs on a loaded two-core machine, where a 10 ms sleep can take 200 ms and a "should
have happened by now" wait is a coin toss. The code takes a clock wherever time matters
(``Scraper(clock=)``, ``Client(clock=)``, ``Deadline(clock=)``, ``Simulator(clock=)``); where a module
reads ``time.monotonic`` itself (the simulator's torrent world and its properties cache), a test swaps
that module's ``time`` for a :class:`ModuleTime` driven by the same fake clock.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any


class FakeClock:
    """A monotonic clock that only moves when told to; pass it wherever ``clock=`` is accepted."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ModuleTime:
    """Stands in for the ``time`` module inside one module: ``monotonic`` is the fake clock (``sleep``
    advances it), everything else is the real ``time``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def monotonic(self) -> float:
        return self.clock()

    def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def fake_module_time(monkeypatch: Any, clock: FakeClock, *modules: ModuleType) -> None:
    """Make ``modules`` read ``clock`` as their monotonic time for the rest of the test."""
    for module in modules:
        monkeypatch.setattr(module, "time", ModuleTime(clock))
