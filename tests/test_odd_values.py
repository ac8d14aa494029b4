"""Values qBittorrent should never send, through the whole scrape path of both flavours (issue 8,
defects 4 and 10): huge and non-finite numbers in every endpoint, text that is not valid Unicode,
duplicate and unusable hashes. Each must cost only its own series, counted as an invalid value,
and leave /metrics valid exposition: never an exception, never a duplicate series."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.counters import invalid_values, requests
from tests.tools import promtool_check_metrics
from tests.wire import LEGACY, V2, Exporter, Flavour, Outcome, scrape

PLACEHOLDER = '"@@odd@@"'  # a JSON string in the body, replaced by the raw text of an odd value

# Raw JSON number literals: what json.loads makes of them is no quantity qBittorrent can mean.
ODD_NUMBERS = {
    "400 digits": "1" + "0" * 400,
    "-400 digits": "-1" + "0" * 400,
    "5000 digits": "9" * 5000,  # over Python's 4,300-digit int() limit
    "2**64": str(2**64),
    "1e400": "1e400",  # json reads it as infinity
    "-1e400": "-1e400",
    "NaN": "NaN",  # literals Python's json accepts and Qt never writes
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
}

# (flavour, endpoint, where the value goes, the metric that loses its sample)
SESSION_DL = "qbittorrent_session_downloaded_bytes_total"
ALLTIME_DL = "qbittorrent_alltime_downloaded_bytes_total"
SIZE = "qbittorrent_torrent_size_bytes"
WASTED = "qbittorrent_torrent_wasted_bytes_total"
FIELDS = {
    "legacy transferInfo": (LEGACY, "transfer_info", ["dl_info_data"], SESSION_DL),
    "legacy torrents": (LEGACY, "torrents", [1, "size"], SIZE),
    "legacy propertiesGeneral": (LEGACY, "torrent_properties", ["total_wasted"], WASTED),
    "v2 server_state": (V2, "maindata", ["server_state", "alltime_dl"], ALLTIME_DL),
    "v2 torrents": (V2, "maindata", ["torrents", 1, "size"], SIZE),
    "v2 properties": (V2, "torrent_properties", ["total_wasted"], WASTED),
}


def put(value: Any, path: list[Any], new: Any) -> None:
    """Set ``value[path]``; an int step into an object means its n-th key."""
    *steps, last = path
    for step in steps:
        value = value[list(value)[step]] if isinstance(step, int) and isinstance(value, dict) else value[step]
    if isinstance(last, int) and isinstance(value, dict):
        last = list(value)[last]
    value[last] = new


def body_with(flavour: Flavour, endpoint: str, path: list[Any], raw: str) -> bytes:
    value = flavour.recorded_json(endpoint)
    put(value, path, "@@odd@@")
    return json.dumps(value).replace(PLACEHOLDER, raw).encode()


def series_count(outcome: Outcome, name: str) -> int:
    return len(outcome.samples(name))


def invalid(outcome: Outcome, endpoint: str) -> float:
    return invalid_values(outcome.stats, endpoint)


_RECORDED: dict[str, Outcome] = {}


def recorded(flavour: Flavour) -> Outcome:
    """The scrape of the unchanged recordings, to compare with (once per flavour)."""
    if flavour.version not in _RECORDED:
        _RECORDED[flavour.version] = scrape(flavour, {})
    return _RECORDED[flavour.version]


@pytest.mark.parametrize("raw", ODD_NUMBERS.values(), ids=ODD_NUMBERS.keys())
@pytest.mark.parametrize("where", FIELDS.values(), ids=FIELDS.keys())
def test_an_odd_number_costs_only_its_series(where: tuple[Flavour, str, list[Any], str], raw: str) -> None:
    flavour, endpoint, path, metric = where
    outcome = scrape(flavour, {endpoint: body_with(flavour, endpoint, path, raw)})
    assert outcome.result.snapshot is not None, outcome.result.error
    before = recorded(flavour)
    lost = series_count(before, metric) - series_count(outcome, metric)
    if endpoint == "torrent_properties":  # one reply answers for every torrent: all lose it
        assert series_count(outcome, metric) == 0 < series_count(before, metric)
        assert invalid(outcome, endpoint) >= 1
    else:
        assert lost == 1
        assert invalid(outcome, endpoint) == 1
    # Every other series is still there.
    assert series_count(outcome, "qbittorrent_torrent_info") == series_count(
        before, "qbittorrent_torrent_info"
    )


def test_a_bad_properties_value_is_not_cached_as_something_that_breaks_later() -> None:
    """The cache holds model values, so the next scrape (served from it) renders as well."""
    exporter = Exporter(LEGACY)
    try:
        bad = body_with(LEGACY, "torrent_properties", ["total_wasted"], "1" + "0" * 400)
        first = exporter.scrape({"torrent_properties": bad})
        assert first.result.snapshot is not None
        # The properties endpoint now fails: every property value comes from the cache.
        second = exporter.scrape({}, statuses={"torrent_properties": 503})
        assert second.result.snapshot is not None
        assert series_count(second, "qbittorrent_torrent_wasted_bytes_total") == 0
        assert series_count(second, "qbittorrent_torrent_seeding_seconds_total") > 0  # from the cache
    finally:
        exporter.close()


# --- text that is not valid Unicode ----------------------------------------------------------

BAD_TEXT = {
    "escaped lone surrogate": (b'"a\\ud800b"', "a\ufffdb"),
    "escaped low surrogate": (b'"a\\udfffb"', "a\ufffdb"),
    "escaped pair": (b'"a\\ud83c\\udfacb"', "a\U0001f3acb"),  # a valid pair stays the character
    "raw CESU-8 surrogate": (b'"a\xed\xa0\x80b"', "a\ufffd\ufffd\ufffdb"),
    "raw bytes not UTF-8": (b'"a\xff\xfeb"', "a\ufffd\ufffdb"),
    "raw Latin-1": ('"caf\xe9"'.encode("latin-1"), "caf\ufffd"),
}
TEXT_PLACES = {
    "legacy": (LEGACY, "torrents", [1]),
    "v2": (V2, "maindata", ["torrents", 1]),
}


def with_text(flavour: Flavour, endpoint: str, path: list[Any], raw: bytes) -> bytes:
    """The list with the raw JSON string ``raw`` as one torrent's name, category and tags."""
    value = flavour.recorded_json(endpoint)
    for key in ("name", "category", "tags"):
        put(value, [*path, key], "@@odd@@")
    return json.dumps(value).encode().replace(PLACEHOLDER.encode(), raw)


