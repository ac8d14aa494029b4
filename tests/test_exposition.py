import math

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.utils import floatToGoString

from qbt_exporter import exposition
from qbt_exporter.collectors import Collectors
from qbt_exporter.exposition import AsRegistry, Family, render_text
from qbt_exporter.metrics import CATALOGUE, spec
from qbt_exporter.properties import PropertiesPass
from qbt_exporter.qbittorrent.model import ServerInfo, Snapshot, Transfer
from qbt_exporter.scraper import ScrapeResult
from qbt_exporter.stats import Stats
from tests.fakes import torrent

NASTY = ["plain", 'quote " inside', "back\\slash", "new\nline", "Ünïcødé 日本語", "", 'all \\" \n of them']


def _families() -> list[Family]:
    stats = Stats()
    stats.request("torrents", "ok")
    stats.request("torrents", "timeout")
    stats.login("ok")
    stats.invalid_value("torrents", 3)
    torrents = [
        torrent(
            n,
            name=NASTY[n % len(NASTY)],
            category=NASTY[(n + 1) % len(NASTY)],
            tags="a,b" if n % 2 else "",
            size=[0, 1, 1234567, 1e21, 2.5e-7, 123456789012345][n % 6],
            eta=None if n % 3 else 86400,
            ratio=9999.0,
            progress=1 / 3,
            wasted=n,
        )
        for n in range(1, 60)
    ]
    snap = Snapshot(
        ServerInfo("v4.0.4", "legacy", "17"),
        Transfer(
            connection_status="connected", dht_nodes=312, alltime_downloaded=8.5e12, alt_speed_limits=False
        ),
        torrents,
    )

    collectors = Collectors(None, stats)  # type: ignore[arg-type]  # families() never scrapes
    return collectors.families(ScrapeResult(snap, duration=0.1234, properties=PropertiesPass(max_age=12.5)))


def test_render_text_is_byte_identical_to_prometheus_client() -> None:
    families = _families()
    assert render_text(families) == generate_latest(AsRegistry(families))  # type: ignore[arg-type]


def test_special_floats_and_every_catalogue_row_render_identically() -> None:
    families = []
    for row in CATALOGUE:
        fam = Family(row)
        for n, value in enumerate([0, -1.5, math.inf, -math.inf, math.nan, 1e-300, 7]):
            fam.add(value, **{label: f"{label}-{n}" for label in row.labels})
        families.append(fam)
    assert render_text(families) == generate_latest(AsRegistry(families))  # type: ignore[arg-type]


def test_openmetrics_from_the_same_families_is_valid() -> None:
    text = generate_openmetrics(AsRegistry(_families())).decode()  # type: ignore[arg-type]
    assert text.endswith("# EOF\n")
    assert 'qbittorrent_exporter_requests_total{endpoint="torrents",outcome="ok"} 1.0' in text


def test_counter_families_are_named_like_prometheus_client_would() -> None:
    fam = Family(spec("qbittorrent_session_downloaded_bytes_total"))
    fam.add(5)
    assert fam.to_metric().name == "qbittorrent_session_downloaded_bytes"
    assert b"# TYPE qbittorrent_session_downloaded_bytes_total counter\n" in render_text([fam])


@given(st.one_of(st.floats(), st.integers(min_value=-(2**63), max_value=2**64)))
@settings(max_examples=2000, deadline=None)
def test_fast_float_format_writes_what_prometheus_client_writes(value: float) -> None:
    assert exposition._go_float(value) == floatToGoString(value)


@given(
    st.one_of(
        st.floats(),
        st.integers(min_value=-(2**63), max_value=2**64),
        st.integers(min_value=-(2**54), max_value=2**54),
        st.integers(min_value=999_000, max_value=1_001_000),
        st.floats(min_value=-1e7, max_value=1e7),
        st.booleans(),
    )
)
@settings(max_examples=3000, deadline=None)
def test_the_fast_value_line_writes_what_prometheus_client_writes(value: float) -> None:
    """Its integer and small-float shortcuts, at and around their bounds (2**53, a million)."""
    assert exposition._go_line(value) == floatToGoString(value) + "\n"


def test_the_fast_float_format_is_the_one_in_use() -> None:
    """It is chosen only when it agrees with the installed prometheus_client (checked at import)."""
    assert exposition._line is exposition._go_line


