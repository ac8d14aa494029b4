"""The --web.config.file parser: exporter-toolkit's format, strict, every error naming its key."""

from __future__ import annotations

import ssl
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from qbt_exporter.webconfig import (
    HEADERS,
    NO_CLIENT_CERT,
    REQUIRE_AND_VERIFY_CLIENT_CERT,
    VERIFY_CLIENT_CERT_IF_GIVEN,
    RateLimit,
    TLSSettings,
    WebConfig,
    WebConfigError,
    key_name,
    parse,
)

HASH = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"  # exporter-toolkit's docs
HERE = Path("/etc/qbt")

# exporter-toolkit's own docs/web-config.yml, as a node_exporter user has it (paths aside)
TOOLKIT_SAMPLE = f"""
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: /etc/pki/clients.pem
  client_allowed_sans: [prometheus.example.org, "::1"]
  min_version: TLS12
  max_version: TLS13
  cipher_suites:
    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    - TLS_AES_128_GCM_SHA256
  prefer_server_cipher_suites: false
http_server_config:
  http2: false
  headers:
    X-Frame-Options: sameorigin
    X-Content-Type-Options: nosniff
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  alice: {HASH}
  "bob smith": {HASH.replace("$2y$", "$2b$")}
rate_limit:
  interval: 1m30s
  burst: 5
"""


def test_an_empty_file_is_plain_http_open_to_all() -> None:
    assert parse("", HERE) == WebConfig()
    assert parse("# nothing\n", HERE) == WebConfig()
    assert parse("tls_server_config:\nbasic_auth_users:\n", HERE) == WebConfig()


def test_exporter_toolkits_sample_is_read_whole() -> None:
    config = parse(TOOLKIT_SAMPLE, HERE)
    assert config.tls == TLSSettings(
        cert_file="/etc/qbt/server.crt",  # relative to the file's directory, as exporter-toolkit does
        key_file="/etc/qbt/server.key",
        client_auth=REQUIRE_AND_VERIFY_CLIENT_CERT,
        client_ca_file="/etc/pki/clients.pem",
        min_version=ssl.TLSVersion.TLSv1_2,
        max_version=ssl.TLSVersion.TLSv1_3,
        ciphers=("ECDHE-RSA-AES128-GCM-SHA256",),  # the TLS 1.3 suite is always on, as in Go
        prefer_server_ciphers=False,
        allowed_sans=("prometheus.example.org", "::1"),
    )
    assert config.users == {"alice": HASH.encode(), "bob smith": HASH.replace("$2y$", "$2b$").encode()}
    assert config.headers == (
        ("Strict-Transport-Security", "max-age=31536000"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "sameorigin"),
    )
    assert config.rate_limit == RateLimit(interval=90.0, burst=5)


def test_defaults_of_tls_server_config() -> None:
    tls = parse("tls_server_config: {cert_file: c.pem, key_file: k.pem}", HERE).tls
    assert tls == TLSSettings(cert_file="/etc/qbt/c.pem", key_file="/etc/qbt/k.pem")
    assert (tls.client_auth, tls.min_version, tls.prefer_server_ciphers) == (
        NO_CLIENT_CERT,
        ssl.TLSVersion.TLSv1_2,
        True,
    )


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ("NoClientCert", NO_CLIENT_CERT),
        ("RequestClientCert", "RequestClientCert"),
        ("VerifyClientCertIfGiven", VERIFY_CLIENT_CERT_IF_GIVEN),
        ("RequireAndVerifyClientCert", REQUIRE_AND_VERIFY_CLIENT_CERT),
    ],
)
def test_client_auth_types(auth: str, expected: str) -> None:
    ca = "" if auth in ("NoClientCert", "RequestClientCert") else "client_ca_file: ca.pem\n  "
    text = f"tls_server_config:\n  cert_file: c\n  key_file: k\n  {ca}client_auth_type: {auth}\n"
    tls = parse(text, HERE).tls
    assert tls is not None and tls.client_auth == expected


