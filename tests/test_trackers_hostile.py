"""Property-based: whatever a trackers reply holds (wrong types, junk entries, huge lists, odd and
hostile strings, a passkey in every URL), it costs at most that torrent's tracker series.

Each example is one real scrape path (``tests.wire``: Client, flavour, Scraper, collectors, both
renderers) with the recorded replies, except the trackers reply, which answers for every torrent.
What must hold: ``qbittorrent_up 1`` and every torrent's info series stay; the output parses; a
reply of the wrong shape leaves no tracker series and ``collector_success{collector="trackers"} 0``;
a reply of the right shape gives every torrent exactly one tracker status from the fixed set; no
label carries a URL, a path or a query, however the URL is written.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from qbt_exporter.qbittorrent import jsonbody
from qbt_exporter.qbittorrent.errors import QbtError
from qbt_exporter.qbittorrent.flavours.legacy import LegacyFlavour
from qbt_exporter.qbittorrent.flavours.v2 import V2Flavour
from qbt_exporter.stats import Stats
from qbt_exporter.trackers import TORRENT_STATUSES
from tests.test_properties_based import _Replying, check_output, encoded, junk, listed, mutated_object, texts
from tests.wire import FLAVOURS, Flavour, scrape

SECRET = "s3cr3tpasskey0123456789abcdef"
hostile_urls = st.one_of(
    st.builds(
        lambda scheme, host, tail: f"{scheme}://{host}{tail}",
        st.sampled_from(["http", "https", "udp", "HTTP", "wss", ""]),
        st.one_of(
            texts, st.sampled_from(["t.example", "T.EXAMPLE:80", "[::1]:6969", "[bad", f"u:{SECRET}@h"])
        ),
        st.sampled_from([f"/{SECRET}/announce", f"/announce?passkey={SECRET}", f"/a?x=1#{SECRET}", ""]),
    ),
    texts,
    junk,
)
hostile_messages = st.one_of(
    texts,
    st.sampled_from(["Unregistered torrent", f'x (http://t/{SECRET}/announce) (-1) timed out "" (1)', ""]),
    junk,
)


@st.composite
def tracker_entries(draw: st.DrawFn, recorded: list[dict[str, Any]]) -> list[Any]:
    """The recorded entries, mutated, multiplied into a huge list, given hostile URLs and messages,
    or replaced by junk."""
    out: list[Any] = copy.deepcopy(recorded)
    for _ in range(draw(st.integers(0, 5))):
        op = draw(st.sampled_from(["mutate", "url", "msg", "status", "junk", "add", "many"]))
        i = draw(st.integers(0, max(0, len(out) - 1)))
        entry = out[i] if out and isinstance(out[i], dict) else {}
        if op == "mutate" and out:
            out[i] = draw(mutated_object(entry))
        elif op == "url":
            out.append({**entry, "url": draw(hostile_urls)})
        elif op == "msg":
            out.append({**entry, "url": f"http://t.example/{SECRET}/announce", "msg": draw(hostile_messages)})
        elif op == "status":
            status = draw(st.one_of(st.integers(-2, 9), st.sampled_from(["Working", "Arbeitet", "3"]), junk))
            out.append({**entry, "url": "udp://u.example:1", "status": status})
        elif op == "junk" and out:
            out[i] = draw(junk)
        elif op == "add":
            out.append(draw(junk))
        elif op == "many":
            count = draw(st.sampled_from([50, 3000]))
            out.extend(dict(entry, url=f"http://h{n % 7}.example/{SECRET}") for n in range(count))
    return out


@st.composite
def trackers_case(draw: st.DrawFn) -> tuple[Flavour, bytes]:
    flavour = FLAVOURS[draw(st.sampled_from(sorted(FLAVOURS)))]
    recorded = flavour.recorded_json("torrent_trackers")
    value = draw(st.one_of(tracker_entries(recorded), tracker_entries(recorded), junk))
    return flavour, draw(encoded(value))


def well_formed(body: bytes) -> bool:
    """Whether the exporter must read this reply: a list of objects that all have a URL string."""
    try:
        value = jsonbody.loads(body)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(e, dict) and type(e.get("url")) is str for e in value)


@given(trackers_case())
def test_a_hostile_trackers_reply_costs_only_tracker_series(case: tuple[Flavour, bytes]) -> None:
    flavour, body = case
    outcome = scrape(flavour, {"torrent_trackers": body})
    check_output(outcome)
    assert outcome.result.snapshot is not None, outcome.result.error
    listed_hashes = listed(flavour, {k: flavour.recorded(k) for k in flavour.bodies})
    assert listed_hashes is not None
    hashes = listed_hashes[0]
    assert {labels["hash"] for labels, _ in outcome.samples("qbittorrent_torrent_info")} == hashes
    statuses = {
        labels["hash"]: labels["status"]
        for labels, _ in outcome.samples("qbittorrent_torrent_tracker_status")
    }
    success = {
        labels["collector"]: value
        for labels, value in outcome.samples("qbittorrent_exporter_collector_success")
    }
    if well_formed(body):
        assert set(statuses) == hashes and set(statuses.values()) <= set(TORRENT_STATUSES)
        assert success["trackers"] == 1.0
    else:
        assert statuses == {} and success["trackers"] == 0.0
        assert not outcome.samples("qbittorrent_torrent_tracker_working")
    hosts = {labels["tracker"] for labels, _ in outcome.samples("qbittorrent_torrents_by_tracker_status")}
    assert not [h for h in hosts if not h or SECRET in h or "/" in h or "?" in h or "@" in h], hosts
    assert SECRET not in outcome.text


CALLS = [
    lambda c: LegacyFlavour(c, Stats(), "17").trackers("a" * 40, None),  # type: ignore[arg-type]
    lambda c: V2Flavour(c, Stats(), "").trackers("a" * 40, None),  # type: ignore[arg-type]
]


@settings(max_examples=4 * settings.default.max_examples)  # cheap: no HTTP
@given(st.sampled_from(CALLS), junk.flatmap(lambda value: encoded(value)) | st.binary(max_size=80))
def test_the_trackers_call_raises_only_qbt_errors(call: Any, body: bytes) -> None:
    with contextlib.suppress(QbtError):
        call(_Replying(body))
