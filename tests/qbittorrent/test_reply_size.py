"""``--qbittorrent.max-reply-size``: its parsing, its default, and the cap in ``replybody.read_capped``."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from qbt_exporter.config import ConfigError, parse, parse_size
from qbt_exporter.qbittorrent import replybody
from qbt_exporter.qbittorrent.client import DEFAULT_MAX_REPLY_SIZE
from qbt_exporter.qbittorrent.errors import BadResponse, TooLarge
from qbt_exporter.qbittorrent.replybody import CHUNK, read_capped
from tests.recording import load


# --- the flag ----------------------------------------------------------------------------------
def test_sizes_in_every_documented_spelling() -> None:
    assert parse_size("256MiB") == 256 * 2**20
    assert parse_size("64MB") == 64_000_000
    assert parse_size("500KiB") == 512_000
    assert parse_size("1048576") == 1_048_576
    assert parse_size(" 1.5 gib ") == 3 * 2**29


def test_default_and_environment() -> None:
    assert parse([], environ={}).max_reply_size == DEFAULT_MAX_REPLY_SIZE == 256 * 2**20
    assert parse([], environ={"QBITTORRENT_MAX_REPLY_SIZE": "64MB"}).max_reply_size == 64_000_000
    flagged = parse(["--qbittorrent.max-reply-size", "500KiB"], environ={"QBITTORRENT_MAX_REPLY_SIZE": "1GB"})
    assert flagged.max_reply_size == 512_000


@pytest.mark.parametrize("text", ["lots", "64 MBs", "-5MB", "0", "12TB", "", "1e9"])
def test_a_bad_size_names_the_flag(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^--qbittorrent\.max-reply-size: "):
        parse([f"--qbittorrent.max-reply-size={text}"], environ={})


def long_named(item: dict[str, Any], name: str) -> dict[str, Any]:
    """``item`` with ``name`` wherever qBittorrent repeats the name: name, content_path, magnet dn."""
    old = item["name"]
    out = dict(item, name=name)
    if "content_path" in out:
        out["content_path"] = out["content_path"].replace(old, name)
    if "magnet_uri" in out:
        out["magnet_uri"] = (
            out["magnet_uri"]
            .replace(quote(old, safe="").lower(), "")
            .replace("&dn=", "&dn=" + quote(name, safe=""), 1)
        )
    return out


def wire_bytes(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def test_the_default_holds_100000_torrents_with_255_byte_names() -> None:
    """The README's arithmetic: the largest per-torrent size in the recorded lists with the longest
    name a file system allows (255 bytes, all of them 3-byte UTF-8), times 100,000."""
    name = "名" * 85  # 255 bytes of UTF-8, 765 once percent-encoded in the magnet link
    maindata = load("4.5.2", "14-sync-maindata-rid0").json()
    per_torrent = [
        wire_bytes({torrent_hash: long_named(item, name)}) + 1
        for torrent_hash, item in maindata["torrents"].items()
    ]
    # /sync/maindata also lists each torrent's hash once per tracker it uses
    per_tracker = wire_bytes(next(iter(maindata["torrents"]))) + 1
    legacy = [wire_bytes(long_named(item, name)) + 1 for item in load("4.0.4", "44-torrents-all").json()]
    info = [wire_bytes(long_named(item, name)) + 1 for item in load("4.5.2", "11-torrents-info").json()]
    worst = max(max(per_torrent) + 2 * per_tracker, max(legacy), max(info))

    assert 2000 < worst < 2700  # README: 2,412 bytes at most
    assert 100_000 * worst <= DEFAULT_MAX_REPLY_SIZE


# --- accept_encoding ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080", "identity"),
        ("http://127.3.2.1:8080/qbt/", "identity"),  # all of 127.0.0.0/8, behind a path prefix
        ("http://[::1]:8080", "identity"),
        ("http://[::ffff:127.0.0.1]:8080", "identity"),
        ("https://LocalHost:8443", "identity"),
        ("http://qbittorrent:8080", "gzip, deflate"),  # a compose service: another container
        ("http://192.168.1.20:8080", "gzip, deflate"),
        ("http://[2001:db8::1]:8080", "gzip, deflate"),
        ("http://localhost.example:8080", "gzip, deflate"),
        ("http://0.0.0.0:8080", "gzip, deflate"),
    ],
)
def test_plain_replies_are_asked_for_only_from_loopback(url: str, expected: str) -> None:
    assert replybody.accept_encoding(url) == expected
    assert replybody.accept_encoding(url, proxied=True) == "gzip, deflate"


# --- read_capped ---------------------------------------------------------------------------------
@pytest.fixture(params=["isal", "zlib"])
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every reading test runs with ISA-L's inflater (where installed) and with zlib's."""
    if request.param == "zlib":
        monkeypatch.setattr(replybody, "isal_zlib", None)
    else:
        assert replybody.isal_zlib is not None, "isal is a dependency on this platform (pyproject)"
    expected = "isal_zlib" if request.param == "isal" else "zlib"
    assert type(replybody.decompressobj(31)).__module__ == expected
    return str(request.param)


