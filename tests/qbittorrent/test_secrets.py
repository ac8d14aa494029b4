"""Secrets never leave the process (issue 8, defect 6): not in a log record, an error, or /metrics.

The hostile case is a proxy (or a broken qBittorrent) whose error pages echo the request they got:
the login form carries the password, URL-encoded, and every request of a qBittorrent 5.2+ API-key
user carries the key in its ``Authorization`` header. The exporter runs its real paths against such
a server, with logging at DEBUG, and nothing it produces may contain either secret, whole or cut.
"""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from qbt_exporter import cli
from qbt_exporter.config import ConfigError, parse
from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent import redact
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.qbittorrent.errors import QbtError

# A password whose raw, form-encoded and percent-encoded spellings all differ, long enough that a
# 100-character quote of an echoed form would cut it in the middle.
PASSWORD = "Tr0ub4dor&3 horse/battery+staple=é-" + "x" * 40
API_KEY = "qbt_SeCrEtApIkEy0123456789abcdef"
# Pieces that must not appear either: a quote cut before the redaction would leave a prefix.
FRAGMENTS = ("Tr0ub4dor", "battery", "SeCrEtApIkEy")


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with an error page quoting the request: line, headers, body."""

    server: EchoServer

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
        pass

    def _echo(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization", "")
        head = f"{self.command} {self.path}\nAuthorization: {auth}\n".encode()
        return head + body + b"\n" + bytes(self.headers)

    def _answer(self, status: int, body: bytes, content_type: str = "text/html") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "keep-alive")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        echoed = self._echo()
        if self.path == "/version/api":
            self._answer(200, b"17", "text/plain")
        elif self.path == "/version/qbittorrent":
            self._answer(200, b"v4.0.4", "text/plain")
        else:
            self._answer(self.server.get_status, echoed)

    def do_POST(self) -> None:
        self._answer(self.server.login_status, self._echo())


class EchoServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    login_status = 200  # 200 with a body that is not "Ok." or "Fails.": an unexpected login reply
    get_status = 200  # 200 and not JSON; 500 gives an HTTP error quoting the body


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def url_of(server: EchoServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def leaks(text: str) -> list[str]:
    """Every spelling or piece of a secret found in ``text``."""
    spellings = set(FRAGMENTS)
    for secret in (PASSWORD, API_KEY):
        spellings |= {secret, quote(secret, safe=""), quote_plus(secret), quote(secret).lower()}
    return sorted(s for s in spellings if s in text or s in text.lower())


def logged(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


def scrape(app: Any) -> str:
    status: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/metrics",
        "QUERY_STRING": "",
        "wsgi.url_scheme": "http",
    }
    body = b"".join(app(environ, lambda s, h, *_: status.append(s)))
    assert status[0].startswith("200")
    return body.decode()


# --- the exporter's own paths against an echoing server -------------------------------------------
@pytest.mark.parametrize(("login_status", "get_status"), [(200, 200), (502, 500)])
def test_password_echoed_by_a_proxy_reaches_no_log_error_or_metric(
    echo: EchoServer,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    login_status: int,
    get_status: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    echo.login_status, echo.get_status = login_status, get_status
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    config = parse(["--qbittorrent.url", url_of(echo), "--qbittorrent.password-file", str(secret)], {})
    client, app = cli.build(config)
    try:
        pages = [scrape(app) for _ in range(3)]
        errors: list[str] = []
        for call in (client.login, lambda d: client.get("/query/torrents", endpoint="t", deadline=d)):
            client.forget_session()
            try:
                call(Deadline(5.0))
            except QbtError as err:
                errors.append(str(err))
    finally:
        client.logout()
        client.close()

    assert "qbittorrent_up 0.0" in pages[0]
    # the reply really was quoted (so the test would see a leak), with the secret taken out
    assert "<redacted>" in logged(caplog)
    assert leaks(logged(caplog)) == []
    assert leaks("\n".join(errors)) == []
    assert leaks("\n".join(pages)) == []


@pytest.mark.parametrize("get_status", [200, 500])
def test_api_key_echoed_in_an_error_page_reaches_no_log_error_or_metric(
    echo: EchoServer, caplog: pytest.LogCaptureFixture, get_status: int
) -> None:
    caplog.set_level(logging.DEBUG)
    echo.get_status = get_status
    config = parse(["--qbittorrent.url", url_of(echo)], {"QBITTORRENT_API_KEY": API_KEY})
    client, app = cli.build(config)
    try:
        pages = [scrape(app) for _ in range(3)]
        with pytest.raises(QbtError) as info:
            client.get_json("/query/torrents", endpoint="torrents", deadline=Deadline(5.0))
    finally:
        client.close()

    assert "<redacted>" in str(info.value)  # the snippet starts with the echoed header, cut at 60
    assert leaks(str(info.value)) == []
    assert leaks(logged(caplog)) == []
    assert leaks("\n".join(pages)) == []


# --- URL credentials are refused, without repeating them ------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        f"http://admin:{quote(PASSWORD, safe='')}@qbt.example:8080",
        f"http://admin:{PASSWORD}@qbt.example:8080",  # the "/" in it makes the rest look like a path
    ],
)
def test_url_with_credentials_is_refused_without_echoing_them(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse(["--qbittorrent.url", url], {})
    assert str(info.value).startswith("--qbittorrent.url: must not contain credentials")
    assert leaks(str(info.value)) == []

    assert cli.main(["--qbittorrent.url", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must not contain credentials" in err
    assert leaks(err) == []


def test_url_with_credentials_is_refused_by_the_client_too() -> None:
    with pytest.raises(ValueError) as info:
        Client(f"http://admin:{PASSWORD}@qbt.example")
    assert leaks(str(info.value)) == []


# --- the redaction function itself -----------------------------------------------------------------
def test_redact_replaces_every_spelling_of_a_registered_secret() -> None:
    secret = "p@ss wörd/+&="
    redact.register(secret)
    texts = [
        f"raw {secret} end",
        f"password={quote_plus(secret)}&x=1",
        f"path/{quote(secret, safe='')}",
        f"lower {quote(secret, safe='').lower()}",
        "json " + '"p@ss w\\u00f6rd/+&="',
    ]
    for text in texts:
        out = redact.redact(text)
        assert "<redacted>" in out and "rd/" not in out and "w%C3%B6rd" not in out.upper(), out


def test_redact_removes_url_credentials_of_any_url() -> None:
    out = redact.redact("GET http://user:hunter2@host:8080/x failed; see https://a:b@c/")
    assert out == "GET http://<redacted>@host:8080/x failed; see https://<redacted>@c/"


def test_quote_reply_redacts_before_it_cuts() -> None:
    secret = "abcdefghij-klmnopqrst"
    redact.register(secret)
    quoted = redact.quote_reply("x" * 10 + secret, 15)
    assert "abcde" not in quoted