def _same_as_prometheus_client(families: list[Family]) -> None:
    assert render_text(families) == generate_latest(AsRegistry(families))  # type: ignore[arg-type]


LABEL_TEXT = st.text(alphabet=st.sampled_from('ab"\\\n é'), max_size=6)
VALUE = st.one_of(
    st.integers(min_value=-3, max_value=3),  # repeating integers: written once per family, then found
    st.sampled_from([0.0, -0.0, 1.0, True, False, 10**6, 2**53]),  # equal keys written differently
    st.floats(),
    st.integers(),
)


@given(st.lists(st.tuples(LABEL_TEXT, LABEL_TEXT, VALUE), max_size=150))
@settings(max_examples=300, deadline=None)
def test_columns_render_like_prometheus_client(samples: list[tuple[str, str, object]]) -> None:
    """Columns of any labels and values, as rows and as columns, over both the path that writes each
    value and the one that writes a repeating integer once (a column of more than 64 values)."""
    hashes = [a for a, _, _ in samples]
    states = [b for _, b, _ in samples]
    values = [v for _, _, v in samples]
    as_columns = Family(spec("qbittorrent_torrent_state"), exposition.Columns([hashes, states], values))
    as_rows = Family(spec("qbittorrent_torrent_state"), list(zip(hashes, states, values, strict=True)))
    one_label = Family(spec("qbittorrent_torrent_size_bytes"), exposition.Columns([hashes], values))
    _same_as_prometheus_client([as_columns, as_rows, one_label])
    assert render_text([as_columns]) == render_text([as_rows])


def test_a_repeating_column_keeps_zero_and_negative_zero_apart() -> None:
    """``0`` and ``-0.0`` are one key of a dict, yet written "0.0" and "-0.0"."""
    values = [0, 1, 2] * 30 + [-0.0, 0.0, -0.0]
    family = Family(
        spec("qbittorrent_torrent_seeds"), exposition.Columns([[f"{n:040x}" for n in range(93)]], values)
    )
    text = render_text([family])
    assert text.count(b" -0.0\n") == 2 and text.count(b" 0.0\n") == 31
    _same_as_prometheus_client([family])


def test_a_repeating_float_column_keeps_zero_and_negative_zero_apart() -> None:
    """Floats too: the 0.0 and 1.0 of a tracker_working column, with a -0.0 among them."""
    values = [0.0, 1.0] * 40 + [-0.0, math.nan, math.inf, 1.0]
    hashes = [f"{n:040x}" for n in range(len(values))]
    family = Family(spec("qbittorrent_torrent_tracker_working"), exposition.Columns([hashes], values))
    text = render_text([family])
    assert text.count(b" -0.0\n") == 1 and text.count(b" 0.0\n") == 40 and text.count(b" NaN\n") == 1
    _same_as_prometheus_client([family])


def test_known_drops_the_samples_without_a_value() -> None:
    columns = exposition.Columns.known(["a", "b", "c"], [1.0, None, 0.0])
    assert list(columns) == [("a", 1.0), ("c", 0.0)]


class FreshColumns:
    """Columns built anew at each reading, as the torrents collector's are: a family's label column
    is garbage once it is rendered, and its memory (and identity) free for the next one's."""

    def __init__(self, label: str, count: int) -> None:
        self.label, self.count = label, count

    def columns(self) -> tuple[list[list[str]], list[float]]:
        return [[self.label] * self.count], [1.0] * self.count

    def __iter__(self):  # type: ignore[no-untyped-def]
        labels, values = self.columns()
        return zip(labels[0], values, strict=True)


def test_a_label_column_checked_for_escaping_is_never_mistaken_for_a_later_one() -> None:
    """The renderer checks each label column once per rendering, by identity; a column freed after
    its family would hand its identity to the next one, with labels that may need escaping."""
    families = [
        Family(spec("qbittorrent_torrent_size_bytes"), FreshColumns(label, 3))  # type: ignore[arg-type]
        for _ in range(50)
        for label in ("clean", 'a "quoted" \\ name\n')
    ]
    _same_as_prometheus_client(families)
    assert render_text(families).count(b'hash="a \\"quoted\\" \\\\ name\\n"') == 150
