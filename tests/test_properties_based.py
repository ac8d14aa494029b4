"""Property-based tests: whatever qBittorrent sends, /metrics is valid exposition.

Replies of both API flavours are generated two ways: the recorded replies mutated (wrong types,
missing keys, nulls, huge and non-finite numbers, nested junk, any Unicode including lone
surrogates and raw bytes that are not UTF-8, duplicate and unusable hashes, junk where objects
belong), and fully arbitrary bodies. Each goes through the real path of a scrape (``tests.wire``):
Client, flavour, Scraper, ``Collectors.families``, ``render_chunks`` and the OpenMetrics encoder.

What must hold: no exception escapes (a reply of the wrong overall shape is a ``QbtError``, which
the scraper turns into ``qbittorrent_up 0``); a reply of the right shape with bad values keeps
``qbittorrent_up 1``; both outputs parse with prometheus_client's parsers; no series appears twice;
every hash label is a hash; every torrent object with a usable hash has one series, counted once
in ``qbittorrent_torrents``, and those without one are counted there too. ``promtool check metrics``
reads the most hostile outputs of a run (it is too slow to run on every example).

Run time is kept down by a modest number of examples per test; ``HYPOTHESIS_PROFILE=thorough``
runs many more. Under CI the examples are derandomized: the same inputs on every run.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from qbt_exporter.qbittorrent import jsonbody
from qbt_exporter.qbittorrent.errors import QbtError
from qbt_exporter.qbittorrent.flavours.legacy import LegacyFlavour
from qbt_exporter.qbittorrent.flavours.v2 import V2Flavour
from qbt_exporter.stats import Stats
from tests.tools import promtool_check_metrics
from tests.wire import FLAVOURS, LEGACY, V2, Flavour, Outcome, scrape

settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

HASH = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
MARKER = "\ue000"  # a private-use character, replaced by raw bytes that are not UTF-8 in the body
NOT_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xe9", b"\xf4\x90\x80\x80"]

# --- strategies --------------------------------------------------------------------------------

surrogates = st.integers(0xD800, 0xDFFF).map(chr)
awkward_chars = st.sampled_from(
    ['"', "\\", "\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\ufeff", "\ufffd", "{", "=", ","]
)
chars = st.one_of(st.characters(), surrogates, awkward_chars, st.just(MARKER))
texts = st.text(chars, max_size=12)
odd_numbers = st.sampled_from(
    [10**400, -(10**400), 2**64, -(2**64), 2**64 - 1, 2**63, math.inf, -math.inf, math.nan, 1e308,
     -1, 0, -0.0, 5e-324, 4294967295, 8640000, 9999, 0.5]
)  # fmt: skip
odd_strings = st.sampled_from(
    ["1,25", "1.234,50", "1 234", "-", "", "nan", "inf", "1e400", "9" * 400, "-" + "9" * 30, "½", "٣"]
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), odd_numbers, st.floats(), texts, odd_strings)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)


def some_hash(draw: st.DrawFn, known: list[str]) -> Any:
    """A hash for a torrent object: a copy of a known one (any case), a fresh one, or junk."""
    return draw(
        st.one_of(
            st.sampled_from(known),
            st.sampled_from(known).map(str.upper),
            st.text("0123456789abcdef", min_size=40, max_size=40),
            st.text("0123456789abcdef", min_size=64, max_size=64),
            junk,
        )
    )


@st.composite
def mutated_object(draw: st.DrawFn, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with a few fields set to junk or removed."""
    out = dict(obj)
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.one_of(st.sampled_from(sorted(obj)), texts)) if obj else draw(texts)
        if draw(st.booleans()) and key in out:
            del out[key]
        else:
            out[key] = draw(junk)
    return out


@st.composite
def mutated_list(draw: st.DrawFn, objs: list[dict[str, Any]]) -> list[Any]:
    """A legacy torrent list: objects mutated, duplicated, rehashed, or replaced by junk."""
    out: list[Any] = copy.deepcopy(objs)
    known = [obj["hash"] for obj in objs]
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["mutate", "duplicate", "rehash", "junk", "drop"]))
        if not out:
            break
        i = draw(st.integers(0, len(out) - 1))
        if op == "mutate" and isinstance(out[i], dict):
            out[i] = draw(mutated_object(out[i]))
        elif op == "duplicate":
            source = out[i] if isinstance(out[i], dict) else {}
            twin = draw(mutated_object(source))
            out.insert(draw(st.integers(0, len(out))), twin)
        elif op == "rehash" and isinstance(out[i], dict):
            out[i]["hash"] = some_hash(draw, known)
        elif op == "junk":
            out[i] = draw(junk)
        elif op == "drop":
            del out[i]
    return out


