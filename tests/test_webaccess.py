"""The gate in front of the exporter (Basic auth, headers, rate limit) and the web config kept
current, over real sockets on 127.0.0.1: what a scraper sees, and what a reload changes."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bcrypt
import pytest

from qbt_exporter.basicauth import Authenticator
from qbt_exporter.httpserver import HTTPServer
from qbt_exporter.web import ExporterApp
from qbt_exporter.webaccess import Gate, WebAccess
from qbt_exporter.webconfig import WebConfigError
from tests.clocks import FakeClock
from tests.webtools import RecordingCollector, connect, exchange, read_reply, request_bytes

ALICE = bcrypt.hashpw(b"right", bcrypt.gensalt(4)).decode()
BOB = bcrypt.hashpw(b"bobs", bcrypt.gensalt(4)).decode()


def basic(user: str, password: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@contextmanager
def serving(access: WebAccess, collector: RecordingCollector | None = None, **gate: object) -> Iterator[int]:
    """The exporter's app behind the gate on a free port; yields the port."""
    app = ExporterApp(collector or RecordingCollector(), timeout_offset=0.5)
    tls = access.tls_context if access.tls_on else None
    server = HTTPServer(Gate(app, access, **gate), "127.0.0.1", 0, tls=tls).start()  # type: ignore[arg-type]
    try:
        yield server.port
    finally:
        server.stop()


def web_config(tmp_path: Path, text: str) -> WebAccess:
    path = tmp_path / "web.yml"
    path.write_text(text)
    access = WebAccess(str(path))
    access.load()
    return access


def test_no_wrong_or_unknown_credentials_get_401_and_no_scrape(tmp_path: Path) -> None:
    collector = RecordingCollector()
    access = web_config(tmp_path, f"basic_auth_users:\n  alice: {ALICE}\n")
    with serving(access, collector) as port:
        for headers in (
            [],
            [basic("alice", "wrong")],
            [basic("mallory", "right")],
            ["Authorization: Basic !"],
        ):
            reply = exchange(port, request_bytes("GET", "/metrics", *headers))
            assert reply.status == 401, headers
            assert reply.headers["www-authenticate"] == "Basic"
        assert collector.budgets == []  # not one scrape ran
        reply = exchange(port, request_bytes("GET", "/metrics", basic("alice", "right")))
        assert reply.status == 200 and b"qbittorrent_up 1" in reply.body
        assert len(collector.budgets) == 1


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/"), ("GET", "/nowhere"), ("HEAD", "/metrics"), ("POST", "/")]
)
def test_every_path_but_healthz_needs_credentials(tmp_path: Path, method: str, path: str) -> None:
    access = web_config(tmp_path, f"basic_auth_users:\n  alice: {ALICE}\n")
    with serving(access) as port:
        with connect(port) as sock:
            sock.sendall(request_bytes(method, path))
            assert read_reply(sock, head_only=method == "HEAD").status == 401
        assert exchange(port, request_bytes("GET", "/healthz")).status == 200  # the container's check


