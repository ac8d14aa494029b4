"""The torrent list read element by element, by the fast reader, with values remembered between
scrapes: it must give exactly what decoding the whole reply and reading every torrent with the
reference reader (``common.parse_torrent``) gives, for every reply, hostile ones included.

Why these tests: the fast path is a second implementation of the bad-value policy, and the
streaming cursor a second JSON grammar around the C scanner. Each is compared with the reference
on generated torrents and bodies (values of every wrong type, sentinels, duplicated and unusable
hashes, truncated and mutated bodies, windows a few bytes wide), and across consecutive scrapes
by one reader, where a remembered value could leak into the next scrape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbt_exporter.qbittorrent import jsonbody
from qbt_exporter.qbittorrent.errors import BadResponse
from qbt_exporter.qbittorrent.flavours.common import STATE_ALIASES, parse_torrent, unidentified, usable_hash
from qbt_exporter.qbittorrent.flavours.torrentlist import TorrentReader
from qbt_exporter.qbittorrent.model import TORRENT_STATES, Torrent

LEGACY_KEYS = [{}, {"category_key": "label"}, {"amount_left_key": "remaining"}]

NUMBER_FIELDS = [
    "size", "amount_left", "remaining", "progress", "dlspeed", "upspeed", "ratio", "downloaded", "uploaded",
    "total_wasted", "time_active", "seeding_time", "eta", "num_seeds", "num_leechs", "num_complete",
    "num_incomplete", "connections_count", "added_on", "completion_on", "last_activity",
]  # fmt: skip
TEXT_FIELDS = ["name", "category", "label", "tags", "tracker"]
FLAG_FIELDS = ["has_tracker_error", "has_tracker_warning"]

# What a field may hold: clean values, every sentinel, and everything qBittorrent should never send.
numbers = st.one_of(
    st.integers(0, 2**64 - 1),
    st.integers(-(2**65), 2**65),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 1e19),
    st.sampled_from([-1, 0, 1, 8640000, 8639999, 8640001, 4294967295, 4294967294, 2**64, -(2**64), 2.5]),
    st.just(-0.0),
)
odd = st.one_of(
    st.booleans(),
    st.none(),
    st.sampled_from(["", "12", "1,25", "1.234,50", "-", "abc", "NaN", "1e5", "stalledUP", "pausedUP"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "a, b,,c", " b , a ", "http://t.example:80/a/announce", "udp://[::1", "\ud800x"]),
    st.just("é"),
)
states = st.one_of(st.sampled_from([*TORRENT_STATES, *STATE_ALIASES, "Downloading", ""]), texts, odd, numbers)


def hashes() -> st.SearchStrategy[Any]:
    hexes = st.text("0123456789abcdefABCDEF", min_size=40, max_size=40)
    return st.one_of(hexes, hexes, hexes, st.text("0123456789abcdef", min_size=64, max_size=64), texts, odd)


@st.composite
def torrent_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A torrent object whose every field may be missing, clean or wrong."""
    obj: dict[str, Any] = {}
    for key in NUMBER_FIELDS:
        kind = draw(st.integers(0, 9))
        if kind < 6:
            obj[key] = draw(numbers)
        elif kind < 8:
            obj[key] = draw(odd)
    for key in TEXT_FIELDS:
        if draw(st.integers(0, 4)):
            obj[key] = draw(st.one_of(texts, texts, odd, numbers))
    for key in FLAG_FIELDS:
        if draw(st.booleans()):
            obj[key] = draw(st.one_of(st.booleans(), odd, numbers))
    if draw(st.integers(0, 9)):
        obj["state"] = draw(states)
    return obj


clean_numbers = st.one_of(
    st.integers(0, 2**64 - 1),
    st.floats(0, 1e19),
    st.sampled_from([-1, 0, 8640000, 4294967295, -1.0, 3.0]),
)


