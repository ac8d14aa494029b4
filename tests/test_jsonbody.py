import json
import tracemalloc

import pytest

from qbt_exporter import jsonbody

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
        b'[{"name":"' + b"\xff\xfe" + b"x" * jsonbody.SMALL + b'"}]',  # not UTF-8
        b"<html>" + "é".encode() * jsonbody.SMALL + b"</html>",  # an error page
    ],
)
def test_bad_bodies_raise_value_error_like_json_loads(body: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(ValueError):
        jsonbody.loads(body)


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
