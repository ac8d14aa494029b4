"""The exporter against a hostile qBittorrent: the fault proxy (qbt_exporter/simulator/faults.py) in
front of the simulator, everything over real sockets on 127.0.0.1.

Each test is one hostile case and checks the README's promises for it: ``/metrics`` answers 200 with
valid exposition (parsed by prometheus_client, UTF-8 throughout) within the scrape's budget, with
``qbittorrent_up 0`` and no data series when a list call fails, only the affected series missing
when a single value is bad, and the failure counted under the documented outcome. The scrapes say
``X-Prometheus-Scrape-Timeout-Seconds: 2.5``, a 2 s budget after the default offset; the test's own
HTTP timeout adds generous slack on top, so a scrape that hangs fails the test instead of passing
late.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from qbt_exporter.cli import build
from qbt_exporter.collectors import Collectors
from qbt_exporter.config import parse
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.scraper import Scraper
from qbt_exporter.simulator import BAN_TEXT, Simulator, SimulatorConfig
from qbt_exporter.simulator.faults import (
    Cookies,
    Drip,
    Fault,
    FaultProxy,
    GzipBomb,
    Hang,
    JsonEdit,
    Oversize,
    RawBytes,
    Replace,
    Reset,
    duplicate_torrent,
)
from qbt_exporter.stats import Stats
from qbt_exporter.web import ExporterApp, serve

SCRAPE_TIMEOUT = 2.5  # the header; minus the default 0.5 s offset, a 2 s budget
SLACK = 10.0  # far more than any honest scrape needs; a hang is what fails
TORRENTS = "^/query/torrents$"
TRANSFER = "^/query/transferInfo$"
PROPERTIES = "^/query/propertiesGeneral/"
LOGIN = "^/login$"
MB = 1024 * 1024
CAP = ("--qbittorrent.max-reply-size", "1MB")

Labels = dict[str, str]


@dataclass
class Scrape:
    text: str
    samples: dict[str, list[tuple[Labels, float]]]

    def values(self, name: str, **labels: str) -> list[float]:
        return [v for lab, v in self.samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items())]

    def value(self, name: str, **labels: str) -> float:
        found = self.values(name, **labels)
        assert len(found) == 1, (name, labels, self.samples.get(name))
        return found[0]

    def labels(self, name: str) -> list[Labels]:
        return [lab for lab, _ in self.samples.get(name, [])]

    def hashes(self, name: str) -> set[str]:
        return {lab["hash"] for lab in self.labels(name)}

    def requests(self, endpoint: str, outcome: str) -> float:
        found = self.values("qbittorrent_exporter_requests_total", endpoint=endpoint, outcome=outcome)
        return found[0] if found else 0.0

    def invalid(self, endpoint: str) -> float:
        found = self.values("qbittorrent_exporter_invalid_values_total", endpoint=endpoint)
        return found[0] if found else 0.0

    def data_series(self) -> list[str]:
        """Series read from qBittorrent (not the exporter's own, not qbittorrent_up)."""
        return [
            name
            for name in self.samples
            if name.startswith("qbittorrent_")
            and not name.startswith("qbittorrent_exporter_")
            and name != "qbittorrent_up"
        ]


@dataclass
class Exporter:
    url: str
    proxy: FaultProxy
    sim: Simulator | None = None

    def scrape(self, scrape_timeout: float = SCRAPE_TIMEOUT) -> Scrape:
        """One scrape, as Prometheus sends it; fails on anything but 200 + valid UTF-8 exposition."""
        reply = requests.get(
            self.url,
            headers={"X-Prometheus-Scrape-Timeout-Seconds": str(scrape_timeout), "Accept-Encoding": "gzip"},
            timeout=scrape_timeout + SLACK,
        )
        assert reply.status_code == 200, reply.text[:500]
        text = reply.content.decode("utf-8")  # strict: the exposition must be valid UTF-8
        samples: dict[str, list[tuple[Labels, float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return Scrape(text, samples)

    def fault(self, pattern: str, fault: Fault, times: int | None = None) -> None:
        self.proxy.set_fault(pattern, fault, times)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(torrents=5, latency=False, churn=False, time_scale=0)) as simulator:
        yield simulator


@contextmanager
def running(
    app: ExporterApp, client: Client, proxy: FaultProxy, sim: Simulator | None = None
) -> Iterator[Exporter]:
    server = serve(app, "127.0.0.1", 0)
    try:
        yield Exporter(f"http://127.0.0.1:{server.port}/metrics", proxy, sim)
    finally:
        server.stop()
        client.close()


@contextmanager
def exporter(sim: Simulator, *flags: str) -> Iterator[Exporter]:
    """The exporter as ``qbt-exporter`` builds it, pointed at a fault proxy in front of ``sim``."""
    with FaultProxy(sim.url, timeout=30) as proxy:
        config = parse(
            ["--qbittorrent.url", proxy.url, "--qbittorrent.timeout", "1s", *flags],
            environ={"QBITTORRENT_PASSWORD": sim.config.password},
        )
        client, app = build(config)
        with running(app, client, proxy, sim) as exp:
            yield exp


def healthy(exp: Exporter) -> Scrape:
    got = exp.scrape()
    assert got.value("qbittorrent_up") == 1
    return got


def down(got: Scrape) -> None:
    """qBittorrent reported down: up 0 and no data series (never zeros)."""
    assert got.value("qbittorrent_up") == 0
    assert got.data_series() == []


# --- time: a reply that drips or never ends costs one scrape's budget (defect 3) ---------------------


@pytest.mark.parametrize("after_headers", [False, True], ids=["silent", "after-headers"])
def test_a_hanging_reply_costs_one_budget_and_counts_a_timeout(sim: Simulator, after_headers: bool) -> None:
    with exporter(sim) as exp:
        healthy(exp)
        exp.fault(TORRENTS, Hang(after_headers=after_headers))
        got = exp.scrape()
        down(got)
        assert got.requests("torrents", "timeout") == 1
        exp.proxy.clear()
        healthy(exp)


# --- resets ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("after_bytes", [None, 40], ids=["before-reply", "mid-body"])
def test_a_reset_connection_is_tried_once_more_then_reported_down(
    sim: Simulator, after_bytes: int | None
) -> None:
    with exporter(sim) as exp:
        healthy(exp)
        exp.fault(TORRENTS, Reset(after_bytes=after_bytes))
        got = exp.scrape()
        down(got)
        assert got.requests("torrents", "connection_error") == 1
        assert exp.proxy.count(TORRENTS) == 1 + 2  # the healthy scrape, then the call and one retry
        exp.proxy.clear()
        healthy(exp)


def test_a_single_reset_is_absorbed_by_the_retry(sim: Simulator) -> None:
    with exporter(sim) as exp:
        healthy(exp)
        exp.fault(TORRENTS, Reset(), times=1)
        healthy(exp)


# --- size: a cap on the decoded reply (defect 5) ----------------------------------------------------


# --- replies that are not the JSON promised ---------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [b"<html><body>502 Bad Gateway</body></html>", b'[{"hash": "', b"\xff\xfe\x00garbage"],
    ids=["html", "truncated", "binary"],
)
def test_a_torrent_list_that_is_not_json_reports_down(sim: Simulator, body: bytes) -> None:
    with exporter(sim) as exp:
        healthy(exp)
        exp.fault(TORRENTS, Replace(body))
        got = exp.scrape()
        down(got)
        assert got.requests("torrents", "bad_response") == 1


def test_a_torrent_list_that_is_an_object_reports_down(sim: Simulator) -> None:
    with exporter(sim) as exp:
        healthy(exp)
        exp.fault(TORRENTS, Replace(b'{"a": 1}'))
        down(exp.scrape())


# --- odd values: only the affected series go (defect 4) ---------------------------------------------
def edit_torrent(field: str, value: Any, victims: list[str], index: int = 1) -> JsonEdit:
    """Set ``field`` of the ``index``-th torrent of the list, noting its hash in ``victims``."""

    def edit(doc: list[dict[str, Any]]) -> None:
        victims.append(doc[index]["hash"])
        doc[index][field] = value

    return JsonEdit(edit)


HUGE = 10**400


@pytest.mark.parametrize(
    ("value", "counted"),
    [(HUGE, 1), (-HUGE, 1), ("a lot", 1), ([1], 1), (None, 0)],
    ids=["huge", "huge-negative", "string", "list", "null"],
)
def test_an_odd_torrent_size_costs_only_that_series(sim: Simulator, value: Any, counted: int) -> None:
    """Only unreadable values are counted: null is Qt's rendering of a non-finite number."""
    with exporter(sim) as exp:
        before = healthy(exp)
        victims: list[str] = []
        exp.fault(TORRENTS, edit_torrent("size", value, victims))
        got = healthy(exp)
        victim = victims[-1]
        sized = got.hashes("qbittorrent_torrent_size_bytes")
        assert victim not in sized
        assert sized == before.hashes("qbittorrent_torrent_size_bytes") - {victim}
        assert victim in got.hashes("qbittorrent_torrent_info")  # the torrent itself is still there
        assert got.invalid("torrents") == before.invalid("torrents") + counted


# --- duplicate hashes (defect 10) -------------------------------------------------------------------


# --- odd cookies ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values",
    [
        ("SID={sid}; HttpOnly; Path=/; SameSite=Strict; Max-Age=3600; Version=1",),
        ("theme=dark; path=/", "SID={sid}; path=/", "lang=en"),
        ("SID={sid}; path=/; Domain=127.0.0.1",),
    ],
    ids=["attributes", "several", "domain"],
)
def test_a_usable_cookie_in_odd_dress_gives_one_login(sim: Simulator, values: tuple[str, ...]) -> None:
    with exporter(sim) as exp:
        exp.fault(LOGIN, Cookies(*values))
        for _ in range(3):
            healthy(exp)
        assert exp.proxy.count(LOGIN) == 1


@pytest.mark.parametrize(
    "values",
    [
        ("QBT_SID_8080={sid}; HttpOnly; path=/",),
        ("SID=; path=/",),
        ("SID={sid}; Max-Age=0",),
        ("SID={sid}; Expires=Thu, 01 Jan 1970 00:00:00 GMT",),
        ("SID={sid}; Secure",),
        (),
    ],
    ids=["other-name", "empty", "max-age-0", "expired", "secure-over-http", "none"],
)
def test_an_unusable_cookie_reports_down_with_at_most_one_login_per_scrape(
    sim: Simulator, values: tuple[str, ...]
) -> None:
    """The login succeeds but the session cannot be used: up 0, no 500, no login storm (the first
    login, then one after each 403: one per scrape), and no failed login (which counts toward a ban)."""
    with exporter(sim) as exp:
        exp.fault(LOGIN, Cookies(*values))
        scrapes = 4
        for _ in range(scrapes):
            got = exp.scrape()
            down(got)
        assert exp.proxy.count(LOGIN) <= scrapes + 1
        assert sim.logins_failed == 0
        assert got.requests("transfer_info", "forbidden") == scrapes  # the first call of each scrape


# --- logins: never a fifth failure (defect 2, session helper) ----------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def exporter_with_clock(sim: Simulator, password: str, clock: Callable[[], float]) -> Iterator[Exporter]:
    """The parts of ``build()``, with a virtual clock for the client's back-off and suspension."""
    with FaultProxy(sim.url) as proxy:
        stats = Stats()
        client = Client(proxy.url, "admin", password, timeout=1.0, stats=stats, clock=clock)
        collector = Collectors(Scraper(client, stats), stats)
        with running(ExporterApp(collector), client, proxy, sim) as exp:
            yield exp


def test_a_wrong_password_stops_logging_in_after_three_rejections_for_48_hours(sim: Simulator) -> None:
    clock = FakeClock()
    with exporter_with_clock(sim, "wrong", clock) as exp:
        for _ in range(48 * 4):
            got = exp.scrape()
            down(got)
            clock.now += 15 * 60
        assert exp.proxy.count(LOGIN) == 3
        assert sim.logins_failed == 3
        assert got.value("qbittorrent_exporter_login_suspended", reason="rejected") == 1
        assert got.value("qbittorrent_exporter_login_suspended", reason="banned") == 0


def test_a_ban_reply_stops_every_request_until_the_ban_ends(sim: Simulator) -> None:
    clock = FakeClock()
    with exporter_with_clock(sim, sim.config.password, clock) as exp:
        exp.fault(LOGIN, Replace(BAN_TEXT, status=403, content_type="text/plain"))
        down(exp.scrape())
        seen = sum(exp.proxy.requests_by_path.values())
        clock.now += 60
        got = exp.scrape()
        down(got)
        assert got.value("qbittorrent_exporter_login_suspended", reason="banned") == 1
        assert sum(exp.proxy.requests_by_path.values()) == seen  # no request reached qBittorrent
        exp.proxy.clear()
        clock.now += 2 * 3600
        healthy(exp)


@pytest.mark.parametrize("field", ["dlspeed", "num_seeds", "added_on", "progress", "ratio", "eta"])
def test_a_huge_integer_in_any_torrent_field_costs_only_that_series(sim: Simulator, field: str) -> None:
    with exporter(sim) as exp:
        before = healthy(exp)
        exp.fault(TORRENTS, edit_torrent(field, HUGE, []))
        got = healthy(exp)
        assert got.hashes("qbittorrent_torrent_info") == before.hashes("qbittorrent_torrent_info")
        assert got.invalid("torrents") == before.invalid("torrents") + 1


@pytest.mark.parametrize("field", ["dl_info_speed", "dl_info_data", "dht_nodes", "up_rate_limit"])
def test_a_huge_integer_in_the_transfer_info_costs_only_that_series(sim: Simulator, field: str) -> None:
    with exporter(sim) as exp:
        before = healthy(exp)

        def edit(doc: dict[str, Any]) -> None:
            doc[field] = HUGE

        exp.fault(TRANSFER, JsonEdit(edit))
        got = healthy(exp)
        lost = set(before.samples) - set(got.samples)
        assert len(lost) == 1, lost
        assert got.invalid("transfer_info") == before.invalid("transfer_info") + 1


def test_a_huge_integer_in_the_properties_is_not_cached_into_later_scrapes(sim: Simulator) -> None:
    """A bad properties value is an invalid value, and is not kept to break later scrapes."""
    with exporter(sim) as exp:

        def edit(doc: dict[str, Any]) -> None:
            doc["total_wasted"] = HUGE

        exp.fault(PROPERTIES, JsonEdit(edit))
        got = healthy(exp)  # the first scrape fetches every torrent's properties
        assert got.labels("qbittorrent_torrent_wasted_bytes_total") == []
        assert got.invalid("torrent_properties") == 5
        exp.proxy.clear()
        assert healthy(exp).text


@pytest.mark.parametrize(
    "name",
    [
        "bad \ud800 name",
        "bad \udfff name",
        RawBytes(b"bad \xed\xa0\x80 name"),
        RawBytes(b"bad \xff\xfe name"),
        RawBytes(b"bad \xc3 name"),
    ],
    ids=["escaped-lone-high", "escaped-lone-low", "raw-cesu8", "raw-invalid", "raw-truncated"],
)
def test_an_invalid_name_becomes_valid_utf8_with_replacement_characters(sim: Simulator, name: Any) -> None:
    with exporter(sim) as exp:
        victims: list[str] = []
        exp.fault(TORRENTS, edit_torrent("name", name, victims))
        got = healthy(exp)
        assert len(got.hashes("qbittorrent_torrent_info")) == 5
        names = [lab["name"] for lab in got.labels("qbittorrent_torrent_info") if lab["hash"] == victims[-1]]
        assert len(names) == 1 and re.fullmatch("bad \ufffd+ name", names[0]), names


def test_a_lone_surrogate_in_a_category_or_tracker_is_made_valid(sim: Simulator) -> None:
    with exporter(sim) as exp:

        def edit(doc: list[dict[str, Any]]) -> None:
            doc[0]["category"] = "cat \udbff"
            doc[1]["tags"] = "tag \udc00"

        exp.fault(TORRENTS, JsonEdit(edit))
        got = healthy(exp)
        assert any("\ufffd" in lab["category"] for lab in got.labels("qbittorrent_torrent_info"))
        assert any("\ufffd" in lab["tags"] for lab in got.labels("qbittorrent_torrent_info"))


def test_a_duplicated_hash_gives_one_series_and_the_first_copy_wins(sim: Simulator) -> None:
    with exporter(sim) as exp:
        firsts: list[dict[str, Any]] = []

        def edit(doc: list[dict[str, Any]]) -> None:
            first = doc[0]
            firsts.append(dict(first))
            state = "pausedDL" if first["state"] != "pausedDL" else "error"
            doc.append({**first, "name": "the second copy", "state": state, "size": first["size"] + 1})

        exp.fault(TORRENTS, JsonEdit(edit))
        got = healthy(exp)
        first = firsts[-1]
        infos = [lab for lab in got.labels("qbittorrent_torrent_info") if lab["hash"] == first["hash"]]
        assert [lab["name"] for lab in infos] == [first["name"]]
        states = [
            lab["state"] for lab in got.labels("qbittorrent_torrent_state") if lab["hash"] == first["hash"]
        ]
        assert len(states) == 1 and states[0] != "the second copy"
        assert got.values("qbittorrent_torrent_size_bytes", hash=first["hash"]) == [first["size"]]
        for name in got.samples:
            series = [tuple(sorted(lab.items())) for lab in got.labels(name)]
            assert len(series) == len(set(series)), f"duplicate series in {name}"
        assert sum(got.values("qbittorrent_torrents")) == 5  # the torrent counted once


def test_a_duplicated_hash_with_two_states_is_counted_once_under_the_first_state(sim: Simulator) -> None:
    with exporter(sim) as exp:
        before = healthy(exp)
        exp.fault(TORRENTS, JsonEdit(duplicate_torrent(0, name="copy", state="checkingUP")))
        got = healthy(exp)
        assert got.samples["qbittorrent_torrents"] == before.samples["qbittorrent_torrents"]


def test_a_torrent_with_an_unusable_hash_is_still_counted_in_the_totals(sim: Simulator) -> None:
    with exporter(sim) as exp:
        healthy(exp)
        exp.fault(TORRENTS, JsonEdit(duplicate_torrent(0, hash="not a hash", state="pausedDL")))
        got = healthy(exp)
        assert len(got.hashes("qbittorrent_torrent_info")) == 5
        assert sum(got.values("qbittorrent_torrents")) == 6


@pytest.mark.parametrize(
    "fault",
    [
        Drip(per_interval=1, interval=0.05),
        Drip(per_interval=64, interval=0.01, endless=True),
        Drip(per_interval=1, interval=0.05, whole=True),
    ],
    ids=["body", "endless", "status-line"],
)
def test_a_dripping_torrent_list_costs_one_budget_and_counts_a_timeout(sim: Simulator, fault: Fault) -> None:
    with exporter(sim) as exp:
        healthy(exp)
        exp.fault(TORRENTS, fault)
        got = exp.scrape()
        down(got)
        assert got.requests("torrents", "timeout") == 1
        exp.proxy.clear()
        healthy(exp)


def test_a_dripping_login_reply_costs_one_budget(sim: Simulator) -> None:
    with exporter(sim) as exp:
        exp.fault(LOGIN, Drip(per_interval=1, interval=0.05, body=b"Ok." + b" " * 200))
        got = exp.scrape()
        down(got)
        assert got.requests("login", "timeout") == 1
        exp.proxy.clear()
        healthy(exp)


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "until-close"])
def test_an_oversized_reply_fails_that_call_cleanly(sim: Simulator, declare_length: bool) -> None:
    with exporter(sim, *CAP) as exp:
        healthy(exp)
        exp.fault(TORRENTS, Oversize(8 * MB, declare_length=declare_length))
        got = exp.scrape()
        down(got)
        assert got.requests("torrents", "too_large") == 1
        exp.proxy.clear()
        healthy(exp)