@st.composite
def mutated_mapping(draw: st.DrawFn, torrents: dict[str, Any]) -> dict[str, Any]:
    """A v2 ``torrents`` object: values mutated, copies under other keys (other case), junk."""
    out: dict[str, Any] = copy.deepcopy(torrents)
    known = list(torrents)
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["mutate", "copy", "junk", "drop"]))
        if not out:
            break
        key = draw(st.sampled_from(sorted(out)))
        if op == "mutate" and isinstance(out[key], dict):
            out[key] = draw(mutated_object(out[key]))
        elif op == "copy":
            new_key = some_hash(draw, known)
            source = out[key] if isinstance(out[key], dict) else {}
            out[new_key if isinstance(new_key, str) else json.dumps(new_key)] = draw(mutated_object(source))
        elif op == "junk":
            out[key] = draw(junk)
        elif op == "drop":
            del out[key]
    return out


@st.composite
def encoded(draw: st.DrawFn, value: Any) -> bytes:
    """``value`` as a reply body: escaped or raw UTF-8 (lone surrogates as CESU-8 bytes), with the
    marker character turned into bytes that are not UTF-8."""
    if draw(st.booleans()):
        body = json.dumps(value, ensure_ascii=True).encode("ascii")
    else:
        body = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    marker = MARKER.encode()
    if marker in body:
        body = body.replace(marker, draw(st.sampled_from(NOT_UTF8)))
    return body


@st.composite
def legacy_replies(draw: st.DrawFn) -> dict[str, bytes]:
    """Recorded legacy replies, each kept, mutated field by field, or replaced by junk."""
    transfer = LEGACY.recorded_json("transfer_info")
    torrents = LEGACY.recorded_json("torrents")
    props = LEGACY.recorded_json("torrent_properties")
    return {
        "transfer_info": draw(encoded(draw(mutated_object(transfer)))),
        "torrents": draw(encoded(draw(mutated_list(torrents)))),
        "torrent_properties": draw(encoded(draw(mutated_object(props)))),
    }


@st.composite
def v2_replies(draw: st.DrawFn) -> dict[str, bytes]:
    data = V2.recorded_json("maindata")
    data["server_state"] = draw(mutated_object(data["server_state"]))
    data["torrents"] = draw(mutated_mapping(data["torrents"]))
    if draw(st.booleans()):
        data = draw(mutated_object(data))  # categories, tags, rid... and at times the shape itself
    props = V2.recorded_json("torrent_properties")
    return {
        "maindata": draw(encoded(data)),
        "torrent_properties": draw(encoded(draw(mutated_object(props)))),
    }


@st.composite
def arbitrary_replies(draw: st.DrawFn, flavour: Flavour) -> dict[str, bytes]:
    """Any endpoint's reply replaced by arbitrary JSON, or by bytes that may not be JSON at all."""
    bodies: dict[str, bytes] = {}
    for endpoint in flavour.bodies:
        kind = draw(st.sampled_from(["recorded", "json", "bytes"]))
        if kind == "json":
            bodies[endpoint] = draw(encoded(draw(junk)))
        elif kind == "bytes":
            bodies[endpoint] = draw(st.binary(max_size=64))
    return bodies


# --- what must hold --------------------------------------------------------------------------


def check_output(outcome: Outcome) -> None:
    """Both formats parse; no series twice; every hash label is a hash."""
    for text, parse in ((outcome.text, parse_text), (outcome.openmetrics, parse_openmetrics)):
        series = Counter(
            (sample.name, tuple(sorted(sample.labels.items())))
            for family in parse(text)
            for sample in family.samples
        )
        twice = [key for key, n in series.items() if n > 1]
        assert not twice, twice
        hashes = {dict(labels)["hash"] for _, labels in series if "hash" in dict(labels)}
        assert all(HASH.fullmatch(h) for h in hashes), hashes


def listed(flavour: Flavour, bodies: dict[str, bytes]) -> tuple[set[str], int] | None:
    """From the torrent list as the exporter decodes it: the distinct usable hashes (first spelling)
    and the number of torrent objects without one; None when the list is not of the right shape."""
    try:
        if flavour is LEGACY:
            items = jsonbody.loads(bodies["torrents"])
            pairs = [(obj.get("hash"), obj) for obj in items if isinstance(obj, dict)]
        else:
            pairs = list(jsonbody.loads(bodies["maindata"])["torrents"].items())
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    first: dict[str, str] = {}
    anonymous = 0
    for raw_hash, obj in pairs:
        if not isinstance(obj, dict):
            continue
        if isinstance(raw_hash, str) and HASH.fullmatch(raw_hash):
            first.setdefault(raw_hash.lower(), raw_hash)
        else:
            anonymous += 1
    return set(first.values()), anonymous


def vanishing_properties(flavour: Flavour, bodies: dict[str, bytes]) -> bool:
    """True when the legacy properties reply says "this torrent is gone", which drops torrents."""
    if flavour is not LEGACY:
        return False
    body = bodies.get("torrent_properties", b"x")
    try:
        return not body.strip() or jsonbody.loads(body) == {}
    except ValueError:
        return False


def check_counts(outcome: Outcome, flavour: Flavour, bodies: dict[str, bytes]) -> None:
    """One info series per usable hash, and qbittorrent_torrents counts every torrent object once."""
    expected = listed(flavour, bodies)
    if expected is None or outcome.result.snapshot is None or vanishing_properties(flavour, bodies):
        return
    hashes, anonymous = expected
    info = outcome.samples("qbittorrent_torrent_info")
    assert {labels["hash"] for labels, _ in info} == hashes
    total = sum(value for _, value in outcome.samples("qbittorrent_torrents"))
    assert total == len(hashes) + anonymous


