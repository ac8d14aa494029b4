"""The metric catalogue: every metric this exporter can emit, written once.

The collectors (``collectors/``) build their families from this table, the README's metric table
is generated from it (``python -m qbt_exporter.metrics``), and the dashboard and alert tests check
every metric name they use against it. To add a metric: add a row here, add the model field it
reads, fill that field in the flavours, declare it in its collector, run the README generator.

Rows with a ``read`` function are plain value metrics: the collector applies ``read`` to the
``Transfer`` (scope "server") or each ``Torrent`` (scope "torrent") and skips the series when it
returns ``None``; for scope "group" it sums ``read`` over the torrents of each category, tag or
tracker host (the row's one label), skipping ``None``. Rows without ``read`` need several labels
or exporter state and are built by name in the collector that declares them
(``collectors/registry.py`` maps every row to its collector).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["gauge", "counter"]
Scope = Literal["server", "torrent", "group", "exporter"]

PREFIX = "qbittorrent_"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str  # full name; counters end in _total
    kind: Kind
    help: str
    scope: Scope
    labels: tuple[str, ...] = ()
    read: Callable[[Any], float | None] | None = None


def _bool(value: bool | None) -> float | None:
    return None if value is None else float(value)


def _attr(name: str) -> Callable[[Any], float | None]:
    return operator.attrgetter(name)


def _server(name: str, kind: Kind, help: str, field: str) -> MetricSpec:
    return MetricSpec(PREFIX + name, kind, help, "server", read=_attr(field))


def _torrent(name: str, kind: Kind, help: str, field: str) -> MetricSpec:
    return MetricSpec(PREFIX + "torrent_" + name, kind, help, "torrent", ("hash",), _attr(field))


# The group totals: the same sums by category, by tag and by tracker host (collectors/groups.py).
GROUP_DIMENSIONS: dict[str, str] = {
    "category": 'category="" is no category',
    "tag": 'a torrent counts once under each of its tags, so tags overlap; tag="" is untagged, and is '
    "every torrent on qBittorrent before 4.0.4, which has no tags",
    "tracker": 'tracker="" is no working tracker (only the host is exported, never the tracker URL)',
}
_NOT_A_COUNTER = (
    " A gauge, not a counter: it drops when a torrent is removed or leaves the group, which rate() "
    "and increase() would read as a reset."
)
# (name, what is summed, model field, a note of its own)
_GROUP_SUMS: tuple[tuple[str, str, str, str], ...] = (
    ("size_bytes", "Bytes selected for download", "size", ""),
    ("amount_left_bytes", "Bytes still to download", "amount_left", ""),
    ("download_speed_bytes_per_second", "Download rate (payload)", "download_speed", ""),
    ("upload_speed_bytes_per_second", "Upload rate (payload)", "upload_speed", ""),
    (
        "downloaded_bytes",
        "All-time bytes downloaded (from the list: qBittorrent 3.3.11 and later)",
        "downloaded",
        _NOT_A_COUNTER,
    ),
    (
        "uploaded_bytes",
        "All-time bytes uploaded (from the list: qBittorrent 3.3.11 and later)",
        "uploaded",
        _NOT_A_COUNTER,
    ),
)


def _group_rows() -> tuple[MetricSpec, ...]:
    rows: list[MetricSpec] = []
    for dimension, note in GROUP_DIMENSIONS.items():
        whole = "from the whole list whatever the filters"
        if dimension != "category":  # by category: qbittorrent_torrents, kept from the first version
            rows.append(
                MetricSpec(
                    f"{PREFIX}{dimension}_torrents",
                    "gauge",
                    f"Torrents by {dimension} and state, {whole}; every known state is present, 0 "
                    f"included, for each {dimension} in use; {note}.",
                    "group",
                    ("state", dimension),
                )
            )
        for name, what, field, extra in _GROUP_SUMS:
            rows.append(
                MetricSpec(
                    f"{PREFIX}{dimension}_{name}",
                    "gauge",
                    f"{what}, summed over the torrents of each {dimension}, {whole}; {note}.{extra}",
                    "group",
                    (dimension,),
                    _attr(field),
                )
            )
    return tuple(rows)


CATALOGUE: tuple[MetricSpec, ...] = (
    # --- qBittorrent as a whole -------------------------------------------------------------
    MetricSpec(
        "qbittorrent_up",
        "gauge",
        "1 when qBittorrent answered the login, transfer and torrent list calls of this scrape, else 0.",
        "server",
    ),
    MetricSpec(
        "qbittorrent_version_info",
        "gauge",
        "Always 1; the qBittorrent version and WebUI API flavour and version in labels.",
        "server",
        ("version", "api", "api_version"),
    ),
    MetricSpec(
        "qbittorrent_connection_status",
        "gauge",
        "1 for the current connection status (connected, firewalled, disconnected), 0 for the others.",
        "server",
        ("status",),
    ),
    _server("dht_nodes", "gauge", "DHT nodes connected.", "dht_nodes"),
    _server("download_speed_bytes_per_second", "gauge", "Global download rate (payload).", "download_speed"),
    _server("upload_speed_bytes_per_second", "gauge", "Global upload rate (payload).", "upload_speed"),
    _server(
        "download_limit_bytes_per_second",
        "gauge",
        "Global download rate limit in force; 0 means no limit.",
        "download_limit",
    ),
    _server(
        "upload_limit_bytes_per_second",
        "gauge",
        "Global upload rate limit in force; 0 means no limit.",
        "upload_limit",
    ),
    _server(
        "session_downloaded_bytes_total",
        "counter",
        "Payload downloaded since qBittorrent started.",
        "session_downloaded",
    ),
    _server(
        "session_uploaded_bytes_total",
        "counter",
        "Payload uploaded since qBittorrent started.",
        "session_uploaded",
    ),
    _server(
        "alltime_downloaded_bytes_total",
        "counter",
        "Bytes downloaded over qBittorrent's lifetime (qBittorrent 3.3.12 and later).",
        "alltime_downloaded",
    ),
    _server(
        "alltime_uploaded_bytes_total",
        "counter",
        "Bytes uploaded over qBittorrent's lifetime (qBittorrent 3.3.12 and later).",
        "alltime_uploaded",
    ),
    _server(
        "peer_connections",
        "gauge",
        "Peer connections open (qBittorrent 3.3.12 and later).",
        "peer_connections",
    ),
    _server(
        "free_disk_space_bytes",
        "gauge",
        "Free space on the default save path's disk (qBittorrent 4.1.4 and later).",
        "free_disk_space",
    ),
    MetricSpec(
        "qbittorrent_alt_speed_limits_enabled",
        "gauge",
        "1 while the alternative speed limits are in force (v2 API only).",
        "server",
        read=lambda transfer: _bool(transfer.alt_speed_limits),
    ),
    MetricSpec(
        "qbittorrent_torrents",
        "gauge",
        "Torrents by state and category; every known state is present, 0 included, for each category "
        'in use; category="" is no category.',
        "server",
        ("state", "category"),
    ),
    # --- totals by category, tag and tracker host -------------------------------------------
    *_group_rows(),
    # --- one series per torrent, keyed by hash ----------------------------------------------
    MetricSpec(
        "qbittorrent_torrent_info",
        "gauge",
        "Always 1; the torrent's name, category, tags and tracker host. Join on hash for names.",
        "torrent",
        ("hash", "name", "category", "tags", "tracker"),
    ),
    MetricSpec(
        "qbittorrent_torrent_state",
        "gauge",
        "Always 1, for the torrent's current state only.",
        "torrent",
        ("hash", "state"),
    ),
    _torrent("size_bytes", "gauge", "Bytes selected for download.", "size"),
    _torrent("amount_left_bytes", "gauge", "Bytes of the selected size still to download.", "amount_left"),
    _torrent("progress_ratio", "gauge", "Download progress, 0 to 1.", "progress"),
    _torrent(
        "download_speed_bytes_per_second", "gauge", "Torrent download rate (payload).", "download_speed"
    ),
    _torrent("upload_speed_bytes_per_second", "gauge", "Torrent upload rate (payload).", "upload_speed"),
    _torrent("eta_seconds", "gauge", "Estimated seconds to completion; absent when infinite.", "eta"),
    _torrent(
        "share_ratio",
        "gauge",
        "Uploaded / downloaded (qBittorrent caps it at 9999); absent when infinite.",
        "ratio",
    ),
    _torrent("seeds", "gauge", "Seeds connected.", "seeds"),
    _torrent("leechers", "gauge", "Leechers connected.", "leechers"),
    _torrent("swarm_seeds", "gauge", "Seeds in the swarm as the tracker reports them.", "swarm_seeds"),
    _torrent(
        "swarm_leechers", "gauge", "Leechers in the swarm as the tracker reports them.", "swarm_leechers"
    ),
    _torrent("downloaded_bytes_total", "counter", "Bytes downloaded, all time.", "downloaded"),
    _torrent("uploaded_bytes_total", "counter", "Bytes uploaded, all time.", "uploaded"),
    _torrent("wasted_bytes_total", "counter", "Bytes discarded (failed hash checks, redundant).", "wasted"),
    _torrent("active_seconds_total", "counter", "Seconds the torrent has been active.", "active_seconds"),
    _torrent("seeding_seconds_total", "counter", "Seconds the torrent has been seeding.", "seeding_seconds"),
    _torrent("connections", "gauge", "Peer connections open for the torrent.", "connections"),
    _torrent("added_timestamp_seconds", "gauge", "When the torrent was added (Unix time).", "added"),
    _torrent(
        "completed_timestamp_seconds",
        "gauge",
        "When the torrent completed (Unix time); absent until it has.",
        "completed",
    ),
    _torrent(
        "last_activity_timestamp_seconds",
        "gauge",
        "Last time data moved for the torrent (Unix time); absent when unknown.",
        "last_activity",
    ),
    # --- tracker health (the trackers collector) ----------------------------------------------
    MetricSpec(
        "qbittorrent_torrent_tracker_working",
        "gauge",
        "1 when at least one of the torrent's trackers works, 0 when none does (or it has none; "
        "qbittorrent_torrent_tracker_status says why); absent while that is not known.",
        "torrent",
        ("hash",),
    ),
    MetricSpec(
        "qbittorrent_torrent_tracker_status",
        "gauge",
        "Always 1, for the torrent's current tracker status: working, unknown, unregistered, auth, "
        "unreachable, other, updating, not_contacted, no_tracker (the best of its trackers').",
        "torrent",
        ("hash", "status"),
    ),
    MetricSpec(
        "qbittorrent_torrents_by_tracker_status",
        "gauge",
        "Torrents using a tracker host (the host name only, never the URL: it carries passkeys), by that "
        "tracker's status for them; every status is present, 0 included, for each host in use. Counts "
        "the torrents that get per-torrent series (--torrents.include/exclude/max).",
        "server",
        ("tracker", "status"),
    ),
    # --- the exporter itself ----------------------------------------------------------------
    MetricSpec(
        "qbittorrent_exporter_build_info",
        "gauge",
        "Always 1; the exporter's version and Python version in labels.",
        "exporter",
        ("version", "python_version"),
    ),
    MetricSpec(
        "qbittorrent_exporter_scrape_duration_seconds",
        "gauge",
        "Seconds this scrape spent reading qBittorrent (detection, login, lists and properties).",
        "exporter",
    ),
    MetricSpec(
        "qbittorrent_exporter_scrape_cut_short",
        "gauge",
        "1 when this scrape ran out of its time budget and answered with cached or partial data.",
        "exporter",
    ),
    MetricSpec(
        "qbittorrent_exporter_requests_total",
        "counter",
        "Calls to qBittorrent by endpoint and outcome (ok, http_error, unauthorized, forbidden, banned, "
        "timeout, connection_error, bad_response, too_large: a reply over --qbittorrent.max-reply-size).",
        "exporter",
        ("endpoint", "outcome"),
    ),
    MetricSpec(
        "qbittorrent_exporter_logins_total",
        "counter",
        "Login attempts by outcome (ok, rejected, banned, error).",
        "exporter",
        ("outcome",),
    ),
    MetricSpec(
        "qbittorrent_exporter_login_backoff_seconds",
        "gauge",
        "Seconds until the exporter will try to log in again after a rejected login or a ban; 0 when "
        "it may log in now, +Inf while logins are suspended (see qbittorrent_exporter_login_suspended).",
        "exporter",
    ),
    MetricSpec(
        "qbittorrent_exporter_login_suspended",
        "gauge",
        "1 while logins are suspended for this reason, else 0; both reasons always present. rejected: "
        "qBittorrent rejected the password too often in a row, no login until the password file changes "
        "or the exporter restarts. banned: qBittorrent banned the exporter's address, no login until the "
        "ban ends (or, if the exporter's own password was rejected, until it changes).",
        "exporter",
        ("reason",),
    ),
    MetricSpec(
        "qbittorrent_exporter_invalid_values_total",
        "counter",
        "Values in qBittorrent's replies that could not be read (wrong type, unknown state, missing "
        "field); each cost only its own series.",
        "exporter",
        ("endpoint",),
    ),
    MetricSpec(
        "qbittorrent_exporter_torrents_filter_info",
        "gauge",
        "Always 1; the --torrents.include and --torrents.exclude selectors in force, canonical, and "
        '--torrents.max ("" for none): which torrents get per-torrent series.',
        "exporter",
        ("include", "exclude", "max"),
    ),
    MetricSpec(
        "qbittorrent_exporter_torrents_left_out",
        "gauge",
        "Torrents in qBittorrent's list without per-torrent series this scrape, by reason (filter: "
        "--torrents.include/--torrents.exclude; cap: --torrents.max); both reasons always present.",
        "exporter",
        ("reason",),
    ),
    MetricSpec(
        "qbittorrent_exporter_torrent_properties_refreshes_total",
        "counter",
        "Per-torrent properties calls by reason (new, changed, busy, aged; ahead: between scrapes).",
        "exporter",
        ("reason",),
    ),
    MetricSpec(
        "qbittorrent_exporter_torrent_properties_skipped",
        "gauge",
        "Torrents whose properties were due this scrape but were left for a later one (time budget).",
        "exporter",
    ),
    MetricSpec(
        "qbittorrent_exporter_torrent_properties_max_age_seconds",
        "gauge",
        "Age of the oldest per-torrent properties in this scrape's output.",
        "exporter",
    ),
    MetricSpec(
        "qbittorrent_exporter_torrent_trackers_refreshes_total",
        "counter",
        "Per-torrent trackers calls by reason (new, changed, aged; ahead: between scrapes).",
        "exporter",
        ("reason",),
    ),
    MetricSpec(
        "qbittorrent_exporter_torrent_trackers_skipped",
        "gauge",
        "Torrents whose trackers were due this scrape but were left for a later one (time budget).",
        "exporter",
    ),
    MetricSpec(
        "qbittorrent_exporter_torrent_trackers_max_age_seconds",
        "gauge",
        "Age of the oldest per-torrent tracker reading in this scrape's output.",
        "exporter",
    ),
    MetricSpec(
        "qbittorrent_exporter_collector_success",
        "gauge",
        "1 when the collector did its part of this scrape, 0 when it could not: qBittorrent down (for "
        "the collectors that read it), a properties call failed (torrent_properties), a trackers call "
        "failed (trackers), or an exporter bug (see qbittorrent_exporter_collector_errors_total).",
        "exporter",
        ("collector",),
    ),
    MetricSpec(
        "qbittorrent_exporter_collector_duration_seconds",
        "gauge",
        "Seconds the collector took to build its metric families from this scrape's reading.",
        "exporter",
        ("collector",),
    ),
    MetricSpec(
        "qbittorrent_exporter_collector_errors_total",
        "counter",
        "Exceptions raised inside a collector (exporter bugs, logged with their traceback); each cost "
        "only that collector's series for that scrape.",
        "exporter",
        ("collector",),
    ),
    # --- /probe and the config file (on /metrics only, with --config.file) ---------------------
    MetricSpec(
        "qbittorrent_exporter_probe_targets",
        "gauge",
        "qBittorrents /probe holds a session and caches for now, one per module and target.",
        "exporter",
    ),
    MetricSpec(
        "qbittorrent_exporter_probe_targets_max",
        "gauge",
        "The most /probe targets held at once (--probe.max-targets); a probe of one more gets 503.",
        "exporter",
    ),
    MetricSpec(
        "qbittorrent_exporter_probe_target_idle_timeout_seconds",
        "gauge",
        "A /probe target not probed for this long is logged out of and forgotten "
        "(--probe.target-idle-timeout).",
        "exporter",
    ),
    MetricSpec(
        "qbittorrent_exporter_probe_target_evictions_total",
        "counter",
        "/probe targets forgotten (logged out of first), because idle or because a reload changed "
        "their module.",
        "exporter",
        ("reason",),
    ),
    MetricSpec(
        "qbittorrent_exporter_probes_total",
        "counter",
        "Requests to /probe by outcome: ok, or refused before any qBittorrent was contacted "
        "(bad_request, unknown_module, not_allowed, pool_full).",
        "exporter",
        ("outcome",),
    ),
    MetricSpec(
        "qbittorrent_exporter_config_last_reload_successful",
        "gauge",
        "1 when the last load of --config.file worked, 0 when it failed (the modules before it stay).",
        "exporter",
    ),
    MetricSpec(
        "qbittorrent_exporter_config_last_reload_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful load of --config.file (start-up included).",
        "exporter",
    ),
)

BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOGUE}


def spec(name: str) -> MetricSpec:
    """The catalogue row for ``name``; a KeyError here is a typo in the caller."""
    return BY_NAME[name]


def exposed_names() -> set[str]:
    """Every sample name a scrape can contain, for checking dashboard and alert expressions."""
    return set(BY_NAME)


def markdown_table() -> str:
    """The README's metric table."""
    rows = ["| name | type | labels | help |", "|---|---|---|---|"]
    for row in CATALOGUE:
        labels = ", ".join(f"`{label}`" for label in row.labels)
        rows.append(f"| `{row.name}` | {row.kind} | {labels} | {row.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
