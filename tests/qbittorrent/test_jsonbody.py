import codecs
import json
import math
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qbt_exporter.qbittorrent import jsonbody

NAMES = [
    "plain",
    "Ünïcødé",
    "日本語の名前",
    "emoji 🎬🍿",
    'quote " and \\ backslash',
    "tab\there\nnewline",
    "\u2028",
]


def big_body(names: list[str], count: int) -> bytes:
    """A torrent list like qBittorrent's, larger than jsonbody.SMALL."""
    items = [
        {"hash": f"{n:040x}", "name": names[n % len(names)], "size": n * 1000, "progress": n / count}
        for n in range(count)
    ]
    return json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def test_same_values_as_json_loads_for_every_kind_of_character() -> None:
    body = big_body(NAMES, 20000)
    assert len(body) > jsonbody.SMALL and not body.isascii()
    assert jsonbody.loads(body) == json.loads(body)


def test_a_character_split_across_chunks_survives() -> None:
    prefix = b'{"a":"' + b"x" * (jsonbody.CHUNK - 1)  # the next character straddles the boundary
    body = prefix + "日🎬".encode() + b'"' + b', "pad":"' + b"y" * jsonbody.SMALL + b'"}'
    assert jsonbody.loads(body) == json.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        big_body(NAMES, 20000)[:-3],  # truncated
        b"<html>" + "é".encode() * jsonbody.SMALL + b"</html>",  # an error page
    ],
)
def test_bad_bodies_raise_value_error_like_json_loads(body: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(ValueError):
        jsonbody.loads(body)


@pytest.mark.parametrize("size", [10, jsonbody.SMALL], ids=["small", "large"])
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xff\xfe", "\ufffd\ufffd"),  # not UTF-8 at all
        (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),  # CESU-8: an encoded lone surrogate
        (b"\xc0\x80", "\ufffd\ufffd"),  # an overlong NUL
        ("é".encode("latin-1"), "\ufffd"),  # a name in another encoding
    ],
)
def test_bytes_that_are_not_utf8_become_replacement_characters(raw: bytes, expected: str, size: int) -> None:
    """json.loads fails the whole reply on them (UnicodeDecodeError), or for CESU-8 returns a lone
    surrogate that no UTF-8 encoder takes; one bad name must cost only its own spelling."""
    body = b'[{"name":"a' + raw + b'b"},{"pad":"' + b"y" * size + b'"}]'
    assert jsonbody.loads(body)[0]["name"] == f"a{expected}b"


def test_an_integer_too_long_for_int_reads_as_infinity() -> None:
    """json.loads refuses integers of more than 4,300 digits for the whole reply; one is one bad value."""
    body = b'{"size":' + b"9" * 5000 + b',"left":-' + b"9" * 5000 + b',"ok":12,"huge":' + b"9" * 400 + b"}"
    with pytest.raises(ValueError):
        json.loads(body)
    assert jsonbody.loads(body) == {"size": math.inf, "left": -math.inf, "ok": 12, "huge": int("9" * 400)}


def test_an_escaped_lone_surrogate_is_kept_for_the_value_reader() -> None:
    """JSON defines what ``\\ud800`` decodes to; repairing it is the value reader's job (valid_text)."""
    assert jsonbody.loads(b'["\\ud800", "\\ud83c\\udfac"]') == ["\ud800", "\U0001f3ac"]


def _peak(work, body: bytes) -> int:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        work(body)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_wide_character_no_longer_quadruples_the_text() -> None:
    body = big_body(["plain name"] * 99 + ["emoji 🎬"], 60000)  # astral: 4 bytes a character
    plain, ours = _peak(json.loads, body), _peak(jsonbody.loads, body)
    assert ours < 0.8 * plain, (ours, plain)


# Bytes for a JSON string's inside: ASCII letters and everything non-ASCII, valid UTF-8 or not.
_STRING_BYTES = st.lists(
    st.one_of(
        st.sampled_from([b"a", b"Z", b" "]),
        st.text(st.characters(min_codepoint=0x80), min_size=1, max_size=2).map(
            lambda s: s.encode("utf-8", "surrogatepass")
        ),
        st.binary(min_size=1, max_size=4).map(lambda b: bytes(byte | 0x80 for byte in b)),
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(inside=_STRING_BYTES, chunk=st.integers(1, 12), bom=st.booleans())
def test_pieces_cut_anywhere_read_as_the_whole_body_decoded(inside: bytes, chunk: int, bom: bool) -> None:
    """However the pieces fall, the ASCII text says what UTF-8 decoding with replacement says: a
    cut never splits a character, nor one replacement character into two."""
    body = (codecs.BOM_UTF8 if bom else b"") + b'["' + inside + b'"]'
    pieces = list(jsonbody.ascii_pieces(body, chunk))
    assert all(piece.isascii() for piece in pieces)
    assert json.loads("".join(pieces)) == [inside.decode("utf-8", "replace")]