def test_no_users_means_no_auth(tmp_path: Path) -> None:
    access = web_config(tmp_path, "http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    with serving(access) as port:
        assert exchange(port, request_bytes("GET", "/metrics")).status == 200


def test_configured_headers_are_on_every_answer(tmp_path: Path) -> None:
    access = web_config(
        tmp_path,
        f"basic_auth_users:\n  alice: {ALICE}\nhttp_server_config:\n  headers:\n"
        "    X-Content-Type-Options: nosniff\n    Strict-Transport-Security: max-age=60\n",
    )
    with serving(access) as port:
        for raw in (
            request_bytes("GET", "/metrics"),
            request_bytes("GET", "/healthz"),
            request_bytes("GET", "/metrics", basic("alice", "right")),
        ):
            reply = exchange(port, raw)
            assert reply.headers["x-content-type-options"] == "nosniff"
            assert reply.headers["strict-transport-security"] == "max-age=60"


def test_rate_limit_answers_429_past_the_burst_and_refills_with_time(tmp_path: Path) -> None:
    clock = FakeClock()
    access = web_config(tmp_path, "rate_limit:\n  interval: 10s\n  burst: 2\n")
    with serving(access, clock=clock) as port:
        statuses = [exchange(port, request_bytes("GET", "/healthz")).status for _ in range(3)]
        assert statuses == [200, 200, 429]
        clock.advance(10)
        assert exchange(port, request_bytes("GET", "/healthz")).status == 200
        assert exchange(port, request_bytes("GET", "/healthz")).status == 429


# --- reloading ---------------------------------------------------------------------------------


def test_a_changed_users_list_applies_without_a_restart(tmp_path: Path) -> None:
    access = web_config(tmp_path, f"basic_auth_users:\n  alice: {ALICE}\n")
    with serving(access) as port:
        assert exchange(port, request_bytes("GET", "/metrics", basic("alice", "right"))).status == 200
        (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  bob: {BOB}\n")
        assert exchange(port, request_bytes("GET", "/metrics", basic("alice", "right"))).status == 401
        assert exchange(port, request_bytes("GET", "/metrics", basic("bob", "bobs"))).status == 200
        (tmp_path / "web.yml").write_text("")  # no users: open again
        assert exchange(port, request_bytes("GET", "/metrics")).status == 200


def test_a_bad_file_at_reload_keeps_the_last_good_one_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    access = web_config(tmp_path, f"basic_auth_users:\n  alice: {ALICE}\n")
    with serving(access) as port, caplog.at_level(logging.ERROR, logger="qbt_exporter.webaccess"):
        (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  bob: {BOB}\nbasic_auth_userz: {{}}\n")
        for _ in range(3):
            assert exchange(port, request_bytes("GET", "/metrics", basic("alice", "right"))).status == 200
            assert exchange(port, request_bytes("GET", "/metrics", basic("bob", "bobs"))).status == 401
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1, errors
        assert "basic_auth_userz: unknown key" in errors[0] and "keeping the configuration" in errors[0]
        assert access.reloads_failed == 1
        (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  bob: {BOB}\n")  # fixed
        assert exchange(port, request_bytes("GET", "/metrics", basic("bob", "bobs"))).status == 200


def test_a_deleted_file_keeps_the_last_good_configuration(tmp_path: Path) -> None:
    access = web_config(tmp_path, f"basic_auth_users:\n  alice: {ALICE}\n")
    with serving(access) as port:
        (tmp_path / "web.yml").unlink()
        assert exchange(port, request_bytes("GET", "/metrics")).status == 401
        assert exchange(port, request_bytes("GET", "/metrics", basic("alice", "right"))).status == 200


def test_the_first_load_raises_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("basic_auth_users:\n  alice: plain\n")
    with pytest.raises(WebConfigError, match=r"^basic_auth_users\.alice: not a bcrypt hash"):
        WebAccess(str(path)).load()
    with pytest.raises(WebConfigError, match="cannot read"):
        WebAccess(str(tmp_path / "missing.yml")).load()


def test_without_users_no_bcrypt_is_spent_at_start_up(tmp_path: Path) -> None:
    """The dummy hash for unknown users costs a bcrypt: made only when there are users."""
    authenticator = Authenticator()
    Gate(ExporterApp(RecordingCollector()), web_config(tmp_path, ""), authenticator)
    assert authenticator.bcrypt_checks == 0 and not authenticator._dummies


def test_non_ascii_user_names_and_raw_bytes_in_the_header(tmp_path: Path) -> None:
    zoe = bcrypt.hashpw("pässwörd".encode(), bcrypt.gensalt(4)).decode()
    access = web_config(tmp_path, f"basic_auth_users:\n  zoë: {zoe}\n")
    with serving(access) as port:
        good = "Authorization: Basic " + base64.b64encode("zoë:pässwörd".encode()).decode()
        assert exchange(port, request_bytes("GET", "/metrics", good)).status == 200
        latin1 = "Authorization: Basic " + base64.b64encode("zoë:pässwörd".encode("latin-1")).decode()
        assert exchange(port, request_bytes("GET", "/metrics", latin1)).status == 401
        raw = request_bytes("GET", "/metrics").replace(
            b"\r\n\r\n", b"\r\nAuthorization: Basic \xff\xfe\r\n\r\n"
        )
        assert exchange(port, raw).status == 401