TLS = "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tls_server_config:\n  cert_fil: c.pem\n", "tls_server_config.cert_fil: unknown key"),
        ("tls_server_configs: {}\n", "tls_server_configs: unknown key"),
        ("basic_auth_user: {}\n", "basic_auth_user: unknown key"),
        ("- a list\n", "the file: must be a mapping"),
        ("just words\n", "the file: must be a mapping"),
        ("tls_server_config: [1]\n", "tls_server_config: must be a mapping"),
        ("tls_server_config:\n  key_file: k.pem\n", "tls_server_config.cert_file: missing"),
        ("tls_server_config:\n  cert_file: c.pem\n", "tls_server_config.key_file: missing"),
        (
            "tls_server_config:\n  cert_file: 12\n  key_file: k\n",
            "tls_server_config.cert_file: must be a string",
        ),
        (
            TLS + "  client_auth_type: Sometimes\n",
            "tls_server_config.client_auth_type: 'Sometimes' is not one",
        ),
        (TLS + "  client_auth_type: RequireAnyClientCert\n", "tls_server_config.client_auth_type: Require"),
        (TLS + "  client_auth_type: RequireClientCert\n", "tls_server_config.client_auth_type: Require"),
        (TLS + "  client_ca_file: ca.pem\n", "tls_server_config.client_auth_type: a client CA"),
        (
            TLS + "  client_auth_type: RequireAndVerifyClientCert\n",
            "tls_server_config.client_ca_file: missing",
        ),
        (TLS + "  client_auth_type: VerifyClientCertIfGiven\n", "tls_server_config.client_ca_file: missing"),
        (TLS + "  min_version: TLS14\n", "tls_server_config.min_version: 'TLS14' is not one of"),
        (TLS + "  max_version: 1.2\n", "tls_server_config.max_version: must be a string"),
        (
            TLS + "  min_version: TLS13\n  max_version: TLS12\n",
            "tls_server_config.min_version: TLS13 is above",
        ),
        (
            TLS + "  cipher_suites: [TLS_FAKE_WITH_NOTHING]\n",
            "tls_server_config.cipher_suites: unknown cipher",
        ),
        (
            TLS + "  cipher_suites: TLS_AES_128_GCM_SHA256\n",
            "tls_server_config.cipher_suites: must be a list",
        ),
        (
            TLS + "  prefer_server_cipher_suites: yes please\n",
            "tls_server_config.prefer_server_cipher_suites:",
        ),
        (TLS + "  curve_preferences: [X25519]\n", "tls_server_config.curve_preferences: not supported"),
        (
            TLS + "  client_allowed_sans: [a]\n",
            "tls_server_config.client_allowed_sans: needs client_auth_type",
        ),
        (
            TLS + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca\n"
            "  client_allowed_sans: [a]\n",
            "tls_server_config.client_allowed_sans: needs client_auth_type",
        ),
        (TLS + "  client_allowed_sans: a\n", "tls_server_config.client_allowed_sans: must be a list"),
        ("tls_server_config:\n  cert: PEM\n  key_file: k\n", "tls_server_config.cert: inline"),
        (TLS + "  key: PEM\n", "tls_server_config.key: inline"),
        (TLS + "  client_ca: PEM\n  client_ca_file: ca\n", "tls_server_config.client_ca: give client_ca or"),
        ("http_server_config:\n  http3: true\n", "http_server_config.http3: unknown key"),
        ("http_server_config:\n  http2: sometimes\n", "http_server_config.http2: must be true or false"),
        (
            "http_server_config:\n  headers:\n    Server: me\n",
            "http_server_config.headers.Server: unknown key",
        ),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "http_server_config.headers.X-Fr"),
        (
            "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
            "http_server_config.headers.X-Co",
        ),
        (
            'http_server_config:\n  headers:\n    Content-Security-Policy: "a\\r\\nSet-Cookie: x"\n',
            "http_server_config.headers.Content-Security-Policy: must be printable ASCII",
        ),
        ("basic_auth_users: [alice]\n", "basic_auth_users: must be a mapping"),
        ("basic_auth_users:\n  alice: secret\n", "basic_auth_users.alice: not a bcrypt hash"),
        ("basic_auth_users:\n  alice:\n", "basic_auth_users.alice: not a bcrypt hash"),
        (f"basic_auth_users:\n  alice: '{HASH[:-1]}'\n", "basic_auth_users.alice: not a bcrypt hash"),
        (f"basic_auth_users:\n  123: '{HASH}'\n", "basic_auth_users.123: a user name must be a string"),
        (f"basic_auth_users:\n  'a:b': '{HASH}'\n", "basic_auth_users.'a:b': a user name cannot contain ':'"),
        (
            f"basic_auth_users:\n  alice: '{HASH.replace('$10$', '$03$')}'\n",
            "basic_auth_users.alice: bcrypt cost",
        ),
        (
            f"basic_auth_users:\n  alice: '{HASH.replace('$10$', '$32$')}'\n",
            "basic_auth_users.alice: bcrypt cost",
        ),
        ("rate_limit:\n  interval: soon\n  burst: 1\n", "rate_limit.interval: 'soon' is not a duration"),
        ("rate_limit:\n  interval: 1s\n", "rate_limit.burst: must be at least 1"),
        ("rate_limit:\n  interval: 1s\n  burst: -1\n", "rate_limit.burst: must be a whole number"),
        ("rate_limit:\n  every: 1s\n", "rate_limit.every: unknown key"),
        (
            "basic_auth_users: {}\nbasic_auth_users: {}\n",
            "not valid YAML (line 2, column 1): 'basic_auth_users' is",
        ),
        ("tls_server_config: {cert_file: a\n", "not valid YAML"),
        ("\tkey: value\n", "not valid YAML"),
    ],
)
def test_each_bad_value_is_refused_naming_its_key(text: str, key: str) -> None:
    with pytest.raises(WebConfigError) as raised:
        parse(text, HERE)
    assert str(raised.value).startswith(key), str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_hash_is_never_echoed_in_an_error() -> None:
    with pytest.raises(WebConfigError) as raised:
        parse("basic_auth_users:\n  alice: $2y$10$tooShortToBeAHashButSecretish\n", HERE)
    assert "tooShort" not in str(raised.value)