def reader(body: bytes) -> tuple[Callable[[int], bytes], list[int]]:
    """A ``read`` over ``body`` that records how many bytes each call returned."""
    taken: list[int] = []
    position = 0

    def read(n: int) -> bytes:
        nonlocal position
        piece = body[position : position + n]
        position += len(piece)
        taken.append(len(piece))
        return piece

    return read, taken


def capped(body: bytes, limit: int, coding: str | None = None, length: str | None = None) -> bytes:
    read, _ = reader(body)
    return read_capped(
        read,
        limit=limit,
        content_encoding=coding,
        content_length=length,
        before_each_read=lambda: None,
        what="GET /x",
    )


def test_exactly_the_cap_passes_one_byte_more_fails(inflater: str) -> None:
    body = b"a" * 300_000
    assert capped(body, 300_000) == body
    assert capped(gzip.compress(body), 300_000, "gzip") == body
    with pytest.raises(TooLarge, match="larger than 299999 bytes"):
        capped(body, 299_999)
    with pytest.raises(TooLarge):
        capped(gzip.compress(body), 299_999, "gzip")
    with pytest.raises(TooLarge):
        capped(b"", 10, length="11")


def test_a_bomb_is_inflated_no_further_than_the_cap(inflater: str) -> None:
    inflated: list[int] = []
    real = replybody.decompressobj

    class Spy:
        def __init__(self, wbits: int) -> None:
            self._inner = real(wbits)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self._inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    bomb = gzip.compress(bytes(50 * 2**20), compresslevel=9)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(replybody, "decompressobj", Spy)
        read, taken = reader(bomb)
        with pytest.raises(TooLarge):
            read_capped(
                read, limit=2**20, content_encoding="gzip", content_length=None,
                before_each_read=lambda: None, what="GET /bomb",
            )  # fmt: skip

    assert sum(inflated) == 2**20 + 1  # one byte over the cap proves it; the other 49 MB never exist
    assert sum(taken) <= CHUNK


def test_a_corrupt_gzip_body_is_a_bad_response(inflater: str) -> None:
    with pytest.raises(BadResponse, match="corrupt gzip"):
        capped(b"\x1f\x8b\x08\x00garbage-garbage", 1000, "gzip")


def test_before_each_read_can_stop_the_reading(inflater: str) -> None:
    calls = 0

    def stop_at_third() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise TimeoutError

    read, taken = reader(b"z" * (5 * CHUNK))
    with pytest.raises(TimeoutError):
        read_capped(
            read, limit=10 * CHUNK, content_encoding=None, content_length=None,
            before_each_read=stop_at_third, what="GET /x",
        )  # fmt: skip
    assert taken == [CHUNK, CHUNK]
