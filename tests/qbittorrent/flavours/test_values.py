"""The wire-value reader: sentinels, locale strings, wrong types, and what gets counted."""

from __future__ import annotations

import math

import pytest

from qbt_exporter.qbittorrent.flavours.common import normalise_tags, tracker_host, usable_hash
from qbt_exporter.qbittorrent.flavours.values import MAX_ETA, NEVER, Reader, parse_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,25", 1.25),  # German decimal comma (global_ratio in a de_DE locale)
        ("1.25", 1.25),
        ("1,234.50", 1234.5),  # English grouping
        ("1.234,50", 1234.5),  # German grouping
        ("1 234,50", 1234.5),  # French, non-breaking space
        ("1\u202f234,50", 1234.5),
        ("1'234.50", 1234.5),  # Swiss
        ("1,234", 1234.0),  # a lone comma before three digits groups (qBittorrent prints 2 decimals)
        ("1,234,567", 1234567.0),
        ("1.234.567", 1234567.0),
        ("-0,50", -0.5),
        ("42", 42.0),
        (" 7 ", 7.0),
        ("", None),
        ("-", None),
        ("abc", None),
        ("nan", None),
        ("inf", None),
        ("1e5", None),
        ("1_000", None),
        ("12%", None),
        ("²", None),
        (".", None),
        ("+", None),
    ],
)
def test_parse_number(text: str, expected: float | None) -> None:
    assert parse_number(text) == expected


def test_numbers_pass_through_and_keep_their_type() -> None:
    r = Reader({"i": 300000, "f": 0.5099999904632568, "neg": -3, "s": "1,25", "si": "17"})
    assert r.number("i") == 300000 and type(r.number("i")) is int
    assert r.number("f") == 0.5099999904632568
    assert r.number("neg") == -3
    assert r.number("s") == 1.25
    assert r.number("si") == 17 and type(r.number("si")) is int
    assert r.invalid == 0


def test_missing_and_null_are_none_but_not_invalid() -> None:
    r = Reader({"n": None})
    assert r.number("absent") is None
    assert r.number("n") is None
    assert r.text("absent") is None
    assert r.flag("absent") is None
    assert r.count("n") is None
    assert r.invalid == 0


def test_dash_is_no_data_not_invalid() -> None:
    r = Reader({"global_ratio": "-"})
    assert r.number("global_ratio") is None
    assert r.invalid == 0


@pytest.mark.parametrize("value", [True, False, [1], {"a": 1}, "garbage", "1,2,3x"])
def test_unreadable_numbers_are_counted(value: object) -> None:
    r = Reader({"x": value})
    assert r.number("x") is None
    assert r.invalid == 1


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_is_invalid(value: float) -> None:
    """Qt writes a non-finite double as null; NaN or infinity on the wire is no quantity (1e400)."""
    r = Reader({"x": value})
    assert r.number("x") is None
    assert r.amount("x") is None
    assert r.count("x") is None
    assert r.timestamp("x") is None
    assert r.invalid == 4


@pytest.mark.parametrize(
    "value", [2**64, -(2**64), 10**400, -(10**400), 1e20, -1e300, "1" + "0" * 20, "9" * 400]
)
def test_numbers_wider_than_64_bits_are_invalid(value: object) -> None:
    """Nothing qBittorrent counts is wider than 64 bits; float() of a 400-digit int overflows."""
    r = Reader({"x": value})
    assert r.number("x") is None
    assert r.amount("x") is None
    assert r.count("x") is None
    assert r.invalid == 3


def test_the_widest_64_bit_values_are_kept() -> None:
    r = Reader({"u": 2**64 - 1, "s": -(2**63), "f": 1.8e19})
    assert r.number("u") == 2**64 - 1 and r.number("s") == -(2**63) and r.number("f") == 1.8e19
    assert r.invalid == 0


