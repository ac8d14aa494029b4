"""Families built from whole rows (``labelled``) and the trackers' working-by-status table are what
the per-sample ``Family.add`` and ``TorrentTrackers.working`` make: they only save a call a sample."""

from __future__ import annotations

import pytest

from qbt_exporter.collectors.base import labelled, named
from qbt_exporter.exposition import render_text
from qbt_exporter.trackers import TORRENT_STATUSES, WORKING, TorrentTrackers


def test_rows_in_any_label_order_render_as_the_same_samples_added_one_by_one() -> None:
    cells = [("linux", "stalledUP", 3.0), ("", "stoppedUP", 0.0), ('odd"one', "uploading", 1.0)]
    added = named("qbittorrent_torrents")
    for category, state, value in cells:
        added.add(value, category=category, state=state)
    expected = render_text([added])
    assert render_text([labelled("qbittorrent_torrents", ("category", "state"), cells)]) == expected
    swapped = [(state, category, value) for category, state, value in cells]
    assert render_text([labelled("qbittorrent_torrents", ("state", "category"), swapped)]) == expected


def test_rows_with_labels_other_than_the_catalogues_are_refused() -> None:
    with pytest.raises(ValueError, match="qbittorrent_torrents takes labels"):
        labelled("qbittorrent_torrents", ("tag", "state"), [("hd", "stalledUP", 1.0)])


def test_working_by_status_is_each_status_working() -> None:
    expected = {status: 0.0 for status in TORRENT_STATUSES} | {"working": 1.0, "unknown": None}
    assert {status: WORKING[status] for status in TORRENT_STATUSES} == expected
    assert all(TorrentTrackers(status).working == value for status, value in expected.items())