@pytest.mark.parametrize(("raw", "expected"), BAD_TEXT.values(), ids=BAD_TEXT.keys())
@pytest.mark.parametrize("place", TEXT_PLACES.values(), ids=TEXT_PLACES.keys())
def test_names_are_made_valid_utf8(place: tuple[Flavour, str, list[Any]], raw: bytes, expected: str) -> None:
    flavour, endpoint, path = place
    outcome = scrape(flavour, {endpoint: with_text(flavour, endpoint, path, raw)})
    assert outcome.result.snapshot is not None, outcome.result.error
    info = [labels for labels, _ in outcome.samples("qbittorrent_torrent_info") if labels["name"] == expected]
    assert len(info) == 1
    assert info[0]["category"] == expected and info[0]["tags"] == expected
    assert {"category": expected, "state": "stalledUP"} in [
        labels for labels, _ in outcome.samples("qbittorrent_torrents")
    ]


def test_control_characters_in_labels_pass_promtool() -> None:
    """The text format escapes only backslash, quote and newline; every other character, control
    characters included, goes out as itself, and Prometheus's own parser must take it."""
    objs = LEGACY.recorded_json("torrents")
    objs[0]["name"] = 'nul\x00 cr\r esc\x1b del\x7f nel\x85 ls\u2028 bom\ufeff \\ " \n end'
    objs[0]["category"] = "\x00\t"
    objs[0]["tags"] = "\x01, \x02"
    outcome = scrape(LEGACY, {"torrents": json.dumps(objs).encode()})
    names = [labels["name"] for labels, _ in outcome.samples("qbittorrent_torrent_info")]
    assert objs[0]["name"] in names
    promtool_check_metrics(outcome.text)


# --- duplicate and unusable hashes ------------------------------------------------------------


def series_per_hash(outcome: Outcome) -> dict[tuple[str, str], int]:
    """(metric, hash) -> how many series; every one must be 1."""
    counts: dict[tuple[str, str], int] = {}
    for family in text_string_to_metric_families(outcome.text):
        for s in family.samples:
            if "hash" in s.labels:
                key = (s.name, s.labels["hash"])
                counts[key] = counts.get(key, 0) + 1
    return counts


def total(outcome: Outcome) -> float:
    return sum(value for _, value in outcome.samples("qbittorrent_torrents"))


def test_legacy_duplicate_hashes_give_one_series_each_and_count_once() -> None:
    objs = LEGACY.recorded_json("torrents")
    first = objs[1]
    twin = {**first, "name": "impostor", "state": "downloading", "category": "other"}
    shouting = {**objs[2], "hash": objs[2]["hash"].upper(), "name": "upper-case copy"}
    body = json.dumps([*objs, twin, shouting]).encode()
    outcome = scrape(LEGACY, {"torrents": body})
    assert outcome.result.snapshot is not None
    assert set(series_per_hash(outcome).values()) == {1}
    names = {labels["hash"]: labels["name"] for labels, _ in outcome.samples("qbittorrent_torrent_info")}
    assert len(names) == len(objs)
    assert names[first["hash"]] == first["name"]  # the first copy in the list wins
    assert names[objs[2]["hash"]] == objs[2]["name"]
    states = outcome.samples("qbittorrent_torrent_state")
    assert [labels["state"] for labels, _ in states if labels["hash"] == first["hash"]] == ["stalledUP"]
    assert total(outcome) == len(objs)
    assert "other" not in {labels["category"] for labels, _ in outcome.samples("qbittorrent_torrents")}
    assert invalid(outcome, "torrents") == 2