HOSTILE: list[tuple[int, str]] = []  # (score, text) of outputs kept for promtool


def keep_if_hostile(outcome: Outcome) -> None:
    """Keep the outputs with the most escaped, replaced, control and non-ASCII label characters."""
    text = outcome.text
    score = (
        sum(1 for c in text if not (" " <= c <= "~" or c == "\n"))  # control and non-ASCII characters
        + text.count("\\")
        + 10 * text.count("\ufffd")
    )
    HOSTILE.append((score, text))
    HOSTILE.sort(key=lambda pair: -pair[0])
    del HOSTILE[8:]


def run(flavour: Flavour, bodies: dict[str, bytes]) -> Outcome:
    outcome = scrape(flavour, bodies)  # anything the exporter lets escape fails the test here
    check_output(outcome)
    check_counts(outcome, flavour, bodies)
    keep_if_hostile(outcome)
    return outcome


# --- the tests -------------------------------------------------------------------------------


@given(legacy_replies())
def test_mutated_legacy_replies_give_valid_exposition(bodies: dict[str, bytes]) -> None:
    outcome = run(LEGACY, bodies)
    transfer, torrents = (jsonbody.loads(bodies[k]) for k in ("transfer_info", "torrents"))
    if isinstance(transfer, dict) and isinstance(torrents, list):
        assert outcome.result.snapshot is not None, outcome.result.error  # bad values cost only themselves


@given(v2_replies())
def test_mutated_v2_replies_give_valid_exposition(bodies: dict[str, bytes]) -> None:
    outcome = run(V2, bodies)
    data = jsonbody.loads(bodies["maindata"])
    if isinstance(data.get("server_state"), dict) and isinstance(data.get("torrents", {}), dict):
        assert outcome.result.snapshot is not None, outcome.result.error


@given(
    st.sampled_from(sorted(FLAVOURS)).flatmap(
        lambda name: st.tuples(st.just(name), arbitrary_replies(FLAVOURS[name]))
    )
)
def test_arbitrary_replies_give_valid_exposition(case: tuple[str, dict[str, bytes]]) -> None:
    name, bodies = case
    run(FLAVOURS[name], bodies)


class _Replying:
    """A client stand-in that answers every JSON call with one body, decoded as the client does."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """The client's contract: empty is None only when allowed; ``decode`` reads the bytes in place
        of jsonbody; ``check`` sees every decoded value."""
        from qbt_exporter.qbittorrent.errors import BadResponse

        if not self.body.strip():
            if kwargs.get("allow_empty"):
                return None
            raise BadResponse("empty", endpoint=kwargs["endpoint"])
        decode = kwargs.get("decode") or jsonbody.loads
        try:
            value = decode(self.body)
        except (ValueError, RecursionError) as exc:
            raise BadResponse(str(exc), endpoint=kwargs["endpoint"]) from exc
        check = kwargs.get("check")
        return value if check is None else check(value)


FLAVOUR_CALLS: list[tuple[str, Callable[[Any], object]]] = [
    ("legacy snapshot", lambda c: LegacyFlavour(c, Stats(), "17").snapshot(None)),  # type: ignore[arg-type]
    ("legacy properties", lambda c: LegacyFlavour(c, Stats(), "17").properties("a" * 40, None)),  # type: ignore[arg-type]
    ("v2 snapshot", lambda c: V2Flavour(c, Stats(), "").snapshot(None)),  # type: ignore[arg-type]
    ("v2 properties", lambda c: V2Flavour(c, Stats(), "").properties("a" * 40, None)),  # type: ignore[arg-type]
]


@settings(max_examples=3 * settings.default.max_examples)  # cheap: no HTTP
@given(st.sampled_from(FLAVOUR_CALLS), junk.flatmap(lambda value: encoded(value)) | st.binary(max_size=80))
def test_flavours_raise_only_qbt_errors(call: tuple[str, Callable[[Any], object]], body: bytes) -> None:
    """At the flavour itself: a reply of the wrong shape is a QbtError, never anything else."""
    with contextlib.suppress(QbtError):
        call[1](_Replying(body))


def test_promtool_accepts_the_most_hostile_outputs() -> None:
    """promtool reads what prometheus_client's parser might be lenient about; it runs on the
    outputs of this run that carry the most escaped and non-ASCII label text."""
    if len(HOSTILE) < 4:  # this test was run alone: make the outputs
        test_mutated_legacy_replies_give_valid_exposition()
        test_mutated_v2_replies_give_valid_exposition()
    assert HOSTILE
    for _, text in list(HOSTILE):
        promtool_check_metrics(text)


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_the_recorded_replies_pass_every_check(flavour: str) -> None:
    """The properties above hold for the unmutated recordings (so they are not vacuous)."""
    outcome = run(FLAVOURS[flavour], {})
    assert outcome.result.snapshot is not None
    assert outcome.samples("qbittorrent_torrent_info")
