"""The selector grammar of --torrents.include/--torrents.exclude: parsing, matching, precedence, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qbt_exporter.filters import (
    OLD_STATE_NAMES,
    STATUS_GROUPS,
    Filters,
    SelectorError,
    describe,
    parse,
    parse_all,
)
from qbt_exporter.qbittorrent.flavours.common import STATE_ALIASES
from qbt_exporter.qbittorrent.model import TORRENT_STATES
from tests.fakes import torrent

ISO = torrent(1, "stalledUP", category="linux-isos", tags="hd,public", tracker="tracker.example.org")
MOVIE = torrent(2, "downloading", category="movies", tags="", tracker="private.example.net", name="Film 2")
NONE = torrent(3, "stoppedDL", category="", tags="", tracker="")
ERRORED = torrent(4, "missingFiles", category="TV, Shows", tags="keep", tracker="Tracker.Example.ORG")
ALL = (ISO, MOVIE, NONE, ERRORED)


def matching(text: str) -> list[int]:
    """Which of ALL (by number) pass a filter that includes ``text``."""
    filters = Filters(include=parse(text))
    return [n for n, t in enumerate(ALL, 1) if filters.passes(t)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("category=linux-isos", [1]),
        ("category=", [3]),  # uncategorised
        ('category=""', [3]),
        ('category="TV, Shows"', [4]),  # quoted: the comma is part of the value
        ("category=*s", [1, 2, 4]),  # * matches any run of characters
        ("category=LINUX-ISOS", []),  # categories compare as written
        ("tag=hd", [1]),
        ("tag=", [2, 3]),  # untagged
        ("tag=pub*", [1]),
        ("tracker=tracker.example.org", [1, 4]),  # host names compare without regard to case
        ("tracker=*.example.net", [2]),
        ("tracker=", [3]),
        ("state=stalledUP", [1]),
        ("state=STALLEDup", [1]),
        ("state=pausedDL", [3]),  # qBittorrent 4's name of stoppedDL
        ("status=downloading", [2]),
        ("status=seeding", [1]),
        ("status=completed", [1]),
        ("status=paused", [3]),
        ("status=stopped", [3]),
        ("status=errored", [4]),
        ("status=active", [2]),
        ("status=inactive", [1, 3, 4]),
        ("name=^Film", [2]),
        ("name=(?i)^film", [2]),
        ('name="torrent [0-9]{1,3}"', [1, 3, 4]),  # a regex with a comma, quoted
        # several conditions: all must hold
        ("category=movies,status=downloading", [2]),
        ("category=movies,status=seeding", []),
        # several selectors: any may match
        ("category=linux-isos; tag=keep", [1, 4]),
        (" category = linux-isos ; ; ", [1]),  # spaces around and blank selectors are ignored
    ],
)
def test_selector_matches(text: str, expected: list[int]) -> None:
    assert matching(text) == expected


def test_no_include_means_every_torrent_and_exclude_wins() -> None:
    assert all(Filters().passes(t) for t in ALL)
    assert not Filters().active
    everything_but_isos = Filters(exclude=parse("category=linux-isos"))
    assert [t.hash for t in ALL if everything_but_isos.passes(t)] == [MOVIE.hash, NONE.hash, ERRORED.hash]
    both = Filters(include=parse("tracker=tracker.example.org"), exclude=parse("status=errored"))
    assert [t for t in ALL if both.passes(t)] == [ISO]  # ERRORED matches the include but is excluded
    assert Filters(include=parse("tag=hd"), exclude=parse("tag=hd")).passes(ISO) is False


def test_repeated_flags_add_up() -> None:
    assert len(parse_all(["category=a", "tag=b; tag=c", ""])) == 3


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("category=linux-isos", "category=linux-isos"),
        (' category = "a,b" , tag= x ', 'category="a,b",tag=x'),
        ('name="\\d+ \\"x\\""', 'name="\\\\d+ \\"x\\""'),
        ("category=", 'category=""'),
        ("a=", None),
    ],
)
def test_canonical_text_reads_back_the_same(text: str, canonical: str | None) -> None:
    if canonical is None:
        with pytest.raises(SelectorError):
            parse(text)
        return
    selectors = parse(text)
    assert describe(selectors) == canonical
    assert describe(parse(canonical)) == canonical
    again = parse(canonical)
    assert [[(c.key, c.text) for c in s.conditions] for s in again] == [
        [(c.key, c.text) for c in s.conditions] for s in selectors
    ]


def test_quoted_regex_keeps_its_backslashes() -> None:
    (selector,) = parse('name="^torrent \\d$"')
    assert selector.conditions[0].text == "^torrent \\d$"
    assert selector.matches(torrent(3)) and not selector.matches(torrent(10))


@pytest.mark.parametrize(
    ("text", "named", "why"),
    [
        ("categroy=x", "categroy=x", "unknown key 'categroy'"),
        ("category", "category", "is not key=value"),
        ("tag=a,,tag=b", "tag=a,,tag=b", "empty condition"),
        ("tag=a,", "tag=a,", "empty condition"),
        ("state=seeding", "state=seeding", "for the group write status=seeding"),
        ("state=pausedup2", "state=pausedup2", "unknown state"),
        ("status=sleeping", "status=sleeping", "unknown status 'sleeping'"),
        ("name=(", "name=(", "not a regular expression"),
        ('category="open', 'category="open', "quote is not closed"),
        ('tag=ok; category="a"b', 'category="a"b', "after the closing quote"),
        ('category=a"b"', 'category=a"b"', "quote inside the unquoted value"),
        ("category=movies; bogus", "bogus", "is not key=value"),
    ],
)
def test_a_bad_selector_is_named_with_the_reason(text: str, named: str, why: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse(text)
    assert caught.value.selector == named
    assert repr(named) in str(caught.value)
    assert why in str(caught.value)


def test_state_words_are_the_models() -> None:
    """The 4.x spellings the grammar accepts are exactly the ones the flavours map, and every
    status group names only states the model knows (a typo in a group would match nothing)."""
    assert OLD_STATE_NAMES == STATE_ALIASES
    known = set(TORRENT_STATES)
    for name, test in STATUS_GROUPS.items():
        matched = {state for state in TORRENT_STATES if test(torrent(1, state))}
        assert matched <= known, name
    groups = {
        name: {s for s in TORRENT_STATES if test(torrent(1, s))}
        for name, test in STATUS_GROUPS.items()
        if name not in ("active", "inactive")
    }
    assert groups["downloading"].isdisjoint(groups["seeding"])
    assert groups["completed"] == groups["seeding"] | {"stoppedUP"}
    assert groups["stopped"] == groups["paused"] == {"stoppedUP", "stoppedDL"}
    assert groups["running"] == known - groups["stopped"]
    assert groups["errored"] == {"error", "missingFiles"}


def test_a_stalled_download_that_uploads_is_active_as_in_qbittorrent() -> None:
    active = Filters(include=parse("status=active"))
    assert not active.passes(torrent(1, "stalledDL", upload_speed=0.0))
    assert active.passes(torrent(1, "stalledDL", upload_speed=10.0))


# --- no input crashes the parser, and every error names its selector --------------------------------

_WORDS = ["category", "tag", "tracker", "state", "status", "name", "linux-isos", "stalledUP", "downloading"]
_ALPHABET = st.sampled_from([*'=,;"\\ *()[]{}^$.?+|x\né\x00', *_WORDS])


@given(st.one_of(st.text(), st.lists(_ALPHABET, max_size=20).map("".join)))
def test_no_input_crashes_the_parser(text: str) -> None:
    try:
        selectors = parse(text)
    except SelectorError as err:
        message = str(err)
        assert err.selector in text  # the selector named is the user's own text
        assert message.startswith(f"selector {err.selector!r}: ")
        assert "\n" not in message  # one line, whatever the selector holds
        return
    for selector in selectors:
        assert selector.conditions
        for t in ALL:
            selector.matches(t)  # matching never raises either
        assert describe(parse(str(selector))) == str(selector)  # the canonical text reads back
