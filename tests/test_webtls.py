"""The exporter's own HTTPS from tls_server_config, over real sockets on 127.0.0.1: client
certificates in each mode, TLS versions, cipher suites, certificate rotation without a restart,
and the start-up errors (exit 2, one line naming the key or the flags)."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from qbt_exporter.config import ConfigError, parse
from qbt_exporter.webaccess import WebAccess
from qbt_exporter.webtls import peer_allowed
from tests.pki import Pair, authority, issue
from tests.test_webaccess import serving
from tests.webtools import ANSWER_WITHIN

OPENSSL_ERRORS = (requests.exceptions.SSLError, requests.exceptions.ConnectionError)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    """A server CA and its server certificate; a client CA, its client, and a stranger's client."""
    root = tmp_path_factory.mktemp("pki")
    server_ca, client_ca, other_ca = (
        authority(root, "server-ca"),
        authority(root, "client-ca"),
        authority(root, "other-ca"),
    )
    return {
        "server_ca": server_ca,
        "server": issue(server_ca, root, "server", server=True),
        "server2": issue(server_ca, root, "server2", server=True),
        "client_ca": client_ca,
        "client": issue(client_ca, root, "client", server=False),
        "stranger": issue(other_ca, root, "stranger", server=False),
        "named": issue(client_ca, root, "named", server=False, sans="DNS:prometheus.example.org"),
        "ipv6": issue(client_ca, root, "ipv6", server=False, sans="IP:::1,email:ops@example.org"),
    }


def tls_access(tmp_path: Path, pki: dict[str, Pair], extra: str = "") -> WebAccess:
    path = tmp_path / "web.yml"
    shutil.copy(pki["server"].cert, tmp_path / "server.pem")
    shutil.copy(pki["server"].key, tmp_path / "server-key.pem")
    path.write_text(f"tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n{extra}")
    access = WebAccess(str(path))
    access.load()
    return access


@pytest.fixture
def served(tmp_path: Path, pki: dict[str, Pair], request: pytest.FixtureRequest) -> Iterator[str]:
    """An HTTPS exporter with the test's tls_server_config lines (its parametrised ``extra``)."""
    extra = request.param.format(client_ca=pki["client_ca"].cert)
    with serving(tls_access(tmp_path, pki, extra)) as port:
        yield f"https://127.0.0.1:{port}"


def get(url: str, pki: dict[str, Pair], client: str | None = None) -> int:
    cert = (str(pki[client].cert), str(pki[client].key)) if client else None
    reply = requests.get(
        f"{url}/metrics", verify=str(pki["server_ca"].cert), cert=cert, timeout=ANSWER_WITHIN
    )
    return reply.status_code


REQUIRE = "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {client_ca}\n"
IF_GIVEN = "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: {client_ca}\n"


@pytest.mark.parametrize("served", [REQUIRE], indirect=True)
def test_a_required_client_certificate_lets_in_only_clients_the_ca_signed(
    served: str, pki: dict[str, Pair]
) -> None:
    assert get(served, pki, "client") == 200
    with pytest.raises(OPENSSL_ERRORS):
        get(served, pki)  # no certificate
    with pytest.raises(OPENSSL_ERRORS):
        get(served, pki, "stranger")  # signed by another CA
    assert get(served, pki, "client") == 200  # the refusals cost the others nothing


SANS = REQUIRE + "  client_allowed_sans: [prometheus.example.org, '0:0:0:0:0:0:0:1']\n"


@pytest.mark.parametrize("served", [SANS], indirect=True)
def test_client_allowed_sans_let_in_only_certificates_that_name_one(
    served: str, pki: dict[str, Pair]
) -> None:
    assert get(served, pki, "named") == 200  # DNS name
    assert get(served, pki, "ipv6") == 200  # ::1, compared as an address
    assert get(served, pki, "client") == 403  # signed by the CA, but names nothing allowed
    with pytest.raises(OPENSSL_ERRORS):
        get(served, pki)  # and no certificate is still refused in the handshake


def test_san_matching_by_kind() -> None:
    peer = {
        "subjectAltName": (
            ("DNS", "a.example"),
            ("IP Address", "2001:DB8:0:0:0:0:0:1"),
            ("URI", "spiffe://x"),
        )
    }
    assert peer_allowed(peer, ("a.example",))
    assert peer_allowed(peer, ("2001:db8::1",))
    assert peer_allowed(peer, ("spiffe://x",))
    assert not peer_allowed(peer, ("A.example.org",))
    assert not peer_allowed({"subject": ((("commonName", "a.example"),),)}, ("a.example",))  # CN is no SAN
    assert not peer_allowed(None, ("a.example",))
    assert peer_allowed(None, ())


@pytest.mark.parametrize("served", [IF_GIVEN], indirect=True)
def test_a_client_certificate_if_given_must_be_one_the_ca_signed(served: str, pki: dict[str, Pair]) -> None:
    assert get(served, pki) == 200
    assert get(served, pki, "client") == 200
    with pytest.raises(OPENSSL_ERRORS):
        get(served, pki, "stranger")


@pytest.mark.parametrize("served", ["", "  client_auth_type: RequestClientCert\n"], indirect=True)
def test_without_client_authentication_any_client_gets_in(served: str, pki: dict[str, Pair]) -> None:
    assert get(served, pki) == 200
    assert get(served, pki, "stranger") == 200


