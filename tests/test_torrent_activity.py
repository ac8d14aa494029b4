"""The running / held split of the exporter's torrent states that the per-torrent plans read."""

from qbt_exporter.qbittorrent.model import BUSY_STATES, TORRENT_STATES
from qbt_exporter.torrent_activity import HELD_STATES, RUNNING_STATES, announce_class


def test_held_states_are_states_and_neither_running_nor_busy() -> None:
    # A misspelt held state would silently never be held (and its properties never proved).
    assert HELD_STATES.issubset(TORRENT_STATES)
    assert not HELD_STATES & RUNNING_STATES and not HELD_STATES & BUSY_STATES


def test_every_running_state_is_one_announce_class_and_every_other_state_its_own() -> None:
    assert {announce_class(s) for s in RUNNING_STATES} == {"running"}
    others = [s for s in TORRENT_STATES if s not in RUNNING_STATES]
    assert [announce_class(s) for s in others] == others
    assert {"stalledUP", "uploading", "downloading", "stalledDL"} <= RUNNING_STATES
