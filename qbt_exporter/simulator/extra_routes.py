"""Routes of 4.0.4 the exporter never calls, kept only because tests compare them with recordings.

Why they exist at all: ``/sync/maindata`` (full and incremental by ``rid``) and ``/query/preferences``
were recorded from a real 4.0.4, and tests of the simulator hold their shape to those recordings.
Nothing in the exporter or the benchmarks asks for them on the legacy server; ``maindata`` also
serves the v2 mode's ``sync/maindata`` (``v2.py``), where it is the list. They are plugged into the
WebUI by the simulator; drop this module and its tests together if the recordings stop mattering.
Other 4.0.4 routes nothing used (propertiesFiles, propertiesWebSeeds, the /command actions, the HTML
pages, filters and paging of /query/torrents) were removed. ``/query/propertiesTrackers`` moved to
the WebUI's own routes when the exporter began to call it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from qbt_exporter.simulator.documents import Raw, list_item, qt_json, transfer_info
from qbt_exporter.simulator.webui import Call, Routes

__all__ = ["ROUTES"]


@dataclass
class _Sync:
    """What one session was last sent by maindata, to answer the next ``rid`` with a diff."""

    rid: int = 0
    torrents: dict[str, bytes] | None = None
    state: dict[str, Any] | None = None
    categories: list[str] | None = None


def maindata(call: Call) -> dict[str, Any]:
    """Full update unless ``rid`` is this session's last one; then only what changed."""
    sync: _Sync = call.session.routes.setdefault("maindata", _Sync())
    try:
        asked = int(call.request.query.get("rid", "0"))
    except ValueError:
        asked = 0
    world = call.world
    state = transfer_info(world)
    state.update({"queueing": True, "refresh_interval": 1500, "use_alt_speed_limits": False})
    priorities = world.priority_map()
    torrents = {
        t.hash: qt_json(list_item(t, call.now, priorities.get(t.hash, 0), with_hash=False))
        for t in world.torrents.values()
    }
    categories = sorted(world.categories)
    full = asked == 0 or asked != sync.rid or sync.torrents is None
    sync.rid = sync.rid % 1_000_000 + 1
    data: dict[str, Any] = {"rid": sync.rid}
    if full:
        data.update(
            full_update=True,
            categories=categories,
            server_state=state,
            torrents={h: Raw(body) for h, body in torrents.items()},
        )
    else:
        old = sync.torrents or {}
        changed: dict[str, Any] = {}
        for h, body in torrents.items():
            if h not in old:
                changed[h] = Raw(body)
            elif old[h] != body:
                before, after = json.loads(old[h]), json.loads(body)
                changed[h] = {k: v for k, v in after.items() if before.get(k) != v}
        if changed:
            data["torrents"] = changed
        removed = [h for h in old if h not in torrents]
        if removed:
            data["torrents_removed"] = removed
        old_state = sync.state or {}
        diff = {k: v for k, v in state.items() if old_state.get(k) != v}
        if diff:
            data["server_state"] = diff
        old_categories = sync.categories or []
        added = [c for c in categories if c not in old_categories]
        gone = [c for c in old_categories if c not in categories]
        if added:
            data["categories"] = added
        if gone:
            data["categories_removed"] = gone
    sync.torrents, sync.state, sync.categories = torrents, state, categories
    return data


def preferences(call: Call) -> dict[str, Any]:
    """A subset of 4.0.4's preferences with this server's port and credentials."""
    prefs = dict(_PREFERENCES)
    prefs["web_ui_port"] = call.request.local_port
    prefs["web_ui_username"] = call.config.username
    prefs["web_ui_password"] = hashlib.md5(call.config.password.encode()).hexdigest()
    return prefs


_PREFERENCES: dict[str, Any] = json.loads(
    '{"add_trackers":"","add_trackers_enabled":false,"alt_dl_limit":10240,"alt_up_limit":10240,'
    '"anonymous_mode":false,"autorun_enabled":false,"autorun_program":"","banned_IPs":"",'
    '"bittorrent_protocol":0,"bypass_auth_subnet_whitelist":"","bypass_auth_subnet_whitelist_enabled":false,'
    '"bypass_local_auth":false,"dht":true,"dl_limit":0,"dont_count_slow_torrents":false,'
    '"encryption":0,"export_dir":"","export_dir_fin":"","incomplete_files_ext":false,'
    '"ip_filter_enabled":false,"limit_tcp_overhead":false,"limit_utp_rate":true,"listen_port":8999,'
    '"locale":"en","lsd":true,"max_active_downloads":3,"max_active_torrents":5,"max_active_uploads":3,'
    '"max_connec":500,"max_connec_per_torrent":100,"max_ratio":-1,"max_ratio_act":0,'
    '"max_ratio_enabled":false,"max_seeding_time":-1,"max_seeding_time_enabled":false,"max_uploads":-1,'
    '"max_uploads_per_torrent":-1,"pex":true,"preallocate_all":false,"queueing_enabled":true,'
    '"random_port":false,"save_path":"/downloads/","scan_dirs":{},"temp_path":"/downloads/temp/",'
    '"temp_path_enabled":false,"up_limit":0,"upnp":false,"use_https":false,"web_ui_address":"127.0.0.1",'
    '"web_ui_domain_list":"*","web_ui_password":"","web_ui_port":8080,"web_ui_upnp":false,'
    '"web_ui_username":"admin"}'
)

ROUTES = Routes(
    documents={"sync/maindata": maindata, "query/preferences": preferences},
)