def test_rate_limit_zero_is_off_and_go_durations_are_read() -> None:
    assert parse("rate_limit:\n  interval: 0\n  burst: 0\n", HERE).rate_limit is None
    assert parse("rate_limit:\n  interval: 250ms\n  burst: 2\n", HERE).rate_limit == RateLimit(0.25, 2)
    assert parse("rate_limit:\n  interval: 1000000000\n  burst: 1\n", HERE).rate_limit == RateLimit(1.0, 1)


def test_every_header_exporter_toolkit_allows_is_allowed() -> None:
    lines = "".join(f"    {name}: {(allowed or ('x',))[0]}\n" for name, allowed in HEADERS.items())
    assert len(parse(f"http_server_config:\n  headers:\n{lines}", HERE).headers) == len(HEADERS)


def test_non_ascii_user_names_are_kept() -> None:
    assert list(parse(f"basic_auth_users:\n  zoë: '{HASH}'\n", HERE).users) == ["zoë"]


# --- arbitrary input ---------------------------------------------------------------------------

KEYS = [
    "tls_server_config", "http_server_config", "basic_auth_users", "rate_limit", "cert_file", "key_file",
    "client_auth_type", "client_ca_file", "min_version", "max_version", "cipher_suites", "headers",
    "prefer_server_cipher_suites", "http2", "interval", "burst", "X-Frame-Options", "alice", "client_ca",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True),
    st.sampled_from(["TLS12", "TLS13", "RequireAndVerifyClientCert", "deny", "1s", HASH, "c.pem", ""]),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(KEYS) | st.text(string.printable, max_size=8) | st.integers(), inner, max_size=5
        )
    ),
    max_leaves=20,
)


def _keys_in(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            found.add(key_name(key))
            found |= _keys_in(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _keys_in(inner)
    return found


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS[:4]) | st.text(max_size=6), VALUES, max_size=4))
def test_arbitrary_yaml_is_a_config_or_an_error_naming_a_key_never_a_crash(document: dict[Any, Any]) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    try:
        parse(text, HERE)
    except WebConfigError as err:
        message = str(err)
        # the keys as YAML reads them back (a NEL in a key comes back as a space)
        keys = {"the file", *_keys_in(yaml.safe_load(text))}
        assert any(message.startswith((f"{key}: ", f"{key}.")) for key in keys), message
        assert "\n" not in message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_a_config_or_a_web_config_error(text: str) -> None:
    try:
        parse(text, HERE)
    except WebConfigError as err:
        assert "\n" not in str(err)