@st.composite
def nearly_clean_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A torrent object as qBittorrent sends it (some keys missing, sentinels), with at most two
    wrong values: the torrents the fast reader takes, and its boundary with the reference."""
    obj: dict[str, Any] = {"state": draw(st.sampled_from([*TORRENT_STATES, *STATE_ALIASES]))}
    obj |= {key: draw(clean_numbers) for key in NUMBER_FIELDS if draw(st.integers(0, 5))}
    obj |= {key: draw(texts) for key in TEXT_FIELDS if draw(st.integers(0, 5))}
    obj |= {key: draw(st.booleans()) for key in FLAG_FIELDS if draw(st.booleans())}
    obj.setdefault("name", "n")
    every_field = [*NUMBER_FIELDS, *TEXT_FIELDS, *FLAG_FIELDS, "state"]
    for key in draw(st.lists(st.sampled_from(every_field), max_size=2)):
        obj[key] = draw(st.one_of(odd, numbers, texts))
    return obj


def reference(items: Iterable[tuple[object, object]], **keys: str) -> tuple[list[Torrent], int]:
    """The list as the exporter read it before the fast reader (commit cc8d80f's parse_torrents):
    the specification the fast reader must meet."""
    torrents: list[Torrent] = []
    seen: set[str] = set()
    invalid = 0
    for raw_hash, obj in items:
        if not isinstance(obj, dict):
            invalid += 1
            continue
        torrent_hash = usable_hash(raw_hash)
        if torrent_hash is None:
            torrent, bad = unidentified(obj, keys.get("category_key", "category"))
            torrents.append(torrent)
            invalid += bad + 1
            continue
        if torrent_hash.lower() in seen:
            invalid += 1
            continue
        seen.add(torrent_hash.lower())
        torrent, bad = parse_torrent(obj, torrent_hash, **keys)
        torrents.append(torrent)
        invalid += bad
    return torrents, invalid


def reference_array(body: bytes, **keys: str) -> object:
    """What the legacy flavour made of a body before: the list, or the kind of error."""
    try:
        value = jsonbody.loads(body)
    except (ValueError, RecursionError):
        return "not JSON"
    if not isinstance(value, list):
        return "wrong shape"
    return reference(((obj.get("hash") if isinstance(obj, dict) else None, obj) for obj in value), **keys)


def reference_maindata(body: bytes) -> object:
    try:
        data = jsonbody.loads(body)
    except (ValueError, RecursionError):
        return "not JSON"
    if not isinstance(data, dict) or not isinstance(data.get("server_state"), dict):
        return "wrong shape"
    items = data.get("torrents", {})
    if not isinstance(items, dict):
        return "wrong shape"
    return (data["server_state"], *reference(items.items()))


def outcome(read: Any, body: bytes, **kwargs: Any) -> object:
    try:
        return read(body, **kwargs)
    except (ValueError, RecursionError):
        return "not JSON"
    except BadResponse:
        return "wrong shape"


def same(a: object, b: object) -> bool:
    """Equal, NaN-free values compared by repr too, so that 1 == 1.0 == True cannot hide a change
    of type (a count must stay an int, a flag a bool)."""
    return a == b and repr(a) == repr(b)


# --- one torrent ----------------------------------------------------------------------------------
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    obj=st.one_of(nearly_clean_objects(), torrent_objects()),
    torrent_hash=hashes(),
    keys=st.sampled_from(LEGACY_KEYS),
)
def test_every_torrent_reads_as_the_reference_reads_it(
    obj: dict[str, Any], torrent_hash: Any, keys: dict[str, str]
) -> None:
    obj = json.loads(json.dumps(obj))  # as the wire gives it: only JSON types, NaN as the literal
    items = [(torrent_hash, obj)]
    assert same(TorrentReader(**keys).collect(items), reference(items, **keys))


# A few hashes (one in two letter cases) that recur from one list to the next, and new ones.
RECURRING = ["ab" * 20, "AB" * 20, "cd" * 20, "0" * 40]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lists=st.lists(
        st.lists(
            st.tuples(
                st.one_of(st.sampled_from(RECURRING), hashes()),
                st.one_of(nearly_clean_objects(), nearly_clean_objects(), torrent_objects(), odd),
            ),
            max_size=6,
        ),
        min_size=2,
        max_size=4,
    )
)
def test_consecutive_scrapes_read_as_the_reference_reads_each(lists: list[list[tuple[Any, Any]]]) -> None:
    """One reader over several lists, as one flavour over several scrapes: nothing it remembers
    from one list may show in the next (hashes, hosts and tags recur across the lists)."""
    reader = TorrentReader()
    for items in lists:
        items = json.loads(json.dumps(items))
        assert same(reader.collect(items), reference(items))


def test_a_changed_field_of_a_known_torrent_shows_in_the_next_scrape() -> None:
    reader = TorrentReader()
    h = "ab" * 20
    first = {
        "hash": h,
        "name": "n",
        "state": "pausedUP",
        "size": 10,
        "tags": "b,a",
        "tracker": "http://one.example/x",
    }
    second = {
        **first,
        "size": 11,
        "tags": "c",
        "tracker": "http://two.example/x",
        "state": "uploading",
        "name": "renamed",
        "category": "films",
    }
    (one,), _ = reader.collect([(h, first)])
    (two,), _ = reader.collect([(h, second)])
    assert (one.size, one.tags, one.tracker, one.state) == (10, "a,b", "one.example", "stoppedUP")
    assert (two.size, two.tags, two.tracker, two.state) == (11, "c", "two.example", "uploading")
    assert (one.name, one.category, two.name, two.category) == ("n", "", "renamed", "films")


def test_a_removed_then_readded_hash_and_a_duplicate_read_afresh() -> None:
    reader = TorrentReader()
    h = "cd" * 20
    obj = {"hash": h, "name": "first", "state": "stalledUP", "size": 1, "tracker": "http://a.example/1"}
    reader.collect([(h, obj)])
    assert reader.collect([]) == ([], 0)
    again = {**obj, "name": "second", "size": True, "tracker": 5}  # two unreadable values
    torrents, bad = reader.collect([(h, again), (h.upper(), obj)])  # the copy in other case: counted
    assert [(t.name, t.size, t.tracker) for t in torrents] == [("second", None, "")]
    assert bad == 3


def test_a_hostile_element_mid_list_costs_only_its_own_values() -> None:
    good = [
        {"hash": f"{n:040x}", "name": f"t{n}", "state": "stalledUP", "size": n + 1, "eta": 8640000}
        for n in range(5)
    ]
    hostile = {**good[2], "size": float("inf"), "num_seeds": 2.5, "name": ["x"], "has_tracker_error": 1}
    body = json.dumps([*good[:2], hostile, 7, *good[3:]]).encode()
    torrents, bad = TorrentReader().read_array(body)
    assert [t.size for t in torrents] == [1, 2, None, 4, 5]
    assert [t.name for t in torrents] == ["t0", "t1", "", "t3", "t4"]
    assert all(t.eta is None and t.state == "stalledUP" for t in torrents)
    assert bad == 4 + 1  # the four unreadable values, and the element that is no object


# --- whole replies ---------------------------------------------------------------------------------
@st.composite
def array_bodies(draw: st.DrawFn) -> bytes:
    """A legacy list body, with white space anywhere JSON allows it, then maybe damaged."""
    elements = draw(st.lists(st.one_of(nearly_clean_objects(), torrent_objects(), odd, numbers), max_size=6))
    for element in elements:
        if isinstance(element, dict) and draw(st.integers(0, 5)):
            element["hash"] = draw(hashes())
    space = draw(st.sampled_from(["", " ", "\n\t ", "\r\n"]))
    text = json.dumps(elements, ensure_ascii=draw(st.booleans()), separators=("," + space, ":" + space))
    body = (space + text + space).encode("utf-8", "surrogatepass")
    damage = draw(st.integers(0, 5))
    if damage == 1 and body:
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif damage == 2:
        at = draw(st.integers(0, len(body)))
        junk = draw(st.sampled_from([b",", b"]", b"[", b"}", b'"', b"\xff", b"\xc3", b" x", b"1"]))
        body = body[:at] + junk + body[at:]
    elif damage == 3:
        body = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xef\xbb\xbf\xef\xbb\xbf", b""])) + body
    elif damage == 4:
        body += draw(st.sampled_from([b"[]", b"x", b"\x00", b" ,"]))
    return body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=array_bodies(),
    chunk=st.sampled_from([4, 5, 7, 16, 100, jsonbody.CHUNK]),
    keys=st.sampled_from(LEGACY_KEYS),
)
def test_every_list_body_reads_as_decoding_it_whole(body: bytes, chunk: int, keys: dict[str, str]) -> None:
    got = outcome(TorrentReader(**keys).read_array, body, chunk=chunk)
    assert same(got, reference_array(body, **keys))


@st.composite
def maindata_bodies(draw: st.DrawFn) -> bytes:
    """A full maindata body as text: members in any order, maybe repeated, maybe damaged."""
    objects = st.one_of(nearly_clean_objects(), torrent_objects())
    torrents = draw(st.lists(st.tuples(hashes().filter(lambda h: isinstance(h, str)), objects), max_size=5))
    members = [f'"torrents":{{{",".join(json.dumps(h) + ":" + json.dumps(o) for h, o in torrents)}}}']
    members.append('"server_state":' + json.dumps(draw(st.one_of(st.just({"dl_info_data": 1}), odd))))
    others = ['"rid":3', '"full_update":true', '"trackers":{"u":["a"]}', '"torrents":[]', '"torrents":{}']
    members += draw(st.lists(st.sampled_from(others), max_size=2))
    if draw(st.booleans()):
        members = members[1:]  # 4.6+ leaves out an empty "torrents"
    order = draw(st.permutations(members))
    body = ("{" + ",".join(order) + "}").encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0 and body:
        body = body[: draw(st.integers(0, len(body) - 1))]
    return body


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=maindata_bodies(), chunk=st.sampled_from([4, 9, 64, jsonbody.CHUNK]))
def test_every_maindata_body_reads_as_decoding_it_whole(body: bytes, chunk: int) -> None:
    assert same(outcome(TorrentReader().read_maindata, body, chunk=chunk), reference_maindata(body))


def test_a_repeated_hash_in_maindata_is_the_last_copy_at_the_first_place() -> None:
    a, b = "a" * 40, "b" * 40
    torrents_text = f'{{"{a}":{{"name":"1"}},"{b}":{{"name":"2"}},"{a}":{{"name":"3"}}}}'
    body = '{"server_state":{},"torrents":' + torrents_text + "}"
    _, torrents, _ = TorrentReader().read_maindata(body.encode())
    assert [(t.hash, t.name) for t in torrents] == [(a, "3"), (b, "2")]


@pytest.mark.parametrize(
    "tail",
    [b"9" * 5000, b"1e400", b"NaN", b"-Infinity", b"[" * 100_000 + b"]" * 100_000],
    ids=["5000 digits", "1e400", "NaN", "-Infinity", "deep"],
)
def test_values_the_scanner_refuses_or_bends_read_as_before(tail: bytes) -> None:
    body = b'[{"hash":"' + b"e" * 40 + b'","state":"stalledUP","name":"x","size":' + tail + b"}]"
    assert same(outcome(TorrentReader().read_array, body), reference_array(body))


def test_an_element_longer_than_a_window_is_read_whole() -> None:
    big = {"hash": "f" * 40, "name": "n" * 5000, "state": "stalledUP"}
    body = json.dumps([big, big | {"hash": "e" * 40}]).encode()
    assert same(TorrentReader().read_array(body, chunk=64), reference_array(body))
