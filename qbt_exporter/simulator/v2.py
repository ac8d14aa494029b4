"""The ``/api/v2`` WebUI of a qBittorrent 4.6 over the same torrent world (``SimulatorConfig(api="v2")``).

Why: the legacy 4.0.4 has no free disk space and no alternative speed limits, so ``--demo`` against
it leaves those panels and the disk alerts empty, and the v2 flavour could only be benchmarked
against real servers. This layer answers the calls the v2 flavour makes, in the order a 4.2+ server
applies its checks (qbittorrent-api.md): the legacy paths are gone (``/version/api`` answers 404,
which is how the exporter tells 4.2+), ``auth/login`` and ``auth/logout`` behave as ``/login`` and
``/logout`` did, every other ``/api/v2`` path needs a session (403 without), and
``torrents/properties`` and ``torrents/trackers`` of an unknown hash answer 404. The documents are
the 4.0.4 ones the world already builds (``sync/maindata`` is the same shape in both APIs), with the
two ``server_state`` keys 4.1.4+ added, and the trackers in 4.6's form. Only what the exporter calls is here.
"""

from __future__ import annotations

import dataclasses

from qbt_exporter.simulator.documents import properties, qt_json, trackers_v2
from qbt_exporter.simulator.extra_routes import maindata
from qbt_exporter.simulator.server import CT_JSON, CT_TEXT, Request, Response
from qbt_exporter.simulator.webui import BAN_TEXT, DEFAULT_LATENCY, PROPERTIES_LATENCY, Call, WebUI, reply

__all__ = ["APP_VERSION", "WEBAPI_VERSION", "V2WebUI"]

PREFIX = "/api/v2/"
APP_VERSION = "v4.6.7"
WEBAPI_VERSION = "2.9.3"


class V2WebUI(WebUI):
    """The v2 routes; sessions, bans, the CSRF and Host checks and compression are the base's."""

    def respond(self, req: Request) -> tuple[Response, float]:
        if not req.path.startswith(PREFIX):
            return reply(404), DEFAULT_LATENCY  # 4.2+: the legacy API, /version/api included, is gone
        action = req.path[len(PREFIX) :]
        if action in ("auth/login", "auth/logout"):
            return super().respond(dataclasses.replace(req, path="/" + action.split("/")[1]))
        if self._cross_site(req) or not self._host_ok(req):
            return reply(401), DEFAULT_LATENCY
        session = self.auth.session(req.headers.get("cookie", ""))
        if self.auth.banned(req.client_ip):
            return reply(403, BAN_TEXT, CT_TEXT), DEFAULT_LATENCY
        if session is None:
            return reply(403), DEFAULT_LATENCY
        now = self.world.tick_time()
        if action == "app/version":
            return reply(200, APP_VERSION.encode(), CT_TEXT), DEFAULT_LATENCY
        if action == "app/webapiVersion":
            return reply(200, WEBAPI_VERSION.encode(), CT_TEXT), DEFAULT_LATENCY
        if action == "sync/maindata":
            data = maindata(Call(self.world, self.config, req, session, now))
            state = data.get("server_state")
            if state is not None:
                state.update(self.world.disk_and_limits())
            return reply(200, qt_json(data), CT_JSON), 0.0002 * len(self.world.torrents)
        if action == "torrents/properties":
            torrent = self.world.torrents.get(req.query.get("hash", "").lower())
            if torrent is None:
                return reply(404), DEFAULT_LATENCY
            return reply(200, qt_json(properties(torrent, now)), CT_JSON), PROPERTIES_LATENCY
        if action == "torrents/trackers":
            torrent = self.world.torrents.get(req.query.get("hash", "").lower())
            if torrent is None:
                return reply(404), DEFAULT_LATENCY
            return reply(200, qt_json(trackers_v2(torrent, now)), CT_JSON), PROPERTIES_LATENCY
        return reply(404), DEFAULT_LATENCY
