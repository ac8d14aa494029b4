"""How the simulated server looks and behaves, in one place every piece of the simulator reads.

Why a module of its own: the torrent world (count, seed, churn, clock speed), the WebUI (credentials,
session and ban lifetimes) and the request loop (latency) each read a part of it, and none of them
should import the others to get at it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SimulatorConfig:
    """How the simulated server looks and behaves; the defaults are the real 4.0.4's."""

    torrents: int = 50
    username: str = "admin"
    password: str = "adminadmin"
    seed: int = 0
    #: per-request latencies of the real server's order: /query/torrents ≈ 0.2 ms per torrent,
    #: propertiesGeneral ≈ 1.4 ms, others ≈ 1 ms. False = as fast as possible (unit tests).
    latency: bool = True
    #: torrents added and removed over time (a few per minute at time_scale 1).
    churn: bool = True
    #: bounds of every torrent's download and upload speed (bytes/s); each wanders around its own
    #: mean within them, so the global speeds stay those of a real home server.
    min_speed: int = 1024
    max_speed: int = 8_000_000
    #: "legacy": the 4.0.4 WebUI (API 17); "v2": the /api/v2 WebUI of a 4.6.7 over the same
    #: torrents, with free disk space and an alternative speed limits schedule (simulator/v2.py).
    api: str = "legacy"
    #: free space on the downloads' disk at the start (v2 only; downloads fill it)
    disk_free: int = 400 * 2**30
    #: speed of the simulated clock; 0 freezes the torrents (exact comparisons in tests).
    time_scale: float = 1.0
    #: idle session lifetime (INACTIVE_TIME of 3.3.12–4.0.4); tests shorten it.
    session_timeout: float = 900.0
    #: how long an IP stays banned after its fifth failed login (BAN_TIME).
    ban_duration: float = 3600.0