def _handshake(url: str, pki: dict[str, Pair], **client: object) -> ssl.SSLSocket:
    import socket

    context = ssl.create_default_context(cafile=str(pki["server_ca"].cert))
    for name, value in client.items():
        if name == "ciphers":
            context.set_ciphers(str(value))
        else:
            setattr(context, name, value)
    port = int(url.rsplit(":", 1)[1])
    raw = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


@pytest.mark.parametrize("served", ["  min_version: TLS13\n"], indirect=True)
def test_min_version_refuses_older_clients(served: str, pki: dict[str, Pair]) -> None:
    with _handshake(served, pki) as sock:
        assert sock.version() == "TLSv1.3"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(served, pki, maximum_version=ssl.TLSVersion.TLSv1_2).close()


@pytest.mark.parametrize("served", [""], indirect=True)
def test_tls_1_2_clients_are_served_by_default_as_in_exporter_toolkit(
    served: str, pki: dict[str, Pair]
) -> None:
    with _handshake(served, pki, maximum_version=ssl.TLSVersion.TLSv1_2) as sock:
        assert sock.version() == "TLSv1.2"


@pytest.mark.parametrize(
    "served",
    ["  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n"],
    indirect=True,
)
def test_cipher_suites_limit_what_tls_1_2_negotiates(served: str, pki: dict[str, Pair]) -> None:
    with _handshake(served, pki) as sock:
        assert (sock.version(), sock.cipher()[0]) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(served, pki, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256").close()


# --- rotation ---------------------------------------------------------------------------------


def _served_certificate(port: int, pki: dict[str, Pair]) -> bytes:
    with _handshake(f"https://127.0.0.1:{port}", pki) as sock:
        der = sock.getpeercert(binary_form=True)
        assert der is not None
        return der


def _der(pair: Pair) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pair.cert.read_text())


def test_a_renewed_certificate_is_served_to_new_connections_without_a_restart(
    tmp_path: Path, pki: dict[str, Pair], caplog: pytest.LogCaptureFixture
) -> None:
    access = tls_access(tmp_path, pki)
    with serving(access) as port, caplog.at_level(logging.ERROR, logger="qbt_exporter.webaccess"):
        assert _served_certificate(port, pki) == _der(pki["server"])
        # a renewal tool writes the certificate, then the key: in between they do not match, and
        # the old pair goes on being served (logged once), until the key is there too
        shutil.copy(pki["server2"].cert, tmp_path / "server.pem")
        assert _served_certificate(port, pki) == _der(pki["server"])
        assert _served_certificate(port, pki) == _der(pki["server"])
        assert len(caplog.records) == 1 and "tls_server_config.cert_file" in caplog.records[0].getMessage()
        shutil.copy(pki["server2"].key, tmp_path / "server-key.pem")
        assert _served_certificate(port, pki) == _der(pki["server2"])


def test_turning_tls_off_at_reload_is_refused(tmp_path: Path, pki: dict[str, Pair]) -> None:
    access = tls_access(tmp_path, pki)
    with serving(access) as port:
        (tmp_path / "web.yml").write_text("")
        assert _served_certificate(port, pki) == _der(pki["server"])
        assert access.reloads_failed == 1


# --- start-up -----------------------------------------------------------------------------------


def test_flags_and_a_web_config_with_tls_are_refused_naming_both(
    tmp_path: Path, pki: dict[str, Pair]
) -> None:
    tls_access(tmp_path, pki)
    argv = ["--web.config.file", str(tmp_path / "web.yml")]
    argv += ["--web.tls-cert-file", str(pki["server"].cert), "--web.tls-key-file", str(pki["server"].key)]
    with pytest.raises(
        ConfigError, match=r"^--web\.config\.file and --web\.tls-cert-file both configure TLS"
    ):
        parse(argv, environ={})


def test_the_tls_flags_are_a_shorthand_and_combine_with_users_from_the_file(
    tmp_path: Path, pki: dict[str, Pair]
) -> None:
    (tmp_path / "web.yml").write_text(
        "basic_auth_users:\n  alice: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG\n"
    )
    argv = ["--web.config.file", str(tmp_path / "web.yml")]
    argv += ["--web.tls-cert-file", str(pki["server"].cert), "--web.tls-key-file", str(pki["server"].key)]
    loaded = parse(argv, environ={}).web_access.current()
    assert loaded.tls is not None and list(loaded.config.users) == ["alice"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tls_server_config:\n  cert_file: server.pem\n  keyfile: x\n",
            "tls_server_config.keyfile: unknown key",
        ),
        (
            "tls_server_config:\n  cert_file: nowhere.pem\n  key_file: k.pem\n",
            "tls_server_config.cert_file: cannot read",
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n",
            "tls_server_config.cert_file: ",  # a certificate where the key should be
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n"
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server-key.pem\n",
            "tls_server_config.client_ca_file: holds no usable PEM certificate",
        ),
    ],
)
def test_a_web_config_that_cannot_be_used_stops_start_up_with_one_line_naming_the_key(
    tmp_path: Path, pki: dict[str, Pair], text: str, message: str
) -> None:
    shutil.copy(pki["server"].cert, tmp_path / "server.pem")
    shutil.copy(pki["server"].key, tmp_path / "server-key.pem")
    (tmp_path / "web.yml").write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "qbt_exporter", "--web.config.file", str(tmp_path / "web.yml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"qbt-exporter: error: --web.config.file: {tmp_path / 'web.yml'}: {message}")
