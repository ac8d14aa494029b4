"""Metric families stored as columns, and a fast text renderer for them.

At 10,000 torrents a scrape carries about 200,000 samples. Building a prometheus_client ``Sample``
(a namedtuple with a label dict) for each and rendering it through ``generate_latest`` cost about
1.1 s on the reference machine, more than qBittorrent's own answer. A ``Family`` keeps its samples
as plain tuples or columns, and ``render_text`` writes them straight out, producing byte for byte
what ``generate_latest`` would (``tests/test_exposition.py`` holds it to that). For any other format
(OpenMetrics, when Prometheus asks for it), ``Family.to_metric`` hands prometheus_client an ordinary
family and its own encoder does the work.

The renderer works a column at a time, so that the per-sample work runs in C (``map``, ``join``,
slice assignment) rather than in a Python loop: a family's lines are laid out as one list of
pieces (the constant text between labels, each label column, the value texts) and joined once.
The one step left in Python per sample is writing a number the way Go does (``_value_line``), and
it is skipped for values seen before in a column of repeating integers (``_value_lines``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import compress, repeat
from typing import Protocol

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


_EXACT = 2**53  # integers below this in magnitude are exact as floats: their digits are str()'s
_EXPONENT = {digits: f"e+{digits - 1:02d}\n" for digits in range(7, 17)}


def _go_line(value: float) -> str:
    """``_go_float(value)`` and a newline, with the two commonest cases first and cheaper: an
    integer (bytes, seconds, counts: most values) is written from its own digits, without the
    float repr and the search for its dot; a float below a million is its repr."""
    if type(value) is int and -_EXACT < value < _EXACT:
        if value < 1_000_000:
            return f"{value}.0\n"
        digits = str(value)
        mantissa = digits.rstrip("0")
        exponent = _EXPONENT[len(digits)]
        return f"{mantissa[0]}.{mantissa[1:]}{exponent}" if len(mantissa) > 1 else mantissa + exponent
    if type(value) is float and -math.inf < value < 1_000_000:
        return repr(value) + "\n"
    return _go_float(value) + "\n"


_CHECKS = (
    *(0, 1, -1, 0.5, 1e6, 1234567, 12345678.9, 1e16, 1e22, 1e-7, -2e9, 4294967295, 2.5e300, -0.0, 0.0),
    *(999_999, 1_000_000, 1_000_001, 1_230_000, 10**15, 10**16 - 1, 10**16, _EXACT - 1, _EXACT, -_EXACT),
    *(-_EXACT + 1, -1_234_567, 999_999.9, 1e-5, 5e-324, True, False, 0.1, 1 / 3, 123456.789),
)


def _formatter() -> Callable[[float], str]:
    """``_go_line`` if it writes what this prometheus_client's ``floatToGoString`` writes, else the
    latter: the text must stay byte for byte prometheus_client's whatever its version."""
    values = (*_CHECKS, math.inf, -math.inf, math.nan)
    same = all(_go_line(value) == floatToGoString(value) + "\n" for value in values)
    return _go_line if same else _reference_line


def _reference_line(value: float) -> str:
    return floatToGoString(value) + "\n"


_line = _formatter()


def _escape(value: str) -> str:
    """Label-value escaping exactly as prometheus_client's text format does it."""
    if "\\" in value or "\n" in value or '"' in value:  # rare: skip three replace() calls
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


class Columnar(Protocol):
    """Samples held as columns: ``columns()`` gives one sequence per label (catalogue order) and
    the values, all of one length."""

    def columns(self) -> tuple[Sequence[Sequence[object]], Sequence[object]]: ...


class Columns:
    """A family's samples as columns; iterating gives the same samples as rows."""

    __slots__ = ("labels", "values")

    def __init__(self, labels: Sequence[Sequence[object]], values: Sequence[object]) -> None:
        self.labels = labels
        self.values = values

    @classmethod
    def known(cls, keys: list[str], values: list[float | None]) -> Columns:
        """One label column and its values, without the samples whose value is unknown (None):
        for a per-torrent family, by C-level calls, as every torrent passes here."""
        if None not in values:
            return cls([keys], values)
        kept = list(map(operator.is_not, values, repeat(None)))
        return cls([list(compress(keys, kept))], list(compress(values, kept)))

    def columns(self) -> tuple[Sequence[Sequence[object]], Sequence[object]]:
        return self.labels, self.values

    def __iter__(self) -> Iterator[tuple[object, ...]]:
        return zip(*self.labels, self.values, strict=True)


