"""The simulated torrents and their evolution over a scaled clock: no HTTP, no JSON.

Why: the routes must be able to read a world that is coherent at one instant (the list, the
properties and the transfer totals of one tick agree), and tests must be able to change it (remove a
torrent, force a state) with the side effects the real server would show. Time advances in ticks of
one simulated second, caught up lazily whenever someone looks, so an idle simulator costs nothing;
only transferring torrents are touched per tick. One seed gives the same torrents on every run.

The caller serialises access (the simulator holds one lock around every request and test hook).
"""

from __future__ import annotations

import math
import random
import time

from qbt_exporter.simulator.config import SimulatorConfig
from qbt_exporter.simulator.generate import CATEGORIES, new_torrent, random_size
from qbt_exporter.simulator.states import (
    CHECKING,
    COMPLETE,
    DL_ACTIVE,
    PAUSED,
    STATES,
    TRANSIENT,
    TRANSITIONS,
    UP_ACTIVE,
)
from qbt_exporter.simulator.torrent import Torrent

__all__ = ["TICK", "World"]

TICK = 1.0  # simulated seconds per evolution step
SPEED_TAU = 60.0  # simulated seconds for a torrent's speed to forget a third of its distance to its mean
SPEED_NOISE = 0.35  # standard deviation of a speed around its mean, as a fraction of the mean
ALT_SPEED_LIMITS = (2_000_000, 500_000)  # download, upload (bytes/s) while the alternative limits hold
ALT_SPEED_FROM = 3000  # the alternative limits hold from this second of every simulated hour to its end
MAX_STEPS_PER_ADVANCE = 60  # after a long idle period, catch up in at most this many coarse steps


