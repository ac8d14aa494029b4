"""The exporter's picture of qBittorrent: what "unknown" means and how properties complete a torrent.

Why: every collector reads only these objects. ``None`` must stay ``None`` (an absent series is
honest, a zero is read by rate() as a reset), the list's own values must win over a properties call
made earlier, and the state vocabulary is the contract of every dashboard and alert.
"""

from __future__ import annotations

import dataclasses

import pytest

from qbt_exporter.qbittorrent.model import (
    BUSY_STATES,
    PROPERTY_FIELDS,
    TORRENT_STATES,
    ServerInfo,
    Snapshot,
    Torrent,
    TorrentProperties,
    Transfer,
)

HASH = "ab" * 20


def test_property_fields_are_the_torrent_fields_properties_can_fill() -> None:
    torrent_fields = set(Torrent._fields)
    assert set(PROPERTY_FIELDS) <= torrent_fields
    assert tuple(f.name for f in dataclasses.fields(TorrentProperties)) == PROPERTY_FIELDS


def test_state_vocabulary() -> None:
    assert list(TORRENT_STATES) == sorted(set(TORRENT_STATES))  # stable order for per-state series
    assert "unknown" in TORRENT_STATES  # where a state we do not know is counted
    assert set(TORRENT_STATES) >= BUSY_STATES
    assert "pausedUP" not in TORRENT_STATES  # 5.0's names are reported for every version


def test_everything_unknown_by_default() -> None:
    torrent = Torrent(hash=HASH, name="n", state="stalledUP")
    assert all(getattr(torrent, name) is None for name in PROPERTY_FIELDS)
    assert all(value is None for value in dataclasses.astuple(Transfer()))
    assert Snapshot(ServerInfo("v4.0.4", "legacy", "17"), Transfer()).torrents == []


def test_identified_and_missing_properties() -> None:
    assert Torrent(hash=HASH, name="n", state="stalledUP").identified
    nameless = Torrent(hash="", name="n", state="stalledUP")
    assert not nameless.identified
    assert not nameless.missing_properties()  # no hash to ask about, so no call helps
    assert Torrent(hash=HASH, name="n", state="stalledUP").missing_properties()
    full = Torrent(hash=HASH, name="n", state="stalledUP", **dict.fromkeys(PROPERTY_FIELDS, 0))
    assert not full.missing_properties()  # 0 is a value, not an absence


def test_with_properties_fills_only_gaps_and_the_list_wins() -> None:
    listed = Torrent(hash=HASH, name="n", state="stalledUP", downloaded=10.0, wasted=0.0)
    props = TorrentProperties(downloaded=99.0, uploaded=5.0, wasted=7.0, connections=None)
    filled = listed.with_properties(props)
    assert filled.downloaded == 10.0 and filled.wasted == 0.0  # the list's own values win
    assert filled.uploaded == 5.0  # a gap is filled
    assert filled.connections is None  # unknown stays unknown
    assert listed.uploaded is None  # frozen: the original is untouched


@pytest.mark.parametrize("props", [None, TorrentProperties()])
def test_with_nothing_to_add_is_the_same_object(props: TorrentProperties | None) -> None:
    torrent = Torrent(hash=HASH, name="n", state="stalledUP")
    assert torrent.with_properties(props) is torrent


def test_objects_are_frozen() -> None:
    with pytest.raises(AttributeError):  # a named tuple's fields cannot be set
        Torrent(hash=HASH, name="n", state="stalledUP").name = "other"  # type: ignore[misc]
