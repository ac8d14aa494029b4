"""The ``--web.config.file``: exporter-toolkit's web configuration, read and checked.

The same YAML a Prometheus user already writes for node_exporter (exporter-toolkit's
``docs/web-configuration.md``): ``tls_server_config``, ``http_server_config``, ``basic_auth_users``
and ``rate_limit``. Like exporter-toolkit (which unmarshals strictly) an unknown key, a wrong type
or a bad value is refused, with one line that starts with the key's path
(``tls_server_config.client_auth_type: ...``): a typo must not silently leave the exporter open.

What Python's ``ssl`` module cannot do is refused at start-up with a line that says so, rather than
accepted and ignored: ``RequireAnyClientCert`` (a certificate required but not verified: OpenSSL
through Python cannot skip the verification), ``curve_preferences`` and the inline
``cert``/``key``. ``RequestClientCert`` is accepted: Go asks for a certificate and neither
requires nor checks it, so every client gets in, exactly as when none is asked for, which is what
the exporter does. ``http_server_config.http2`` is accepted and has no effect: the exporter speaks
HTTP/1.1 only (Prometheus scrapes with HTTP/1.1 unless told otherwise).

This module only parses; ``webtls`` turns the TLS part into an ``ssl.SSLContext`` (which is where a
certificate that does not load is found) and ``webaccess`` keeps the file current.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class WebConfigError(ValueError):
    """The web config cannot be used; the message starts with the key that is wrong."""


# client_auth_type (exporter-toolkit's names, from Go's tls.ClientAuthType) → what the server does
NO_CLIENT_CERT = "NoClientCert"
REQUEST_CLIENT_CERT = "RequestClientCert"
REQUIRE_ANY_CLIENT_CERT = "RequireAnyClientCert"
VERIFY_CLIENT_CERT_IF_GIVEN = "VerifyClientCertIfGiven"
REQUIRE_AND_VERIFY_CLIENT_CERT = "RequireAndVerifyClientCert"
CLIENT_AUTH_TYPES = (
    NO_CLIENT_CERT,
    REQUEST_CLIENT_CERT,
    REQUIRE_ANY_CLIENT_CERT,
    VERIFY_CLIENT_CERT_IF_GIVEN,
    REQUIRE_AND_VERIFY_CLIENT_CERT,
)
_CLIENT_AUTH_ALIASES = {"": NO_CLIENT_CERT, "RequireClientCert": REQUIRE_ANY_CLIENT_CERT}

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# Go's names (crypto/tls CipherSuites(), the secure ones exporter-toolkit accepts) → OpenSSL's.
# Like Go, the list applies to TLS 1.2 and below: TLS 1.3 suites are accepted and not configurable.
CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")

# The headers exporter-toolkit lets a user add, and the values it allows where it restricts them.
HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}

# $2a$/$2b$/$2y$, a two-digit cost, 22 characters of salt and 31 of hash (what htpasswd -B writes)
_BCRYPT = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """``tls_server_config``, paths made absolute (relative ones are from the file's directory)."""

    cert_file: str
    key_file: str
    client_auth: str = NO_CLIENT_CERT
    client_ca_file: str | None = None
    client_ca: str | None = None  # inline PEM
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    ciphers: tuple[str, ...] = ()  # OpenSSL names, for TLS 1.2 and below; () = OpenSSL's defaults
    prefer_server_ciphers: bool = True
    # client_allowed_sans: a verified client certificate must name one of these (DNS, IP, e-mail
    # or URI); () = any certificate the CA signed
    allowed_sans: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        """The files a handshake depends on: a change to any of them means a new context."""
        return tuple(f for f in (self.cert_file, self.key_file, self.client_ca_file) if f)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``rate_limit``: a token bucket, one token every ``interval`` seconds, ``burst`` at most."""

    interval: float
    burst: int


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The whole file; the defaults are an empty file's: plain HTTP, open to all."""

    tls: TLSSettings | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)  # user name → bcrypt hash
    headers: tuple[tuple[str, str], ...] = ()
    rate_limit: RateLimit | None = None


