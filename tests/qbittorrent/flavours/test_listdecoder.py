"""The torrent list decoded by msgspec where it is installed, by the json module where it is not:
both must give exactly what decoding the whole reply and reading every torrent with the reference
reader gives (test_torrentlist's specification), for every reply.

Why these tests: msgspec is a second JSON decoder in front of the reader. Where it accepts a
reply it must give every value json gives (a string where a number belongs, a boolean, an object,
an integer wider than 64 bits, a repeated member), so that a bad value still costs only its own
series; where it refuses one, the stdlib path must read it as before. The stdlib path itself is
what every platform without msgspec's wheels runs, so test_torrentlist's comparisons are run
again with msgspec taken away.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.qbittorrent.flavours.test_torrentlist as spec
from qbt_exporter.qbittorrent.flavours import listdecoder, torrentlist
from qbt_exporter.qbittorrent.flavours.listdecoder import ListDecoder, Refused
from qbt_exporter.qbittorrent.flavours.torrentlist import TorrentReader, wire_keys
from tests.qbittorrent.flavours.test_torrentlist import (
    LEGACY_KEYS,
    hashes,
    nearly_clean_objects,
    outcome,
    reference_array,
    reference_maindata,
    same,
    torrent_objects,
)

WHEELS = {"x86_64", "AMD64", "aarch64", "arm64"}  # pyproject's platform marker for msgspec


def test_msgspec_is_installed_where_it_has_wheels() -> None:
    if platform.machine() not in WHEELS:
        pytest.skip("msgspec is not a dependency on this platform")
    assert listdecoder.msgspec is not None, "msgspec is a dependency on this platform (pyproject)"
    assert TorrentReader()._decoder is not None


@pytest.fixture
def stdlib_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """As where msgspec is not installed: readers made from now on decode with the json module."""
    monkeypatch.setattr(listdecoder, "msgspec", None)
    assert TorrentReader()._decoder is None


@pytest.fixture
def msgspec_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reply the json module's path is asked to read fails the test: msgspec read it all."""
    if listdecoder.msgspec is None:
        pytest.skip("msgspec is not installed here")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("read by the stdlib path")

    monkeypatch.setattr(torrentlist, "JsonCursor", refuse)
    monkeypatch.setattr(torrentlist, "parse_whole", refuse)


# --- the stdlib path, as on a platform without msgspec ----------------------------------------------
FUNCTION_FIXTURE = [HealthCheck.function_scoped_fixture]


@pytest.mark.parametrize(
    "comparison",
    [
        spec.test_every_torrent_reads_as_the_reference_reads_it,
        spec.test_consecutive_scrapes_read_as_the_reference_reads_each,
        spec.test_every_list_body_reads_as_decoding_it_whole,
        spec.test_every_maindata_body_reads_as_decoding_it_whole,
        spec.test_a_hostile_element_mid_list_costs_only_its_own_values,
        spec.test_a_repeated_hash_in_maindata_is_the_last_copy_at_the_first_place,
        spec.test_an_element_longer_than_a_window_is_read_whole,
    ],
    ids=lambda f: f.__name__.removeprefix("test_"),
)
def test_without_msgspec_the_list_reads_as_the_reference_reads_it(
    stdlib_only: None, comparison: Callable[[], None]
) -> None:
    comparison()  # test_torrentlist's own comparison (hypothesis runs its examples inside)


