"""What every API flavour offers the scraper.

A flavour knows one WebUI dialect: its paths, its wire field names and their sentinels, and turns
the replies into ``qbt_exporter.qbittorrent.model`` objects. It gets its HTTP through ``Client`` and never
touches prometheus_client. Nothing outside ``qbt_exporter.qbittorrent.flavours`` knows a wire field name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from qbt_exporter.qbittorrent.model import (
    ApiKind,
    ServerInfo,
    Torrent,
    TorrentProperties,
    TrackerEntry,
    Transfer,
)

if TYPE_CHECKING:
    from qbt_exporter.deadline import Deadline
    from qbt_exporter.qbittorrent.client import Client
    from qbt_exporter.stats import Stats


class Flavour(ABC):
    """One qBittorrent WebUI API dialect, bound to one client."""

    api: ApiKind
    login_path: str
    logout_path: str

    def __init__(self, client: Client, stats: Stats, api_version: str) -> None:
        self.client = client
        self.stats = stats
        self.api_version = api_version

    @abstractmethod
    def server_info(self, deadline: Deadline) -> ServerInfo:
        """Version and API, read once after detection (re-read after re-detection)."""

    @abstractmethod
    def snapshot(self, deadline: Deadline) -> tuple[Transfer, list[Torrent]]:
        """The global transfer state and the torrent list. Raises QbtError when either fails."""

    @abstractmethod
    def properties(self, torrent_hash: str, deadline: Deadline) -> TorrentProperties | None:
        """The property-only values of one torrent; ``None`` when the torrent has vanished."""

    @abstractmethod
    def trackers(self, torrent_hash: str, deadline: Deadline) -> list[TrackerEntry] | None:
        """One torrent's real trackers (host, status, message); ``None`` when the torrent has vanished."""