class World:
    """Every torrent of one simulated server, the session and all-time transfer totals, and the
    simulated clock (epoch seconds advancing at ``time_scale`` × wall time).

    ``version`` changes whenever anything a document could show changes, so renderings of the
    world can be cached against it."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.churn = config.churn
        self.time_scale = config.time_scale
        self.speed_bounds = (config.min_speed, config.max_speed)
        # 4.0.4's transferInfo shows neither: only the v2 server runs the schedule and fills the disk.
        self.alt_speed_schedule = config.api == "v2"
        self.disk_free = config.disk_free
        self._caps: tuple[float, float] | None = None
        self.rng = random.Random(config.seed)
        self.version = 0
        self.torrents: dict[str, Torrent] = {}
        self.active: set[str] = set()  # transferring: the only ones the evolution step touches
        self.categories: set[str] = {c for c in CATEGORIES if c}
        self.session_dl = 0
        self.session_ul = 0
        self.session_wasted = 0
        self.alltime_dl = self.rng.randrange(10**12, 10**14)
        self.alltime_ul = self.rng.randrange(10**12, 10**14)
        self.dht_nodes = self.rng.randrange(150, 450)
        self._mono0 = time.monotonic()
        self._epoch0 = float(int(time.time()))
        self.tick = 0
        self._transient: set[str] = set()
        self._counter = 0
        self._priorities: dict[str, int] | None = None
        self._torrent_list: list[Torrent] | None = None
        for _ in range(config.torrents):
            self._create(self._now(), initial=True)

    # --- what tests and routes may do -----------------------------------------------------------
    def tick_time(self) -> float:
        """The simulated epoch time of the current tick: the "now" of every document."""
        return self._epoch0 + self.tick * TICK

    def advance(self) -> None:
        """Bring the torrents up to the current simulated tick."""
        target = int((self._now() - self._epoch0) // TICK)
        pending = target - self.tick
        if pending <= 0:
            return
        steps = min(pending, MAX_STEPS_PER_ADVANCE)
        start = self.tick
        for step in range(1, steps + 1):
            tick = start + (pending * step) // steps
            dt = (tick - self.tick) * TICK
            self.tick = tick
            self._step(dt, self.tick_time())
        self.version += 1

    def force_state(self, torrent_hash: str, state: str) -> None:
        """Put a torrent into ``state`` now, with the side effects the real state implies."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        self.set_state(self.torrents[torrent_hash], state, self.tick_time())

    def add(self, n: int) -> list[str]:
        """Add ``n`` new torrents (downloading or fetching metadata); returns their hashes."""
        return [self._create(self.tick_time(), initial=False).hash for _ in range(n)]

    def alt_speed(self) -> bool:
        """Whether the alternative speed limits hold now: the last 10 minutes of each simulated hour,
        so a demo of an hour shows them switch on and off."""
        return self.alt_speed_schedule and self.tick_time() % 3600 >= ALT_SPEED_FROM

    def disk_and_limits(self) -> dict[str, int | bool]:
        """The ``server_state`` keys of 4.1.4+ that 4.0.4 lacks, and the global limits in force."""
        alt = self.alt_speed()
        down, up = ALT_SPEED_LIMITS if alt else (0, 0)
        return {
            "free_space_on_disk": max(0, self.disk_free),
            "use_alt_speed_limits": alt,
            "dl_rate_limit": down,
            "up_rate_limit": up,
        }

    def remove(self, torrent_hash: str) -> None:
        # Removed as qBittorrent removes by default: the files stay, so the disk keeps its space (and
        # free space never grows past its start, which torrents of the initial library never took).
        self.torrents.pop(torrent_hash)
        self.active.discard(torrent_hash)
        self._transient.discard(torrent_hash)
        self._torrent_list = None
        self._priorities = None
        self.version += 1

    def priority_map(self) -> dict[str, int]:
        """Queue positions: 1-based among incomplete torrents in order of addition, 0 for seeds."""
        if self._priorities is None:
            positions: dict[str, int] = {}
            for t in self.torrents.values():
                if not t.is_complete:
                    positions[t.hash] = len(positions) + 1
            self._priorities = positions
        return self._priorities

    def set_state(self, t: Torrent, state: str, now: float) -> None:
        """Apply a state and keep every dependent field coherent (speeds, clocks, completion)."""
        was_complete = t.is_complete
        if state in COMPLETE and not was_complete:
            if not t.has_metadata:
                self._give_metadata(t)
            t.completed = t.size
            t.completion_on = int(now)
        if state == "metaDL" and t.completed == 0:
            t.has_metadata = False
            t.size = 0
            t.total_size = -1
        elif state != "metaDL" and not t.has_metadata:
            self._give_metadata(t)
        # fold the running clocks, then restart them if the new state runs
        if t.running_since is not None:
            t.time_active_base += max(0.0, now - t.running_since)
            t.running_since = None
        if t.seeding_since is not None:
            t.seeding_base += max(0.0, now - t.seeding_since)
            t.seeding_since = None
        t.state = state
        t.force_start = state in ("forcedUP", "forcedDL")
        if state not in PAUSED:
            t.running_since = now
            if t.is_complete:
                t.seeding_since = now
        rng = self.rng
        if state in DL_ACTIVE or state in UP_ACTIVE:
            self.active.add(t.hash)
            if state in DL_ACTIVE:
                t.dlspeed = t.dl_mean = self._bounded(rng.randrange(50_000, 5_000_000))
            t.ul_mean = self._bounded(rng.randrange(10_000, 2_000_000))
            t.upspeed = t.ul_mean if state in UP_ACTIVE else 0
            t.num_seeds = rng.randrange(1, 30) if state in DL_ACTIVE else rng.randrange(0, 3)
            t.num_leechs = rng.randrange(1, 20)
        else:
            self.active.discard(t.hash)
            t.dlspeed = t.upspeed = 0
            running = state not in PAUSED and state not in CHECKING
            t.num_seeds = rng.randrange(0, 3) if running and state == "stalledDL" else 0
            t.num_leechs = 0
        if state in TRANSIENT:
            self._transient.add(t.hash)
            t.transient_until = now + rng.uniform(3, 30)
        else:
            self._transient.discard(t.hash)
        if t.is_complete != was_complete:
            self._priorities = None
        self.version += 1

    # --- evolution ------------------------------------------------------------------------------
    def _now(self) -> float:
        return self._epoch0 + (time.monotonic() - self._mono0) * self.time_scale

    def _step(self, dt: float, now: float) -> None:
        rng = self.rng
        self._caps = None
        if self.alt_speed() and self.active:
            # the global limits shared by the transferring torrents, as libtorrent's rate limiter does
            self._caps = (ALT_SPEED_LIMITS[0] / len(self.active), ALT_SPEED_LIMITS[1] / len(self.active))
        for h in list(self.active):
            self._transfer(self.torrents[h], dt, now)
        for h in list(self._transient):
            t = self.torrents[h]
            if now >= t.transient_until:
                self.set_state(t, "stalledUP" if t.is_complete else "stalledDL", now)
        # random state changes: about one per torrent per 30 simulated minutes
        if self.torrents:
            for _ in range(self._poisson(len(self.torrents) * dt / 1800.0)):
                t = rng.choice(self._ordered())
                choices = TRANSITIONS.get(t.state)
                if choices:
                    nxt = rng.choices(list(choices), weights=list(choices.values()))[0]
                    self.set_state(t, nxt, now)
        if self.churn:
            for _ in range(self._poisson(dt * 2 / 60.0)):
                self._create(now, initial=False)
            for _ in range(self._poisson(dt * 2 / 60.0)):
                if self.torrents:
                    self.remove(rng.choice(self._ordered()).hash)
        if self.alt_speed() and self.active:
            # torrents that started in this step were given fresh speeds: hold them to the limits too
            down, up = (int(limit / len(self.active)) for limit in ALT_SPEED_LIMITS)
            for h in self.active:
                t = self.torrents[h]
                t.dlspeed, t.upspeed = min(t.dlspeed, down), min(t.upspeed, up)

    def _transfer(self, t: Torrent, dt: float, now: float) -> None:
        """``dt`` seconds of one transferring torrent: speeds wander, totals grow, a finished
        download becomes a seed."""
        rng = self.rng
        if t.state in DL_ACTIVE:
            t.dlspeed = self._revert(t.dlspeed, t.dl_mean, dt)
            t.upspeed = self._bounded(t.dlspeed * rng.uniform(0.0, 0.3), low=0)
            if self._caps is not None:
                t.dlspeed = min(t.dlspeed, int(self._caps[0]))
            got = min(int(t.dlspeed * dt), t.size - t.completed)
            self.disk_free -= got
            t.completed += got
            t.downloaded += got
            t.downloaded_session += got
            self.session_dl += got
            self.alltime_dl += got
            if rng.random() < 0.02:
                lost = rng.randrange(16384, 262144)
                t.wasted += lost
                self.session_wasted += lost
        else:
            t.dlspeed = 0
            t.upspeed = self._revert(t.upspeed, t.ul_mean, dt)
        if self._caps is not None:
            t.dlspeed = min(t.dlspeed, int(self._caps[0]))
            t.upspeed = min(t.upspeed, int(self._caps[1]))
        sent = int(t.upspeed * dt)
        t.uploaded += sent
        t.uploaded_session += sent
        self.session_ul += sent
        self.alltime_ul += sent
        t.last_transfer = now
        if now >= t.reannounce_at:
            t.reannounce_at = now + 1800
        if t.state in DL_ACTIVE and t.completed >= t.size:
            self.set_state(t, "uploading" if rng.random() < 0.3 else "stalledUP", now)

    def _revert(self, speed: int, mean: int, dt: float) -> int:
        """The speed ``dt`` seconds later: it wanders around the torrent's own mean and is pulled
        back towards it (an Ornstein-Uhlenbeck step, exact for any ``dt``), within the configured
        bounds. A multiplicative walk, as before, grows without bound: 24 MB/s became 201 GB/s in
        9.5 minutes and made every speed panel of the demo look broken."""
        pull = math.exp(-dt / SPEED_TAU)
        spread = mean * SPEED_NOISE * math.sqrt(1.0 - pull * pull)
        return self._bounded(mean + pull * (speed - mean) + spread * self.rng.gauss(0.0, 1.0))

    def _bounded(self, speed: float, low: int | None = None) -> int:
        lowest = self.speed_bounds[0] if low is None else low
        return int(min(self.speed_bounds[1], max(lowest, speed)))

    def _poisson(self, expected: float) -> int:
        count = int(expected)
        if self.rng.random() < expected - count:
            count += 1
        return count

    def _ordered(self) -> list[Torrent]:
        if self._torrent_list is None:
            self._torrent_list = list(self.torrents.values())
        return self._torrent_list

    def _give_metadata(self, t: Torrent) -> None:
        t.has_metadata = True
        t.total_size = random_size(self.rng)
        t.size = t.total_size
        self._priorities = None

    def _create(self, now: float, initial: bool) -> Torrent:
        self._counter += 1
        t, state = new_torrent(self.rng, self._counter, now, self.torrents, initial)
        self.torrents[t.hash] = t
        self._torrent_list = None
        self._priorities = None
        self.set_state(t, state, now)
        return t