def test_v2_hashes_that_differ_in_case_are_one_torrent() -> None:
    data = V2.recorded_json("maindata")
    original = next(iter(data["torrents"]))
    data["torrents"][original.upper()] = {**data["torrents"][original], "name": "upper-case copy"}
    outcome = scrape(V2, {"maindata": json.dumps(data).encode()})
    assert set(series_per_hash(outcome).values()) == {1}
    names = {labels["hash"]: labels["name"] for labels, _ in outcome.samples("qbittorrent_torrent_info")}
    assert original.upper() not in names and names[original] == data["torrents"][original]["name"]
    assert total(outcome) == len(data["torrents"]) - 1
    assert invalid(outcome, "maindata") == 1


def test_v2_a_key_repeated_in_the_json_text_is_one_torrent_the_last_copy() -> None:
    """JSON decoding keeps one value per key (the last): the exporter never sees the first copy,
    as the README says. Still one series and one count."""
    data = V2.recorded_json("maindata")
    original = next(iter(data["torrents"]))
    body = json.dumps(data).encode()
    copy = json.dumps({original: {**data["torrents"][original], "name": "later copy"}}).encode()[1:-1]
    # The copy goes last inside the torrents object, which the recording follows with "trackers".
    head, sep, tail = body.rpartition(b'}, "trackers"')
    assert sep
    spliced = head + b", " + copy + sep + tail
    outcome = scrape(V2, {"maindata": spliced})
    assert set(series_per_hash(outcome).values()) == {1}
    names = {labels["hash"]: labels["name"] for labels, _ in outcome.samples("qbittorrent_torrent_info")}
    assert names[original] == "later copy"
    assert total(outcome) == len(data["torrents"])


@pytest.mark.parametrize(
    "flavour",
    [LEGACY, V2],
    ids=["legacy", "v2"],
)
def test_torrents_with_unusable_hashes_still_count_in_the_totals(flavour: Flavour) -> None:
    if flavour is LEGACY:
        objs = flavour.recorded_json("torrents")
        objs[0]["hash"] = ""
        del objs[1]["hash"]
        objs[2]["hash"] = 12345
        objs[3]["hash"] = "not-a-hash"
        objs[4]["state"] = "warping"
        objs[4]["hash"] = None
        dropped = objs[:5]
        listed = len(objs)
        bodies = {"torrents": json.dumps(objs).encode()}
        endpoint = "torrents"
    else:
        data = flavour.recorded_json("maindata")
        torrents = data["torrents"]
        keys = list(torrents)[:2]
        dropped = [torrents[k] for k in keys]
        for n, key in enumerate(keys):
            torrents["" if n == 0 else "not-a-hash"] = torrents.pop(key)
        listed = len(torrents)
        bodies = {"maindata": json.dumps(data).encode()}
        endpoint = "maindata"
    outcome = scrape(flavour, bodies)
    assert outcome.result.snapshot is not None
    assert total(outcome) == listed
    assert series_count(outcome, "qbittorrent_torrent_info") == listed - len(dropped)
    counts = {
        (labels["state"], labels["category"]): value
        for labels, value in outcome.samples("qbittorrent_torrents")
    }
    before = recorded(flavour)
    counts_before = {
        (labels["state"], labels["category"]): value
        for labels, value in before.samples("qbittorrent_torrents")
    }
    if flavour is LEGACY:  # the one with a state no qBittorrent has moved to "unknown"
        moved = (dropped[4]["category"],)
        assert counts[("unknown", moved[0])] == counts_before[("unknown", moved[0])] + 1
        assert invalid(outcome, endpoint) == 5 + 1
    else:
        assert counts == counts_before
        assert invalid(outcome, endpoint) == 2


# A reply that is valid JSON of the wrong top-level type (or, for maindata, wrong inner objects).
WRONG_SHAPES = {
    "legacy transferInfo is an array": (LEGACY, "transfer_info", b"[]"),
    "legacy torrents is an object": (LEGACY, "torrents", b'{"hash": "x"}'),
    "legacy torrents is null": (LEGACY, "torrents", b"null"),
    "legacy propertiesGeneral is an array": (LEGACY, "torrent_properties", b"[1]"),
    "v2 maindata is an array": (V2, "maindata", b"[]"),
    "v2 server_state is a string": (V2, "maindata", b'{"server_state": "up", "torrents": {}}'),
    "v2 torrents is an array": (V2, "maindata", b'{"server_state": {}, "torrents": []}'),
    "v2 properties is a number": (V2, "torrent_properties", b"7"),
}


@pytest.mark.parametrize("case", WRONG_SHAPES.values(), ids=list(WRONG_SHAPES))
def test_a_reply_of_the_wrong_shape_is_counted_as_a_bad_response_not_ok(
    case: tuple[Flavour, str, bytes],
) -> None:
    """It used to fail the scrape (or the torrent's properties) while the request counted as ok, so
    qbittorrent_exporter_requests_total showed nothing wrong."""
    flavour, endpoint, body = case
    outcome = scrape(flavour, {endpoint: body})
    assert requests(outcome.stats, endpoint, "bad_response") >= 1
    assert requests(outcome.stats, endpoint, "ok") == 0
