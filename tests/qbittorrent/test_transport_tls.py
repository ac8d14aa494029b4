"""HTTPS to qBittorrent: a CA file is checked at start-up, skip-verify is said once and not per request.

A real certificate authority is made with the ``openssl`` command for each test module, and a real
HTTPS server on 127.0.0.1 answers with a certificate it signed.
"""

from __future__ import annotations

import http.server
import logging
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from qbt_exporter.cli import build, main
from qbt_exporter.config import ConfigError, parse
from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.errors import Unreachable
from qbt_exporter.stats import Stats


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it."""
    tmp = tmp_path_factory.mktemp("pki")
    ca_key, ca, key, csr, cert = (tmp / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
            "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(key), "-out", str(csr))  # fmt: skip
    ext = tmp / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return {"ca": ca, "cert": cert, "key": key}


class _Version(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"2.8.19"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def https_url(pki: dict[str, Path]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Version)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["cert"], pki["key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def get_version(url: str, verify: bool | str) -> bytes:
    client = Client(url, stats=Stats(), verify=verify)
    try:
        return client.get_public("/api/v2/app/webapiVersion", endpoint="version", deadline=Deadline(10)).body
    finally:
        client.close()


def test_skip_verify_sends_no_warning_per_request(https_url: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert get_version(https_url, verify=False) == b"2.8.19"

    assert [str(w.message) for w in caught] == []  # urllib3 said "Unverified HTTPS request" each time


def test_the_ca_file_verifies_and_an_unknown_ca_is_refused(https_url: str, pki: dict[str, Path]) -> None:
    assert get_version(https_url, verify=str(pki["ca"])) == b"2.8.19"
    with pytest.raises(Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
        get_version(https_url, verify=True)


def test_skip_verify_is_said_once_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client, _app = build(parse(["--qbittorrent.tls-insecure-skip-verify"], environ={}))
    client.close()

    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "--qbittorrent.tls-insecure-skip-verify" in warned[0].getMessage()


def test_a_good_ca_file_is_accepted(pki: dict[str, Path]) -> None:
    assert parse(["--qbittorrent.ca-file", str(pki["ca"])], environ={}).verify == str(pki["ca"])
    assert parse([], environ={"QBITTORRENT_CA_FILE": str(pki["ca"])}).verify == str(pki["ca"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a certificate\n", "no usable PEM certificate"),
        (b"", "no usable PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nbm90IGRlcg==\n-----END CERTIFICATE-----\n", "no usable PEM"),
        (None, "cannot read"),  # missing
        ("dir", "cannot read"),  # a directory
    ],
)
def test_a_bad_ca_file_stops_start_up(tmp_path: Path, content: bytes | str | None, message: str) -> None:
    path = tmp_path / "ca.pem"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"^--qbittorrent.ca-file: .*{message}"):
        parse(["--qbittorrent.ca-file", str(path)], environ={})


def test_a_private_key_is_not_a_ca_file(pki: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match=r"^--qbittorrent\.ca-file: .*no usable PEM certificate"):
        parse(["--qbittorrent.ca-file", str(pki["key"])], environ={})


def test_a_bad_ca_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QBITTORRENT_CA_FILE", raising=False)
    garbage = tmp_path / "ca.pem"
    garbage.write_text("hello\n")

    assert main(["--qbittorrent.ca-file", str(garbage)]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("qbt-exporter: error: --qbittorrent.ca-file:")
