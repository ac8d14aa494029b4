"""The exporter's own HTTPS: an ``ssl.SSLContext`` from ``tls_server_config`` (or the
``--web.tls-cert-file``/``--web.tls-key-file`` shorthand, which is the same thing with defaults).

Building the context is also how a certificate, key or CA is checked: a file that does not load
raises WebConfigError naming its key, at start-up (exit 2) and at every reload (the last good
context stays). ``client_auth_type`` maps onto OpenSSL's verify modes:

- NoClientCert, RequestClientCert: no certificate asked for (Go's RequestClientCert asks and never
  checks the answer, so it lets in exactly the same clients);
- VerifyClientCertIfGiven: ``CERT_OPTIONAL``: a client without one gets in, one with a certificate
  the CA did not sign is refused in the handshake;
- RequireAndVerifyClientCert: ``CERT_REQUIRED``: no certificate, or one the CA did not sign, and
  the handshake fails.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable, Mapping
from typing import Any

from qbt_exporter.webconfig import (
    REQUIRE_AND_VERIFY_CLIENT_CERT,
    VERIFY_CLIENT_CERT_IF_GIVEN,
    TLSSettings,
    WebConfigError,
)


def in_file(key: str) -> str:
    """How an error names a key of the file's ``tls_server_config``."""
    return f"tls_server_config.{key}"


def as_flag(key: str) -> str:
    """How an error names a key given by the ``--web.tls-*`` shorthand."""
    return {"key_file": "--web.tls-key-file"}.get(key, "--web.tls-cert-file")


_VERIFY_MODES = {
    VERIFY_CLIENT_CERT_IF_GIVEN: ssl.CERT_OPTIONAL,
    REQUIRE_AND_VERIFY_CLIENT_CERT: ssl.CERT_REQUIRED,
}


def server_context(settings: TLSSettings, name: Callable[[str], str] = in_file) -> ssl.SSLContext:
    """A server context for ``settings``; WebConfigError (naming the key, as ``name`` spells it)
    when a file cannot be read or does not hold what it should."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.minimum_version = settings.min_version
        context.maximum_version = settings.max_version
    except (ValueError, ssl.SSLError) as err:  # a version this OpenSSL was built without
        raise WebConfigError(f"{name('min_version')}: {err}") from None
    for key, path in (("cert_file", settings.cert_file), ("key_file", settings.key_file)):
        try:
            with open(path, "rb"):
                pass
        except OSError as err:
            raise WebConfigError(f"{name(key)}: cannot read {path}: {err.strerror or err}") from None
    try:
        context.load_cert_chain(settings.cert_file, settings.key_file)
    except (ssl.SSLError, OSError) as err:
        raise WebConfigError(
            f"{name('cert_file')}: {settings.cert_file} with key {settings.key_file} does not load as a "
            f"PEM certificate and its private key ({getattr(err, 'reason', None) or err})"
        ) from None
    mode = _VERIFY_MODES.get(settings.client_auth)
    if mode is not None:
        _load_client_ca(context, settings, name)
        context.verify_mode = mode
    if settings.ciphers:
        try:
            context.set_ciphers(":".join(settings.ciphers))
        except ssl.SSLError:
            raise WebConfigError(
                f"{name('cipher_suites')}: this OpenSSL offers none of {', '.join(settings.ciphers)}"
            ) from None
    if settings.prefer_server_ciphers:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def _load_client_ca(context: ssl.SSLContext, settings: TLSSettings, name: Callable[[str], str]) -> None:
    key = name("client_ca_file" if settings.client_ca_file else "client_ca")
    try:
        if settings.client_ca_file:
            context.load_verify_locations(cafile=settings.client_ca_file)
        else:
            context.load_verify_locations(cadata=settings.client_ca)
    except ssl.SSLError as err:  # an OSError too: caught first
        raise WebConfigError(f"{key}: holds no usable PEM certificate ({err.reason or err})") from None
    except OSError as err:
        raise WebConfigError(f"{key}: cannot read {settings.client_ca_file}: {err.strerror or err}") from None
    except ValueError as err:  # cadata that is not PEM text
        raise WebConfigError(f"{key}: holds no usable PEM certificate ({err})") from None
    if not context.cert_store_stats()["x509"]:
        raise WebConfigError(f"{key}: holds no usable PEM certificate")


def peer_allowed(peer: Mapping[str, Any] | None, allowed_sans: tuple[str, ...]) -> bool:
    """``client_allowed_sans``: whether the verified client certificate ``peer`` (as
    ``SSLSocket.getpeercert()`` gives it) names one of ``allowed_sans`` in its subject alternative
    names: DNS, IP (compared as addresses: OpenSSL spells IPv6 in full, Go in short), e-mail, URI.

    Python's ssl has no hook inside the handshake (Go's VerifyPeerCertificate), so this runs on
    each request instead, before anything else: a certificate that names none is answered 403.
    """
    if not allowed_sans:
        return True
    wanted = {_canonical(name) for name in allowed_sans}
    for kind, value in (peer or {}).get("subjectAltName", ()):
        if kind in ("DNS", "IP Address", "email", "URI") and _canonical(value) in wanted:
            return True
    return False


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name.strip()))
    except ValueError:
        return name