def parse(text: str, directory: Path) -> WebConfig:
    """The config in ``text`` (YAML); relative file names are taken from ``directory``.

    Raises WebConfigError, and only that, for anything that cannot be used.
    """
    try:
        document = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise WebConfigError(f"not valid YAML{at}: {problem}") from None
    except (ValueError, TypeError, RecursionError) as err:  # a few odd documents break PyYAML itself
        raise WebConfigError(f"not valid YAML: {err}") from None
    if document is None:
        return WebConfig()
    top = _mapping(document, "the file")
    _known_keys(top, "", ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"))
    headers = _http_server_config(top.get("http_server_config"))
    return WebConfig(
        tls=_tls_server_config(top.get("tls_server_config"), directory),
        users=_users(top.get("basic_auth_users")),
        headers=headers,
        rate_limit=_rate_limit(top.get("rate_limit")),
    )


def bcrypt_cost(hashed: bytes) -> int:
    """The cost of a hash that ``parse`` accepted."""
    return int(hashed[4:6])


# --- YAML ------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (Go's strict YAML does; PyYAML keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        try:
            duplicate = key in mapping
        except TypeError:  # an unhashable key (a list as a key): refused where it is read
            raise yaml.constructor.ConstructorError(
                None, None, "a key that is a list or a mapping", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"{key!r} is given twice", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)  # type: ignore[no-untyped-call]
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --- pieces ----------------------------------------------------------------------------------


def key_name(key: Any) -> str:
    """A key as an error names it: as written when that is plain, else quoted (a key with a
    newline, a dot or a colon in it must not make the error line ambiguous)."""
    plain = isinstance(key, str) and key.isprintable() and key.strip() == key and key != ""
    return key if plain and not any(c in key for c in ".:") else repr(key)


def _path(parent: str, key: Any) -> str:
    return f"{parent}.{key_name(key)}" if parent else key_name(key)


def _mapping(value: Any, where: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebConfigError(f"{where}: must be a mapping (key: value lines), got {_kind(value)}")
    return value


def _known_keys(mapping: Mapping[Any, Any], where: str, known: tuple[str, ...]) -> None:
    for key in mapping:
        if key not in known:
            raise WebConfigError(f"{_path(where, key)}: unknown key (known: {', '.join(known)})")


def _string(section: Mapping[str, Any], where: str, key: str) -> str:
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebConfigError(f"{_path(where, key)}: must be a string, got {_kind(value)}")
    return value


def _bool(section: Mapping[str, Any], where: str, key: str, default: bool) -> bool:
    value = section.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise WebConfigError(f"{_path(where, key)}: must be true or false, got {_kind(value)}")
    return value


def _strings(section: Mapping[str, Any], where: str, key: str) -> list[str]:
    value = section.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise WebConfigError(f"{_path(where, key)}: must be a list of strings, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}
    return names.get(type(value), "a mapping" if isinstance(value, dict) else type(value).__name__)


def _tls_server_config(raw: Any, directory: Path) -> TLSSettings | None:
    where = "tls_server_config"
    section = _mapping(raw, where)
    _known_keys(
        section,
        where,
        (
            "cert_file",
            "key_file",
            "client_auth_type",
            "client_ca_file",
            "min_version",
            "max_version",
            "cipher_suites",
            "prefer_server_cipher_suites",
            "curve_preferences",
            "client_allowed_sans",
            "cert",
            "key",
            "client_ca",
        ),
    )
    get: Callable[[str], str] = lambda key: _string(section, where, key)  # noqa: E731
    cert_file, key_file, ca_file, client_ca = get("cert_file"), get("key_file"), get("client_ca_file"), None
    for inline, instead in (("cert", "cert_file"), ("key", "key_file")):
        if get(inline):
            raise WebConfigError(
                f"{where}.{inline}: inline certificates and keys are not supported; use {instead}"
            )
    if get("client_ca"):
        client_ca = get("client_ca")
        if ca_file:
            raise WebConfigError(f"{where}.client_ca: give client_ca or client_ca_file, not both")
    if _strings(section, where, "curve_preferences"):
        raise WebConfigError(
            f"{where}.curve_preferences: not supported (Python's ssl module cannot set it); "
            "leave it out to get OpenSSL's defaults (X25519, P-256, P-384, ...)"
        )
    allowed_sans = tuple(_strings(section, where, "client_allowed_sans"))
    auth_text = get("client_auth_type")
    client_auth = _CLIENT_AUTH_ALIASES.get(auth_text, auth_text)
    if client_auth not in CLIENT_AUTH_TYPES:
        raise WebConfigError(
            f"{where}.client_auth_type: {auth_text!r} is not one of {', '.join(CLIENT_AUTH_TYPES)}"
        )
    min_version = _version(section, where, "min_version", ssl.TLSVersion.TLSv1_2)
    max_version = _version(section, where, "max_version", ssl.TLSVersion.TLSv1_3)
    ciphers = _ciphers(_strings(section, where, "cipher_suites"))
    prefer = _bool(section, where, "prefer_server_cipher_suites", True)
    if not (cert_file or key_file or ca_file or client_ca or auth_text):
        return None  # present but empty: plain HTTP, as exporter-toolkit does
    if not cert_file:
        raise WebConfigError(f"{where}.cert_file: missing (TLS needs cert_file and key_file)")
    if not key_file:
        raise WebConfigError(f"{where}.key_file: missing (TLS needs cert_file and key_file)")
    if client_auth == REQUIRE_ANY_CLIENT_CERT:
        raise WebConfigError(
            f"{where}.client_auth_type: {auth_text} (a certificate required but never checked) cannot be "
            "done with Python's ssl module; use RequireAndVerifyClientCert with client_ca_file"
        )
    has_ca = bool(ca_file or client_ca)
    if has_ca and client_auth == NO_CLIENT_CERT:
        raise WebConfigError(
            f"{where}.client_auth_type: a client CA is given but client_auth_type is NoClientCert "
            "(use RequireAndVerifyClientCert)"
        )
    if not has_ca and client_auth in (VERIFY_CLIENT_CERT_IF_GIVEN, REQUIRE_AND_VERIFY_CLIENT_CERT):
        raise WebConfigError(f"{where}.client_ca_file: missing ({client_auth} checks clients against it)")
    if allowed_sans and client_auth != REQUIRE_AND_VERIFY_CLIENT_CERT:
        raise WebConfigError(
            f"{where}.client_allowed_sans: needs client_auth_type RequireAndVerifyClientCert "
            "(with any other, a client may show no certificate to match)"
        )
    if min_version > max_version:
        raise WebConfigError(f"{where}.min_version: {get('min_version')} is above max_version")
    return TLSSettings(
        cert_file=str(directory / cert_file),
        key_file=str(directory / key_file),
        client_auth=client_auth,
        client_ca_file=str(directory / ca_file) if ca_file else None,
        client_ca=client_ca,
        min_version=min_version,
        max_version=max_version,
        ciphers=ciphers,
        prefer_server_ciphers=prefer,
        allowed_sans=allowed_sans,
    )


def _version(section: Mapping[str, Any], where: str, key: str, default: ssl.TLSVersion) -> ssl.TLSVersion:
    text = _string(section, where, key)
    if not text:
        return default
    if text not in TLS_VERSIONS:
        raise WebConfigError(f"{where}.{key}: {text!r} is not one of {', '.join(TLS_VERSIONS)}")
    return TLS_VERSIONS[text]


def _ciphers(names: list[str]) -> tuple[str, ...]:
    openssl: list[str] = []
    for name in names:
        if name in TLS13_SUITES:
            continue  # as in Go: TLS 1.3 suites are always on
        if name not in CIPHER_SUITES:
            raise WebConfigError(
                f"tls_server_config.cipher_suites: unknown cipher {name!r} (Go's names, such as "
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
            )
        openssl.append(CIPHER_SUITES[name])
    return tuple(openssl)


def _http_server_config(raw: Any) -> tuple[tuple[str, str], ...]:
    where = "http_server_config"
    section = _mapping(raw, where)
    _known_keys(section, where, ("http2", "headers"))
    _bool(section, where, "http2", True)  # checked, then unused: HTTP/1.1 only
    headers = _mapping(section.get("headers"), f"{where}.headers")
    _known_keys(headers, f"{where}.headers", tuple(HEADERS))
    chosen: list[tuple[str, str]] = []
    for name, allowed in HEADERS.items():
        value = _string(headers, f"{where}.headers", name)
        if not value:
            continue  # blank: unset, as in exporter-toolkit
        if allowed and value not in allowed:
            raise WebConfigError(f"{where}.headers.{name}: {value!r} is not one of {', '.join(allowed)}")
        if not value.isprintable() or not value.isascii():
            raise WebConfigError(f"{where}.headers.{name}: must be printable ASCII on one line")
        chosen.append((name, value))
    return tuple(chosen)


def _users(raw: Any) -> dict[str, bytes]:
    where = "basic_auth_users"
    users: dict[str, bytes] = {}
    for name, hashed in _mapping(raw, where).items():
        if not isinstance(name, str):
            raise WebConfigError(f"{_path(where, name)}: a user name must be a string (put it in quotes)")
        if ":" in name:
            raise WebConfigError(
                f"{_path(where, name)}: a user name cannot contain ':' (Basic auth splits on it)"
            )
        if not isinstance(hashed, str) or not _BCRYPT.match(hashed):
            raise WebConfigError(
                f"{_path(where, name)}: not a bcrypt hash (such as $2y$10$ and 53 more characters; "
                "make one with: htpasswd -nBC 10 '' | tr -d ':\\n')"
            )
        if not 4 <= int(hashed[4:6]) <= 31:
            raise WebConfigError(f"{_path(where, name)}: bcrypt cost {hashed[4:6]} is not between 04 and 31")
        users[name] = hashed.encode("ascii")
    return users


def _rate_limit(raw: Any) -> RateLimit | None:
    where = "rate_limit"
    section = _mapping(raw, where)
    _known_keys(section, where, ("interval", "burst"))
    interval = _go_duration(section.get("interval"), f"{where}.interval")
    burst = section.get("burst", 0)
    if burst is None:
        burst = 0
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        raise WebConfigError(f"{where}.burst: must be a whole number of at least 0")
    if interval == 0:
        return None  # 0 turns the limiter off, as in exporter-toolkit
    if burst < 1:
        raise WebConfigError(f"{where}.burst: must be at least 1 when interval is set (0 lets nothing in)")
    return RateLimit(interval=interval, burst=burst)


def _go_duration(value: Any, where: str) -> float:
    """Seconds from a Go duration (``1s``, ``1m30s``, ``250ms``); a bare number is nanoseconds."""
    if value is None:
        return 0.0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value * 1e-9
    text = value if isinstance(value, str) else ""
    if text == "0":
        return 0.0
    pieces = _GO_DURATION.findall(text)
    if not text or "".join(number + unit for number, unit in pieces) != text:
        raise WebConfigError(f"{where}: {value!r} is not a duration (examples: 1s, 250ms, 1m30s)")
    return sum(float(number) * _GO_UNITS[unit] for number, unit in pieces)
