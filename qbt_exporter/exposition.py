"""Metric families stored as columns, and a fast text renderer for them.

At 10,000 torrents a scrape carries about 220,000 samples. Building a prometheus_client ``Sample``
(a namedtuple with a label dict) for each and rendering it through ``generate_latest`` cost about
1.1 s on the reference machine, more than qBittorrent's own answer. A ``Family`` keeps its samples
as plain tuples and ``render_text`` writes them straight out, producing byte for byte what
``generate_latest`` would (``tests/test_exposition.py`` holds it to that). For any other format
(OpenMetrics, when Prometheus asks for it), ``Family.to_metric`` hands prometheus_client an ordinary
family and its own encoder does the work.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from qbt_exporter.metrics import MetricSpec

_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


def _go_float(value: float) -> str:
    """``floatToGoString`` without its three comparisons before the common case: 200,000 values a
    scrape at 10,000 torrents, most of them plain. Checked against it at import (``_formatter``)."""
    text = repr(float(value))
    dot = text.find(".")
    if dot > 6 and text[0] != "-":  # Go writes large positive numbers with an exponent
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    if dot < 0:  # inf, nan, or already in exponent form
        return _SPECIAL.get(text, text)
    return text


_CHECKS = (0, 1, -1, 0.5, 1e6, 1234567, 12345678.9, 1e16, 1e22, 1e-7, -2e9, 4294967295, 2.5e300)


def _formatter() -> Callable[[float], str]:
    """``_go_float`` if it writes what this prometheus_client's ``floatToGoString`` writes, else the
    latter: the text must stay byte for byte prometheus_client's whatever its version."""
    values = (*_CHECKS, math.inf, -math.inf, math.nan)
    same = all(_go_float(value) == floatToGoString(value) for value in values)
    return _go_float if same else floatToGoString


_fmt = _formatter()


def _escape(value: str) -> str:
    """Label-value escaping exactly as prometheus_client's text format does it."""
    if "\\" in value or "\n" in value or '"' in value:  # rare: skip three replace() calls
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


class Family:
    """One metric family for one scrape; ``add(value, label=...)`` appends a sample."""

    __slots__ = ("_added", "rows", "spec")

    def __init__(self, spec: MetricSpec, rows: Iterable[tuple[object, ...]] | None = None) -> None:
        """``rows``, when given, is read once per rendering: a lazy view saves holding a tuple per
        sample (a 10,000-torrent scrape has 200,000) for the whole of the scrape."""
        self.spec = spec
        self._added: list[tuple[object, ...]] = []
        self.rows: Iterable[tuple[object, ...]] = self._added if rows is None else rows

    def add(self, value: float, /, **labels: object) -> None:
        """One sample; labels by name, so that a reordered catalogue row cannot swap two labels."""
        self._added.append((*self._order(labels), value))

    def add_each(self, items: Iterable[object], value: float, /, **attributes: str) -> None:
        """One sample per item, each label read from the item attribute named for it
        (``hash="hash"``). One C-level getter per item: this runs for every torrent."""
        names = self._order(attributes)
        if len(names) == 1:
            single = operator.attrgetter(*names)
            self._added.extend([(single(item), value) for item in items])
        else:
            several, tail = operator.attrgetter(*names), (value,)
            self._added.extend([several(item) + tail for item in items])  # the fastest form measured

    def _order(self, labels: dict[str, object]) -> list[object]:
        """``labels`` in the order of the catalogue row; a missing or unknown name is a bug."""
        if len(labels) != len(self.spec.labels) or not all(name in labels for name in self.spec.labels):
            raise ValueError(f"{self.spec.name} takes labels {self.spec.labels}, got {tuple(labels)}")
        return [labels[name] for name in self.spec.labels]

    @property
    def base_name(self) -> str:
        """The family name as prometheus_client stores it: counters without ``_total``."""
        name = self.spec.name
        return name.removesuffix("_total") if self.spec.kind == "counter" else name

    def to_metric(self) -> Metric:
        """An ordinary prometheus_client family with the same samples, for its other encoders."""
        metric = Metric(self.base_name, self.spec.help, self.spec.kind)
        names = self.spec.labels
        metric.samples = [
            Sample(self.spec.name, dict(zip(names, row[:-1], strict=True)), float(row[-1]))  # type: ignore[arg-type]
            for row in self.rows
        ]
        return metric


class AsRegistry:
    """``families`` as the registry that prometheus_client's encoders read (``collect()``).

    Used for the formats this module does not render itself (OpenMetrics), and by the tests and
    benchmarks that compare ``render_text`` with ``generate_latest``.
    """

    def __init__(self, families: Iterable[Family]) -> None:
        self.metrics = [family.to_metric() for family in families]

    def collect(self) -> list[Metric]:
        return self.metrics


def render_text(families: Iterable[Family]) -> bytes:
    """The Prometheus text format (0.0.4) of ``families``, identical to ``generate_latest``."""
    return b"".join(render_chunks(families))


def render_chunks(families: Iterable[Family]) -> list[bytes]:
    """``render_text`` as one encoded chunk per family."""
    return list(iter_chunks(families))


def iter_chunks(families: Iterable[Family]) -> Iterator[bytes]:
    """``render_text`` as one encoded chunk per family, each rendered when it is asked for.

    A 10,000-torrent exposition is 18 MB; joining and encoding it whole would hold the lines, the
    joined text and its encoding at once. Per family, only one family's lines are in flight, and a
    consumer that compresses each chunk as it comes (``web``) never holds the whole text at all.
    """
    fmt, escape = _fmt, _escape
    for family in families:
        spec = family.spec
        help_text = spec.help.replace("\\", r"\\").replace("\n", r"\n")
        out = [f"# HELP {spec.name} {help_text}\n# TYPE {spec.name} {spec.kind}\n"]
        if not spec.labels:
            out.extend([f"{spec.name} {fmt(value)}\n" for (value,) in family.rows])
        elif len(spec.labels) == 1:
            prefix = f'{spec.name}{{{spec.labels[0]}="'
            out.extend(
                [
                    f'{prefix}{escape(label)}"}} {fmt(value)}\n'  # type: ignore[arg-type]
                    for label, value in family.rows
                ]
            )
        else:
            # prometheus_client writes labels sorted by name; render in that order.
            order = sorted(range(len(spec.labels)), key=spec.labels.__getitem__)
            keys = [f'{spec.labels[i]}="' for i in order]
            for row in family.rows:
                labels = '",'.join(keys[n] + escape(row[i]) for n, i in enumerate(order))  # type: ignore[arg-type]
                out.append(f'{spec.name}{{{labels}"}} {fmt(row[-1])}\n')
        yield "".join(out).encode("utf-8")
