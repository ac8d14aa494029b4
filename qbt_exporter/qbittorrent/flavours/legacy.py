"""The legacy WebUI API of qBittorrent 3.2.0 - 4.0.4 (``/login``, ``/query/*``), API versions 2 - 17.

What differs between those versions (qbittorrent-api.md section 7) is handled by field names alone:
``label`` became ``category`` in 3.3.5 (API 10), ``remaining`` (3.3.11, API 12) became
``amount_left`` in 3.3.12, and every other later addition (dates, all-time totals, tags,
time_active) is just absent before its version and reads as ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

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

LAST_LABEL_API = 9  # 3.3.4; 3.3.5 (API 10) renamed label to category
REMAINING_API = 12  # 3.3.11 alone called amount_left "remaining"
LAST_NO_METADATA_EMPTY_API = 5  # 3.2.x: propertiesGeneral of a torrent without metadata is empty


class LegacyFlavour(Flavour):
    """qBittorrent 3.2.0 - 4.0.4; ``api_version`` is the integer /version/api gave at detection."""

    api = "legacy"
    login_path = "/login"
    logout_path = "/logout"

    def __init__(self, client: Client, stats: Stats, api_version: str) -> None:
        super().__init__(client, stats, api_version)
        number = int(api_version)
        self._torrents = TorrentReader(
            category_key="label" if number <= LAST_LABEL_API else "category",
            amount_left_key="remaining" if number == REMAINING_API else "amount_left",
        )
        self._empty_is_vanished = number > LAST_NO_METADATA_EMPTY_API

    def server_info(self, deadline: Deadline) -> ServerInfo:
        reply = self.client.get_public("/version/qbittorrent", endpoint="version", deadline=deadline)
        return ServerInfo(version_text(reply.status, reply.text, "version"), "legacy", self.api_version)

    def snapshot(self, deadline: Deadline) -> tuple[Transfer, list[Torrent]]:
        info = self.client.get_json(
            "/query/transferInfo",
            endpoint="transfer_info",
            deadline=deadline,
            check=shaped(dict, "object", "transfer_info"),
        )
        transfer, bad = parse_transfer(info)
        self.stats.invalid_value("transfer_info", bad)
        torrents, bad = self.client.get_json(
            "/query/torrents", endpoint="torrents", deadline=deadline, decode=self._torrents.read_array
        )
        self.stats.invalid_value("torrents", bad)
        return transfer, torrents

    def properties(self, torrent_hash: str, deadline: Deadline) -> TorrentProperties | None:
        """None for a vanished torrent: an empty 200 body, or ``{}`` when the same unknown hash is
        asked again within qBittorrent's 1.5 s cache. On 3.2.x an empty body also means "no metadata
        yet", so there it is an empty TorrentProperties: the torrent stays listed without them."""
        path = "/query/propertiesGeneral/" + quote(torrent_hash, safe="")
        obj = self.client.get_json(
            path,
            endpoint="torrent_properties",
            deadline=deadline,
            allow_empty=True,
            check=shaped(dict, "object", "torrent_properties"),
        )
        if obj is None or obj == {}:
            return None if self._empty_is_vanished else TorrentProperties()
        props, bad = parse_properties(obj)
        self.stats.invalid_value("torrent_properties", bad)
        return props

    def trackers(self, torrent_hash: str, deadline: Deadline) -> list[TrackerEntry] | None:
        """None for a vanished torrent (an empty 200 body). ``[]`` is a torrent without trackers,
        and also what qBittorrent's 1.5 s cache answers when the same unknown hash is asked twice:
        such a torrent is gone from the next list anyway, so it shows no tracker for one scrape."""
        path = "/query/propertiesTrackers/" + quote(torrent_hash, safe="")
        parsed = self.client.get_json(
            path, endpoint="torrent_trackers", deadline=deadline, allow_empty=True, check=parse_trackers
        )
        if parsed is None:
            return None
        entries, bad = parsed
        self.stats.invalid_value("torrent_trackers", bad)
        return entries
