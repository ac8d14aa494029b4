"""The ``/api/v2`` WebUI API of qBittorrent 4.1.0 - 5.x.

One ``sync/maindata?rid=0`` call gives both halves of a snapshot: ``server_state`` has every
transfer key plus what ``transfer/info`` lacks (all-time totals, peer connections, free disk
space, alternative speed mode), and ``torrents`` has every ``torrents/info`` field keyed by hash.
Asking for rid 0 every time makes each reply a full update, so no diff state is kept here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qbt_exporter.qbittorrent.client import V2_LOGIN, V2_LOGOUT
from qbt_exporter.qbittorrent.errors import NotFound
from qbt_exporter.qbittorrent.flavours.base import Flavour
from qbt_exporter.qbittorrent.flavours.common import (
    expect,
    parse_properties,
    parse_torrents,
    parse_transfer,
    shaped,
    version_text,
)
from qbt_exporter.qbittorrent.model import ServerInfo, Torrent, TorrentProperties, Transfer

if TYPE_CHECKING:
    from qbt_exporter.deadline import Deadline


class V2Flavour(Flavour):
    """qBittorrent 4.1+; ``api_version`` is webapiVersion once ``server_info`` has read it."""

    api = "v2"
    login_path = V2_LOGIN  # the client's default dialect: defined once, there
    logout_path = V2_LOGOUT

    def server_info(self, deadline: Deadline) -> ServerInfo:
        app = self.client.get("/api/v2/app/version", endpoint="version", deadline=deadline)
        version = version_text(app.status, app.text, "version")
        web = self.client.get("/api/v2/app/webapiVersion", endpoint="webapi_version", deadline=deadline)
        self.api_version = version_text(web.status, web.text, "webapi_version")
        return ServerInfo(version, "v2", self.api_version)

    def snapshot(self, deadline: Deadline) -> tuple[Transfer, list[Torrent]]:
        server_state, items = self.client.get_json(
            "/api/v2/sync/maindata",
            endpoint="maindata",
            deadline=deadline,
            params={"rid": 0},
            check=_maindata_parts,
        )
        transfer, bad_transfer = parse_transfer(server_state)
        torrents, bad_torrents = parse_torrents(items.items())
        self.stats.invalid_value("maindata", bad_transfer + bad_torrents)
        return transfer, torrents

    def properties(self, torrent_hash: str, deadline: Deadline) -> TorrentProperties | None:
        """None when qBittorrent answers 404: the torrent was removed since the list was read."""
        try:
            obj = self.client.get_json(
                "/api/v2/torrents/properties",
                endpoint="torrent_properties",
                deadline=deadline,
                params={"hash": torrent_hash},
                check=shaped(dict, "object", "torrent_properties"),
            )
        except NotFound:
            return None
        props, bad = parse_properties(obj)
        self.stats.invalid_value("torrent_properties", bad)
        return props


def _maindata_parts(data: object) -> tuple[dict[str, Any], dict[str, Any]]:
    """The full update's ``server_state`` and ``torrents`` objects, or BadResponse."""
    data = expect(data, dict, "object", "maindata")
    server_state = expect(data.get("server_state"), dict, "object", "maindata")
    # 4.6+ leaves out an empty "torrents" on a full update.
    return server_state, expect(data.get("torrents", {}), dict, "object", "maindata")