class Family:
    """One metric family for one scrape; ``add(value, label=...)`` appends a sample."""

    __slots__ = ("_added", "rows", "spec")

    def __init__(self, spec: MetricSpec, rows: Iterable[tuple[object, ...]] | None = None) -> None:
        """``rows``, when given, is read once per rendering: a lazy view saves holding a tuple per
        sample (a 10,000-torrent scrape has 200,000) for the whole of the scrape. A ``Columnar``
        one (``Columns``, the torrents collector's columns) is rendered a column at a time."""
        self.spec = spec
        self._added: list[tuple[object, ...]] = []
        self.rows: Iterable[tuple[object, ...]] = self._added if rows is None else rows

    def add(self, value: float, /, **labels: object) -> None:
        """One sample; labels by name, so that a reordered catalogue row cannot swap two labels."""
        self._added.append((*self._order(labels), value))

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
    escaped = _EscapedColumns()
    for family in families:
        spec = family.spec
        help_text = spec.help.replace("\\", r"\\").replace("\n", r"\n")
        header = f"# HELP {spec.name} {help_text}\n# TYPE {spec.name} {spec.kind}\n"
        labels, values = _columns(family)
        yield _text(header, spec, labels, values, escaped).encode("utf-8")


def _columns(family: Family) -> tuple[Sequence[Sequence[object]], Sequence[object]]:
    """The family's label columns (catalogue order) and values, however its samples are held."""
    rows = family.rows
    columns = getattr(rows, "columns", None)
    if columns is not None:
        return columns()  # type: ignore[no-any-return]
    table = list(zip(*rows, strict=True))  # rows of unequal length are a bug: raise, never guess
    if not table:
        return [[] for _ in family.spec.labels], []
    return table[:-1], table[-1]


def _text(
    header: str,
    spec: MetricSpec,
    labels: Sequence[Sequence[object]],
    values: Sequence[object],
    escaped: _EscapedColumns,
) -> str:
    """``header`` and the sample lines of one family, laid out as one list of pieces and joined
    once (the header rides on the first piece: no second copy of a family's text).

    A line is ``name{a="…",b="…"} value``: the constant pieces (``name{a="``, ``",b="``,
    ``"} ``) alternate with one label column each and then the value texts, every column filling
    its own stride of the list by one slice assignment. prometheus_client writes labels sorted by
    name; so are they here.
    """
    if len(labels) != len(spec.labels):
        raise ValueError(f"{spec.name} has labels {spec.labels}, got {len(labels)} label columns")
    count = len(values)
    if not count:
        return header
    texts = _value_lines(values)
    if not spec.labels:
        prefix = spec.name + " "
        return header + prefix + prefix.join(texts)  # every text ends in a newline
    order = sorted(range(len(spec.labels)), key=spec.labels.__getitem__)
    stride = 2 * len(order) + 2
    pieces: list[object] = [None] * (count * stride)
    opening = f"{spec.name}{{"
    for slot, index in enumerate(order):
        pieces[2 * slot :: stride] = [f'{opening}{spec.labels[index]}="'] * count
        pieces[2 * slot + 1 :: stride] = escaped(labels[index])
        opening = '",'
    pieces[stride - 2 :: stride] = ['"} '] * count
    pieces[stride - 1 :: stride] = texts
    pieces[0] = header + pieces[0]  # type: ignore[operator]
    return "".join(pieces)  # type: ignore[arg-type]  # a label that is not a str raises here


class _EscapedColumns:
    """Label columns as they are written, escaped where needed, for one rendering.

    Checking the whole column at once (three scans of its joined text) clears the common case, no
    value needing escaping, without a call per label; a column shared by several families (the
    torrents' hashes, in twenty) is checked once, by identity: this object holds every column it
    saw until the rendering ends, so an identity is never reused in the meantime.
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Sequence[object], Sequence[object]]] = {}

    def __call__(self, column: Sequence[object]) -> Sequence[object]:
        seen = self._seen.get(id(column))
        if seen is not None:
            return seen[1]
        text = "".join(column)  # type: ignore[arg-type]  # a label that is not a str raises here
        clean = "\\" not in text and "\n" not in text and '"' not in text
        out = column if clean else list(map(_escape, column))  # type: ignore[arg-type]
        self._seen[id(column)] = (column, out)
        return out


class _Texts(dict[object, str]):
    """Value → its line text, each written once per family: ``map(texts.__getitem__, values)``
    finds a repeated value without leaving C."""

    def __missing__(self, value: object) -> str:
        text = self[value] = _line(value)  # type: ignore[arg-type]
        return text


_INTEGERS = frozenset({int, bool})
_SAMPLE = 64


def _value_lines(values: Sequence[object]) -> list[str]:
    """Each value's text and a newline.

    A column whose values repeat (speeds, peers, amounts left: mostly 0; the 1.0 of every info
    and state series) writes each distinct value once. Whether they repeat is judged on the first
    few, to spare a column of distinct values (sizes, dates) a dict insertion per value.
    """
    repeating = len(values) > _SAMPLE and len(set(values[:_SAMPLE])) <= _SAMPLE // 2
    if repeating and _one_text_per_key(values):
        return list(map(_Texts().__getitem__, values))
    return list(map(_line, values))


def _one_text_per_key(values: Sequence[object]) -> bool:
    """Whether values equal as dict keys are written alike: true but for ``0`` and ``-0.0``, one key
    written "0.0" and "-0.0". So: integers only, or no zero, or nothing with a minus sign."""
    if set(map(type, values)) <= _INTEGERS or 0 not in values:
        return True
    return min(map(math.copysign, repeat(1.0), values)) > 0  # type: ignore[arg-type]
