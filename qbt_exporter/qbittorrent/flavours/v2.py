"""The ``/api/v2`` WebUI API of qBittorrent 4.1.0 - 5.x.

One ``sync/maindata?rid=0`` call gives both halves of a snapshot: ``server_state`` has every
transfer key plus what ``transfer/info`` lacks (all-time totals, peer connections, free disk
space, alternative speed mode), and ``torrents`` has every ``torrents/info`` field keyed by hash.
Asking for rid 0 every time makes each reply a full update, so no diff state is kept here (the
torrents are read as the reply is decoded: ``torrentlist``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qbt_exporter.qbittorrent.client import V2_LOGIN, V2_LOGOUT
from qbt_exporter.qbittorrent.errors import NotFound
from qbt_exporter.qbittorrent.flavours.base import Flavour
from qbt_exporter.qbittorrent.flavours.common import (
    parse_properties,
    parse_trackers,
    parse_transfer,
    shaped,
    version_text,
)
from qbt_exporter.qbittorrent.flavours.torrentlist import TorrentReader
from qbt_exporter.qbittorrent.model import ServerInfo, Torrent, TorrentProperties, TrackerEntry, Transfer

if TYPE_CHECKING:
    from qbt_exporter.deadline import Deadline
    from qbt_exporter.qbittorrent.client import Client
    from qbt_exporter.stats import Stats


class V2Flavour(Flavour):
    """qBittorrent 4.1+; ``api_version`` is webapiVersion once ``server_info`` has read it."""

    api = "v2"
    login_path = V2_LOGIN  # the client's default dialect: defined once, there
    logout_path = V2_LOGOUT

    def __init__(self, client: Client, stats: Stats, api_version: str) -> None:
        super().__init__(client, stats, api_version)
        self._torrents = TorrentReader()

    def server_info(self, deadline: Deadline) -> ServerInfo:
        app = self.client.get("/api/v2/app/version", endpoint="version", deadline=deadline)
        version = version_text(app.status, app.text, "version")
        web = self.client.get("/api/v2/app/webapiVersion", endpoint="webapi_version", deadline=deadline)
        self.api_version = version_text(web.status, web.text, "webapi_version")
        return ServerInfo(version, "v2", self.api_version)

    def snapshot(self, deadline: Deadline) -> tuple[Transfer, list[Torrent]]:
        server_state, torrents, bad_torrents = self.client.get_json(
            "/api/v2/sync/maindata",
            endpoint="maindata",
            deadline=deadline,
            params={"rid": 0},
            decode=self._torrents.read_maindata,
        )
        transfer, bad_transfer = parse_transfer(server_state)
        self.stats.invalid_value("maindata", bad_transfer + bad_torrents)
        return transfer, torrents

    def _per_torrent(
        self, path: str, endpoint: str, torrent_hash: str, deadline: Deadline, check: Callable[[Any], Any]
    ) -> Any:
        """A per-torrent call's reply as ``check`` reads it; None when qBittorrent answers 404: the
        torrent was removed since the list was read."""
        try:
            params = {"hash": torrent_hash}
            return self.client.get_json(
                path, endpoint=endpoint, deadline=deadline, params=params, check=check
            )
        except NotFound:
            return None

    def properties(self, torrent_hash: str, deadline: Deadline) -> TorrentProperties | None:
        check = shaped(dict, "object", "torrent_properties")
        obj = self._per_torrent(
            "/api/v2/torrents/properties", "torrent_properties", torrent_hash, deadline, check
        )
        if obj is None:
            return None
        props, bad = parse_properties(obj)
        self.stats.invalid_value("torrent_properties", bad)
        return props

    def trackers(self, torrent_hash: str, deadline: Deadline) -> list[TrackerEntry] | None:
        parsed = self._per_torrent(
            "/api/v2/torrents/trackers", "torrent_trackers", torrent_hash, deadline, parse_trackers
        )
        if parsed is None:
            return None
        entries, bad = parsed
        self.stats.invalid_value("torrent_trackers", bad)
        return entries
