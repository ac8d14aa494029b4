"""The API flavours and the one-request probe that picks between them.

``GET /version/api`` is public on every version that has it, so the probe needs no credentials and
tells the legacy API version in the same reply (qbittorrent-api.md section 2): 2 - 17 is a legacy
server, 18 - 24 is 4.1.x (whose legacy paths only imitate the old API with v2 replies, so v2 is
spoken), and 404 is 4.2 or later, where the endpoint no longer exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qbt_exporter.qbittorrent.errors import BadResponse, raise_for
from qbt_exporter.qbittorrent.flavours.base import Flavour
from qbt_exporter.qbittorrent.flavours.legacy import LegacyFlavour
from qbt_exporter.qbittorrent.flavours.v2 import V2Flavour
from qbt_exporter.qbittorrent.redact import quote_reply

if TYPE_CHECKING:
    from qbt_exporter.deadline import Deadline
    from qbt_exporter.qbittorrent.client import Client
    from qbt_exporter.stats import Stats

__all__ = ["Flavour", "LegacyFlavour", "V2Flavour", "detect"]

FIRST_LEGACY_API = 2  # 3.2.0; older WebUIs (HTTP Digest, /json/*) are out of scope
LAST_LEGACY_API = 17  # 4.0.1 - 4.0.4
LAST_COMPAT_API = 24  # 4.1.9.x, the last with /version/api
ENDPOINT = "version_api"


def detect(client: Client, stats: Stats, deadline: Deadline) -> Flavour:
    """The flavour this server speaks, with the client switched to its login/logout paths.

    A 401 is qBittorrent's CSRF/Host-header check: the client adapts its headers itself, so it is
    raised rather than guessed around. Any other status is an error (a proxy's 502 is no answer).
    """
    reply = client.get_public("/version/api", endpoint=ENDPOINT, deadline=deadline)
    flavour: Flavour
    if reply.status == 404:
        flavour = V2Flavour(client, stats, "")
    else:
        raise_for(reply.status, endpoint=ENDPOINT)
        text = reply.text.strip()
        number = int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else -1
        if FIRST_LEGACY_API <= number <= LAST_LEGACY_API:
            flavour = LegacyFlavour(client, stats, str(number))
        elif LAST_LEGACY_API < number <= LAST_COMPAT_API:
            flavour = V2Flavour(client, stats, "")
        else:
            raise BadResponse(f"/version/api: unsupported answer {quote_reply(text, 40)}", endpoint=ENDPOINT)
    client.set_dialect(flavour.login_path, flavour.logout_path)
    return flavour
