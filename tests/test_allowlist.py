"""The /probe allow list: what a target is, and which targets a module's credentials may go to.

The tricky URLs are the ones where a lenient parser and the HTTP library disagree about the host:
user info, IDN look-alikes, IPv6, numeric IPv4 spellings, trailing dots, case. Each is either
refused outright or normalised to the one host the exporter will actually connect to.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from qbt_exporter.allowlist import Target, TargetError, allowed, parse_rule, parse_target


def rules(*texts: str) -> tuple:
    return tuple(parse_rule(text) for text in texts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://qbt.lan:8080", Target("http", "qbt.lan", 8080, "")),
        ("HTTP://QBT.Lan:8080/", Target("http", "qbt.lan", 8080, "")),
        ("http://qbt.lan.:8080", Target("http", "qbt.lan", 8080, "")),  # one trailing dot: same name
        ("http://qbt.lan", Target("http", "qbt.lan", 80, "")),
        ("https://qbt.lan", Target("https", "qbt.lan", 443, "")),
        ("https://qbt.lan/qbittorrent/", Target("https", "qbt.lan", 443, "/qbittorrent")),
        ("http://[::1]:8080", Target("http", "::1", 8080, "")),
        ("http://[0:0:0:0:0:0:0:1]:8080", Target("http", "::1", 8080, "")),
        ("http://[FD00::A]", Target("http", "fd00::a", 80, "")),
        ("http://127.0.0.1:8080", Target("http", "127.0.0.1", 8080, "")),
        ("http://bücher.example", Target("http", "xn--bcher-kva.example", 80, "")),
        ("http://BÜCHER.example", Target("http", "xn--bcher-kva.example", 80, "")),
        ("http://allowed\uff0eexample", Target("http", "allowed.example", 80, "")),  # full-width dot
        ("http://qbt_1.lan", Target("http", "qbt_1.lan", 80, "")),  # docker service names
    ],
)
def test_targets_are_normalised_to_the_host_that_is_contacted(text: str, expected: Target) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "http://allowed.example@evil/",  # the host is evil
        "http://user:pass@allowed.example/",
        "http://allowed.example:80@evil:8080/",
        "http://allowed.example/@evil",
        "http://allowed.example\\@evil/",
        "http://allowed.example#@evil/",
        "http://allowed.example?@evil/",
        "http://allowed.example /",
        "http://allowed.example\t/",
        "http://allowed.example\n.evil/",
        "ftp://allowed.example/",
        "allowed.example:8080",
        "//allowed.example/",
        "http://",
        "http:///path",
        "http://:8080",
        "http://allowed.example:0",
        "http://allowed.example:65536",
        "http://allowed.example:+80",
        "http://allowed.example:８０",  # full-width digits
        "http://allowed.example:",
        "http://[::1",
        "http://[::1]x",
        "http://[evil.example]",
        "http://[fe80::1%25eth0]",
        "http://fe80::1",  # IPv6 without brackets
        "http://allowed%2eexample/",
        "http://2130706433/",  # 127.0.0.1 to the resolver
        "http://0x7f.1/",
        "http://127.1/",
        "http://127.000.0.1/",
        "http://allowed..example/",
        "http://allowed.example../",
        "http://-allowed.example/",
        "http://allowed.example/a/../b",
        "http://allowed.example/a/%2E%2E/b",
        "http://allowed.example/./b",
        "http://xn--zz.example/",  # invalid punycode
        "http://" + "a" * 64 + ".example/",
        "http://allowed.example/" + "a" * 3000,
    ],
)
def test_tricky_targets_are_refused(text: str) -> None:
    with pytest.raises(TargetError):
        parse_target(text)


def test_the_host_checked_is_the_host_urllib3_connects_to() -> None:
    """The exporter connects to ``target.url``; the HTTP library must read the same host from it."""
    for text in ("http://bücher.example:8080/q", "http://[FD00::A]:81", "HTTPS://QBT.LAN.", "http://qbt.lan"):
        target = parse_target(text)
        parsed = parse_url(target.url)
        assert parsed.host in (target.host, f"[{target.host}]")
        assert (parsed.port or {"http": 80, "https": 443}[target.scheme]) == target.port


@pytest.mark.parametrize(
    ("rule", "target", "expected"),
    [
        # exact URLs: scheme, host, port and path all count
        ("http://qbt.lan:8080", "http://QBT.lan.:8080/", True),
        ("http://qbt.lan:8080", "https://qbt.lan:8080", False),
        ("http://qbt.lan:8080", "http://qbt.lan:8081", False),
        ("http://qbt.lan:8080", "http://qbt.lan:8080/other", False),
        ("https://proxy.lan/qbt", "https://proxy.lan/qbt/", True),
        ("https://proxy.lan/qbt", "https://proxy.lan/QBT", False),  # paths are case-sensitive
        ("https://proxy.lan/qbt", "https://proxy.lan/qbt2", False),
        ("https://proxy.lan/qbt", "https://proxy.lan:443/qbt", True),
        ("http://qbt.lan", "http://qbt.lan:80", True),
        # host patterns
        ("qbt.lan", "http://qbt.lan:8080", True),
        ("qbt.lan", "https://qbt.lan/any/path", True),
        ("qbt.lan", "http://qbt.lan.evil.example", False),
        ("qbt.lan", "http://evilqbt.lan", False),
        ("qbt.lan:8080", "http://qbt.lan:8080", True),
        ("qbt.lan:8080", "http://qbt.lan:8081", False),
        ("qbt.lan:8080", "http://qbt.lan", False),
        ("*.lan", "http://qbt.lan:8080", True),
        ("*.lan", "http://a.b.lan", True),
        ("*.lan", "http://lan", False),  # the domain itself is not under itself
        ("*.lan", "http://evil-lan", False),
        ("*.lan", "http://qbt.lan.evil", False),
        ("*.home.arpa:8080", "http://qbt.home.arpa:8080", True),
        ("*.home.arpa:8080", "http://qbt.home.arpa:9090", False),
        ("*.bücher.example", "http://qbt.xn--bcher-kva.example", True),
        ("127.0.0.1", "http://127.0.0.1:8080", True),
        ("127.0.0.1", "http://[::ffff:127.0.0.1]:8080", False),  # another spelling is another host
        ("[::1]:8080", "http://[0::1]:8080", True),
        ("[::1]", "http://[::2]:8080", False),
        ("QBT.LAN", "http://qbt.lan", True),
        ("qbt.lan.", "http://qbt.lan", True),
    ],
)
def test_allow_rules(rule: str, target: str, expected: bool) -> None:
    assert allowed(rules(rule), parse_target(target)) is expected


def test_the_classic_userinfo_trick_never_reaches_an_allow_check() -> None:
    """``http://allowed.example@evil/`` must not pass for allowed.example: it is refused as a target."""
    with pytest.raises(TargetError, match="user info"):
        parse_target("http://allowed.example@evil/")


@pytest.mark.parametrize(
    "rule",
    [
        "*",
        "*:8080",
        "*.",
        "qbt.*.lan",
        "q*t.lan",
        "*.127.0.0.1",
        "http://",
        "qbt.lan/path",
        "user@qbt.lan",
        "",
        "qbt lan",
        "[::1",
        "qbt.lan:99999",
        "*.*.lan",
    ],
)
def test_bad_rules_are_refused(rule: str) -> None:
    with pytest.raises(TargetError):
        parse_rule(rule)


LOADED = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


@LOADED
@given(st.text(max_size=80))
def test_any_text_is_a_target_or_a_target_error(text: str) -> None:
    try:
        target = parse_target(text)
    except TargetError:
        return
    assert parse_target(target.url) == target  # canonical form is stable
    assert "@" not in target.url


@LOADED
@given(st.text(max_size=40))
def test_any_text_is_a_rule_or_a_target_error(text: str) -> None:
    with contextlib.suppress(TargetError):
        parse_rule(text)