# --- msgspec's path -------------------------------------------------------------------------------
def _decodable(value: Any) -> Any:
    """``value`` without what msgspec refuses for the whole reply (non-finite numbers, lone
    surrogates): what is left must be read by msgspec alone."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_decodable(v) for v in value]
    if isinstance(value, dict):
        return {_decodable(k): _decodable(v) for k, v in value.items()}
    return value


def _text(value: Any, draw: st.DrawFn) -> str:
    space = draw(st.sampled_from(["", " ", "\n\t ", "\r\n"]))
    return json.dumps(value, ensure_ascii=draw(st.booleans()), separators=("," + space, ":" + space))


def _repeat_a_member(text: str, draw: st.DrawFn) -> str:
    """An object's text with one more member at its start, which a later copy of the same key
    overrides in json.loads (the last copy wins)."""
    key = draw(st.sampled_from(["name", "size", "state", "num_seeds", "tracker", "hash", "label"]))
    extra = json.dumps({key: draw(st.one_of(st.integers(), st.text(max_size=3), st.booleans()))})[1:-1]
    return "{" + extra + ("," + text[1:] if text != "{}" else "}")


@st.composite
def decodable_array_bodies(draw: st.DrawFn) -> bytes:
    """A legacy list body of objects whose values may be any JSON (wrong types, numbers wider
    than 64 bits, sentinels), with repeated members, nothing msgspec refuses."""
    elements = []
    for obj in draw(st.lists(st.one_of(nearly_clean_objects(), torrent_objects()), max_size=6)):
        if draw(st.integers(0, 5)):
            obj["hash"] = draw(hashes())
        text = _text(_decodable(obj), draw)
        elements.append(_repeat_a_member(text, draw) if draw(st.integers(0, 3)) == 0 else text)
    return ("[" + ",".join(elements) + "]").encode()


@st.composite
def decodable_maindata_bodies(draw: st.DrawFn) -> bytes:
    objects = st.one_of(nearly_clean_objects(), torrent_objects())
    keys = st.one_of(hashes(), st.text(max_size=3)).filter(lambda h: isinstance(h, str))
    torrents = draw(
        st.lists(
            st.tuples(keys, objects),
            max_size=5,
        )
    )
    pairs = [json.dumps(_decodable(h)) + ":" + _text(_decodable(o), draw) for h, o in torrents]
    if torrents and draw(st.booleans()):
        pairs.append(json.dumps(_decodable(torrents[0][0])) + ":{}")  # a hash told twice: the last copy
    members = ['"server_state":{"dl_info_data":1,"connection_status":"connected"}', '"rid":7']
    if draw(st.integers(0, 5)):
        members.append('"torrents":{' + ",".join(pairs) + "}")  # else 4.6+'s full update without torrents
    members += draw(st.lists(st.sampled_from(['"trackers":{"u":["a"]}', '"server_state":{}']), max_size=2))
    return ("{" + ",".join(draw(st.permutations(members))) + "}").encode()


@settings(max_examples=300, deadline=None, suppress_health_check=FUNCTION_FIXTURE)
@given(body=decodable_array_bodies(), keys=st.sampled_from(LEGACY_KEYS))
def test_msgspec_reads_every_list_it_decodes_as_the_reference(
    msgspec_only: None, body: bytes, keys: dict[str, str]
) -> None:
    assert same(TorrentReader(**keys).read_array(body), reference_array(body, **keys))


@settings(max_examples=200, deadline=None, suppress_health_check=FUNCTION_FIXTURE)
@given(body=decodable_maindata_bodies())
def test_msgspec_reads_every_maindata_it_decodes_as_the_reference(msgspec_only: None, body: bytes) -> None:
    assert same(TorrentReader().read_maindata(body), reference_maindata(body))


@settings(max_examples=100, deadline=None, suppress_health_check=FUNCTION_FIXTURE)
@given(bodies=st.lists(decodable_array_bodies(), min_size=2, max_size=4))
def test_msgspec_reads_consecutive_scrapes_as_the_reference_reads_each(
    msgspec_only: None, bodies: list[bytes]
) -> None:
    reader = TorrentReader()  # one reader, as one flavour over several scrapes
    for body in bodies:
        assert same(reader.read_array(body), reference_array(body))


def test_a_hostile_value_read_by_msgspec_costs_only_its_own_series(msgspec_only: None) -> None:
    h = "ab" * 20
    body = (
        b'[{"hash":"' + h.encode() + b'","name":"n","state":"stalledUP","size":"1,25","num_seeds":2.5,'
        b'"ratio":18446744073709551616,"eta":{"a":[1]},"has_tracker_error":1,"dlspeed":7,"extra":[null]}]'
    )
    (torrent,), bad = TorrentReader().read_array(body)
    assert (torrent.hash, torrent.name, torrent.size, torrent.seeds, torrent.download_speed) == (
        h,
        "n",
        1.25,
        None,
        7,
    )
    assert (torrent.ratio, torrent.eta, torrent.tracker_error) == (None, None, None)
    assert bad == 4  # the fraction of a count, the 65-bit ratio, the object, the number as a flag
    assert same(TorrentReader().read_array(body), reference_array(body))


@pytest.mark.parametrize(
    "value",
    [b"NaN", b"1e400", b"9" * 5000, b'"\\ud800"', b'"\xff"', b"[" * 5000 + b"]" * 5000],
    ids=["NaN", "1e400", "5000 digits", "lone surrogate", "not UTF-8", "deep"],
)
@pytest.mark.parametrize("member", ["size", "unread"])
def test_a_reply_msgspec_refuses_is_read_by_the_stdlib_path_as_before(value: bytes, member: str) -> None:
    """msgspec refuses the whole reply (in a member nobody reads, it may skip what it would refuse
    as a value, as it skips the member): the json module decides, as before."""
    body = b'[{"hash":"' + b"e" * 40 + b'","state":"stalledUP","name":"x","' + member.encode() + b'":' + value
    body += b'},{"hash":"' + b"f" * 40 + b'","state":"uploading","name":"y","size":3}]'
    if listdecoder.msgspec is not None and member == "size":
        decoder = ListDecoder(wire_keys("category", "amount_left"))
        with pytest.raises(Refused):
            decoder.array(body)
    assert same(outcome(TorrentReader().read_array, body), reference_array(body))


@pytest.mark.parametrize(
    "body",
    [
        b"[1,2]",
        b'[{"hash":"' + b"e" * 40 + b'"}] x',
        b'\xef\xbb\xbf[{"hash":"' + b"e" * 40 + b'"}]',
        b'{"torrents":{}}',
        b'{"server_state":[],"torrents":{}}',
    ],
    ids=["no objects", "trailing text", "byte order mark", "no server_state", "server_state no object"],
)
def test_replies_of_another_shape_are_left_to_the_stdlib_path(body: bytes) -> None:
    assert same(outcome(TorrentReader().read_array, body), reference_array(body))
    assert same(outcome(TorrentReader().read_maindata, body), reference_maindata(body))


def test_maindata_without_torrents_is_an_empty_list(msgspec_only: None) -> None:
    server_state, torrents, bad = TorrentReader().read_maindata(b'{"rid":1,"server_state":{"a":1}}')
    assert (server_state, torrents, bad) == ({"a": 1}, [], 0)


def test_the_hash_is_the_first_key() -> None:
    keys = wire_keys("label", "remaining")
    assert keys[0] == "hash" and "label" in keys and "remaining" in keys
    if listdecoder.msgspec is not None:
        with pytest.raises(ValueError, match="hash"):
            ListDecoder(keys[1:])
