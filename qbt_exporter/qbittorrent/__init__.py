"""Everything that speaks to qBittorrent, in one place.

The rest of the exporter sees only ``Client`` (HTTP, login, back-off), the flavours (which API a
qBittorrent speaks, and how its replies become ``model`` objects), the ``model`` dataclasses and the
``errors`` they raise. Wire field names, state spellings and status codes live only inside this
package, so a newcomer reading the collectors never meets qBittorrent's JSON.
"""
