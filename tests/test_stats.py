"""The exporter's own counters: labelled, monotonic, and safe to read while others count.

Why: they feed the qbittorrent_exporter_* families; a lost increment under concurrent scrapes or a
reader that trips over a writer would make those series lie or crash /metrics.
"""

from __future__ import annotations

import threading

from qbt_exporter.stats import Stats


def test_unknown_family_or_labels_read_as_zero() -> None:
    stats = Stats()
    assert stats.get("requests", "torrents", "ok") == 0
    assert list(stats.items("requests")) == []


def test_counts_per_label_tuple_and_amounts_add_up() -> None:
    stats = Stats()
    stats.inc("requests", "torrents", "ok")
    stats.inc("requests", "torrents", "ok")
    stats.inc("requests", "torrents", "timeout")
    stats.inc("bytes", amount=2.5)
    stats.inc("bytes", amount=0.5)
    assert stats.get("requests", "torrents", "ok") == 2
    assert stats.get("requests", "torrents", "timeout") == 1
    assert stats.get("requests", "torrents") == 0  # a prefix of the labels is another series
    assert stats.get("bytes") == 3.0


def test_items_are_sorted_and_a_copy() -> None:
    stats = Stats()
    for endpoint in ("version_api", "login", "torrents"):
        stats.inc("requests", endpoint, "ok")
    pairs = stats.items("requests")
    stats.inc("requests", "aaa", "ok")  # counting while a reader iterates must not disturb it
    assert list(pairs) == [(("login", "ok"), 1), (("torrents", "ok"), 1), (("version_api", "ok"), 1)]


def test_named_helpers_count_what_happened() -> None:
    stats = Stats()
    stats.request("torrents", "ok")
    stats.login("rejected")
    stats.invalid_value("torrents", 3)
    stats.invalid_value("torrents", 0)  # nothing invalid: no series appears
    stats.invalid_value("properties", 0)
    stats.properties_refresh("new")
    assert stats.get("requests", "torrents", "ok") == 1
    assert stats.get("logins", "rejected") == 1
    assert list(stats.items("invalid_values")) == [(("torrents",), 3)]
    assert stats.get("properties_refreshes", "new") == 1


def test_no_increment_is_lost_between_threads() -> None:
    stats = Stats()
    barrier = threading.Barrier(8)

    def count() -> None:
        barrier.wait()
        for _ in range(2000):
            stats.request("torrents", "ok")
            list(stats.items("requests"))

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stats.get("requests", "torrents", "ok") == 16_000