def test_amount_treats_negative_as_unknown() -> None:
    r = Reader({"minus": -1, "zero": 0, "ratio": 9999})
    assert r.amount("minus") is None
    assert r.amount("zero") == 0
    assert r.amount("ratio") == 9999  # qBittorrent's cap is kept, it still orders torrents
    assert r.invalid == 0


def test_eta_sentinel() -> None:
    r = Reader({"inf": MAX_ETA, "above": MAX_ETA + 1, "neg": -1, "ok": 3600})
    assert r.eta("inf") is None
    assert r.eta("above") is None
    assert r.eta("neg") is None
    assert r.eta("ok") == 3600


@pytest.mark.parametrize("value", [NEVER, NEVER + 1, 0, -1, -3600])
def test_timestamp_sentinels(value: int) -> None:
    assert Reader({"t": value}).timestamp("t") is None


def test_timestamp_value() -> None:
    assert Reader({"t": 1795714660}).timestamp("t") == 1795714660


def test_count() -> None:
    r = Reader({"minus": -1, "f": 3.0, "frac": 2.5, "ok": 12, "s": "4"})
    assert r.count("minus") is None
    assert r.count("f") == 3 and type(r.count("f")) is int
    assert r.count("ok") == 12
    assert r.count("s") == 4
    assert r.invalid == 0
    assert r.count("frac") is None
    assert r.invalid == 1


def test_text() -> None:
    name = 'a "quoted" \\ back\nnew line Ünïcødé 日本語 '
    r = Reader({"name": name, "num": 5})
    assert r.text("name") == name  # never stripped or altered
    assert r.text("num") is None
    assert r.invalid == 1
    assert r.text("missing", required=True) is None
    assert r.invalid == 2


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\ud800b", "a\ufffdb"),
        ("\udfff", "\ufffd"),
        ("\ud800\ud800", "\ufffd\ufffd"),
        ("日本語 \U0001f3ac", "日本語 \U0001f3ac"),
        ("plain", "plain"),
    ],
)
def test_text_is_valid_unicode(raw: str, clean: str) -> None:
    """A lone surrogate (json's reading of an unpaired \\ud800 escape) cannot be encoded as UTF-8."""
    r = Reader({"name": raw})
    assert r.text("name") == clean
    clean.encode("utf-8")
    assert r.invalid == 0


def test_flag() -> None:
    r = Reader({"t": True, "f": False, "one": 1, "s": "true"})
    assert r.flag("t") is True
    assert r.flag("f") is False
    assert r.flag("one") is None
    assert r.flag("s") is None
    assert r.invalid == 2


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://tracker.example.org:6969/announce?passkey=s3cr3t", "tracker.example.org"),
        ("udp://open.tracker.example:1337/announce", "open.tracker.example"),
        ("https://user:pw@Private.Example.NET/abcdef0123/announce", "private.example.net"),
        ("http://[2001:db8::1]:80/announce", "2001:db8::1"),
        ("http://[::1/announce", ""),  # unbalanced bracket: urlsplit raises
        ("not a url", ""),
        ("", ""),
    ],
)
def test_tracker_host_never_leaks_the_path(url: str, host: str) -> None:
    result = tracker_host(url)
    assert result == host
    assert "s3cr3t" not in result and "abcdef" not in result and "pw" not in result


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", ""), ("b, a", "a,b"), (" a ,, b,a ", "a,b"), ("solo", "solo"), (", ,", "")],
)
def test_normalise_tags(raw: str, expected: str) -> None:
    assert normalise_tags(raw) == expected


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("783473f45d4b3d9b4713f2f40a8e77a09bb8fd32", True),
        ("783473F45D4B3D9B4713F2F40A8E77A09BB8FD32", True),
        ("a" * 64, True),
        ("783473f45d4b3d9b4713f2f40a8e77a09bb8fd3", False),
        ("../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaa", False),
        ("g" * 40, False),
        ("", False),
        (None, False),
        (1234, False),
    ],
)
def test_usable_hash(value: object, ok: bool) -> None:
    assert (usable_hash(value) is not None) is ok