def test_a_reply_under_the_cap_is_read(sim: Simulator) -> None:
    with exporter(sim, *CAP) as exp:
        exp.fault(TORRENTS, Oversize(MB // 2))
        got = healthy(exp)
        assert len(got.hashes("qbittorrent_torrent_info")) == 5


def test_a_gzip_bomb_fails_that_call_without_inflating_it(sim: Simulator) -> None:
    with exporter(sim, *CAP) as exp:
        healthy(exp)
        exp.fault(TORRENTS, GzipBomb(inflated_mb=300))
        reset_peak_rss()
        before = rss_kb()
        got = exp.scrape()
        grew_mb = (peak_rss_kb() - before) / 1024
        down(got)
        assert got.requests("torrents", "too_large") == 1
        assert grew_mb < 100, f"peak RSS grew by {grew_mb:.0f} MB while refusing a 300 MB gzip bomb"
        exp.proxy.clear()
        healthy(exp)


def test_the_default_cap_refuses_a_gzip_bomb(sim: Simulator) -> None:
    """Inflating up to the default cap takes a while on a loaded machine: a budget to match."""
    with exporter(sim) as exp:
        exp.fault(TORRENTS, GzipBomb(inflated_mb=400))
        got = exp.scrape(scrape_timeout=60)
        down(got)
        assert got.requests("torrents", "too_large") == 1


def _status(name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{name} not in /proc/self/status")


def rss_kb() -> int:
    return _status("VmRSS")


def peak_rss_kb() -> int:
    return _status("VmHWM")


def reset_peak_rss() -> None:
    """Start the peak-RSS watermark (VmHWM) afresh (Linux: 5 > /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pytest.skip("cannot reset the peak RSS watermark here")
