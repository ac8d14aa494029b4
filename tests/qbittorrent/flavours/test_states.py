"""The wire spellings of torrent states belong to the flavours; the model keeps only the exporter's names."""

from __future__ import annotations

from qbt_exporter.qbittorrent import model
from qbt_exporter.qbittorrent.flavours.common import STATE_ALIASES, normalise_state
from qbt_exporter.qbittorrent.model import TORRENT_STATES


def test_every_wire_alias_maps_to_an_exporter_state() -> None:
    for wire, name in STATE_ALIASES.items():
        assert normalise_state(wire) == name
        assert name in TORRENT_STATES and wire not in TORRENT_STATES


def test_exporter_states_map_to_themselves_and_strangers_to_none() -> None:
    assert all(normalise_state(state) == state for state in TORRENT_STATES)
    assert normalise_state("someFutureState") is None


def test_the_model_knows_no_wire_spelling() -> None:
    """model.py's docstring promises it: only the flavours read wire JSON."""
    assert not hasattr(model, "STATE_ALIASES") and not hasattr(model, "normalise_state")
