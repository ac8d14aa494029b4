"""Which torrents get per-torrent series: the selector grammar of ``--torrents.include`` and
``--torrents.exclude``, and matching a torrent against it.

Pure: it reads only the exporter's model (``Torrent``), never qBittorrent's wire names, so the same
selectors mean the same thing on every qBittorrent version. Grammar (README "Choosing torrents")::

    value      := selector ( ";" selector )*       several selectors: a torrent matching any of them
    selector   := condition ( "," condition )*     one selector: every condition must hold
    condition  := key "=" text
    key        := category | tag | tracker | state | status | name
    text       := bare | '"' quoted '"'            bare: no , ; or "; quoted: \\" and \\\\ escape

``category``, ``tag`` and ``tracker`` compare whole values, with ``*`` matching any run of
characters; an empty text means "none" (``category=`` is uncategorised). Tracker hosts compare
without regard to case. ``state`` is one of the exporter's states (qBittorrent 5's names; 4.x's
``pausedUP``/``pausedDL`` are accepted for ``stoppedUP``/``stoppedDL``), ``status`` one of
qBittorrent's own status filters (``STATUS_GROUPS``), ``name`` a regular expression searched in
the torrent's name.

A bad selector raises ``SelectorError`` naming it, so start-up can stop with one clear line: a
typo in a filter must not silently export everything, or nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from qbt_exporter.qbittorrent.model import TORRENT_STATES, Torrent

KEYS: tuple[str, ...] = ("category", "tag", "tracker", "state", "status", "name")

# 4.x's names of two states the model (and every metric) calls by 5.0's names: a user who knows
# qBittorrent 4 writes these. (The wire mapping lives with the flavours; a test keeps them equal.)
OLD_STATE_NAMES: dict[str, str] = {"pausedUP": "stoppedUP", "pausedDL": "stoppedDL"}

_DOWNLOADING = frozenset(
    {"downloading", "metaDL", "forcedMetaDL", "stalledDL", "checkingDL", "queuedDL", "forcedDL"}
)
_SEEDING = frozenset({"uploading", "stalledUP", "checkingUP", "queuedUP", "forcedUP"})
_STOPPED = frozenset({"stoppedUP", "stoppedDL"})
_ACTIVE = frozenset({"downloading", "metaDL", "forcedMetaDL", "forcedDL", "uploading", "forcedUP", "moving"})


def is_active(torrent: Torrent) -> bool:
    """qBittorrent's "Active" status: moving data or files now (a stalled download that uploads
    counts, as qBittorrent counts it)."""
    if torrent.state in _ACTIVE:
        return True
    return torrent.state == "stalledDL" and bool(torrent.upload_speed)


def _in(states: frozenset[str]) -> Callable[[Torrent], bool]:
    return lambda torrent: torrent.state in states


# qBittorrent's status filters (its WebUI side bar, base/torrentfilter.cpp), over the model's states.
# "downloading" leaves stopped torrents out, as qBittorrent's current source does (4.x and 5.0 counted
# them);
# "stopped" is stoppedUP/stoppedDL only: an errored torrent is "errored" whatever the version.
STATUS_GROUPS: dict[str, Callable[[Torrent], bool]] = {
    "downloading": _in(_DOWNLOADING),
    "seeding": _in(_SEEDING),
    "completed": _in(_SEEDING | {"stoppedUP"}),
    "stopped": _in(_STOPPED),
    "paused": _in(_STOPPED),
    "running": lambda torrent: torrent.state not in _STOPPED,
    "resumed": lambda torrent: torrent.state not in _STOPPED,
    "active": is_active,
    "inactive": lambda torrent: not is_active(torrent),
    "stalled": _in(frozenset({"stalledUP", "stalledDL"})),
    "stalled_uploading": _in(frozenset({"stalledUP"})),
    "stalled_downloading": _in(frozenset({"stalledDL"})),
    "checking": _in(frozenset({"checkingUP", "checkingDL", "checkingResumeData"})),
    "moving": _in(frozenset({"moving"})),
    "errored": _in(frozenset({"error", "missingFiles"})),
}

_STATE_BY_LOWER: dict[str, str] = {
    **{state.lower(): state for state in TORRENT_STATES},
    **{old.lower(): new for old, new in OLD_STATE_NAMES.items()},
}
_NEEDS_QUOTES = re.compile(r'[,;"\\]|^\s|\s$|^$')


class SelectorError(ValueError):
    """A selector the exporter cannot use; ``selector`` is its text as given."""

    def __init__(self, selector: str, reason: str) -> None:
        super().__init__(f"selector {selector!r}: {reason}")
        self.selector = selector
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    text: str  # as the user meant it (quotes and escapes removed)
    test: Callable[[Torrent], bool]

    def __str__(self) -> str:
        return f"{self.key}={quote(self.text)}"


@dataclass(frozen=True, slots=True)
class Selector:
    """Conditions that must all hold."""

    conditions: tuple[Condition, ...]

    def matches(self, torrent: Torrent) -> bool:
        return all(condition.test(torrent) for condition in self.conditions)

    def __str__(self) -> str:
        return ",".join(str(condition) for condition in self.conditions)


@dataclass(frozen=True, slots=True)
class Filters:
    """Include and exclude selectors: no include means every torrent; exclude wins."""

    include: tuple[Selector, ...] = ()
    exclude: tuple[Selector, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.include or self.exclude)

    def passes(self, torrent: Torrent) -> bool:
        if self.include and not any(selector.matches(torrent) for selector in self.include):
            return False
        return not any(selector.matches(torrent) for selector in self.exclude)


def quote(text: str) -> str:
    """``text`` as it would be written in a selector: bare when it can be, quoted otherwise."""
    if not _NEEDS_QUOTES.search(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def describe(selectors: Iterable[Selector]) -> str:
    """The selectors in one canonical line (for the filters' info metric and the log)."""
    return "; ".join(str(selector) for selector in selectors)


def parse(text: str) -> tuple[Selector, ...]:
    """Every selector in ``text`` (``;``-separated); blank ones are ignored. SelectorError if any
    is unusable, naming that one."""
    return tuple(_selector(raw, conditions) for raw, conditions in _split(text) if raw)


def parse_all(texts: Iterable[str]) -> tuple[Selector, ...]:
    """The selectors of several values (one per repeated flag)."""
    return tuple(selector for text in texts for selector in parse(text))


# --- reading the text -------------------------------------------------------------------------------


def _split(text: str) -> Iterator[tuple[str, list[str]]]:
    """(selector text, its condition texts) for each ``;``-separated piece, quotes respected."""
    start = 0
    conditions: list[str] = []
    condition_start = 0
    quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if quoted:
            if char == "\\":
                i += 1  # the escaped character, whatever it is, stays inside the quotes
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in ",;":
            conditions.append(text[condition_start:i])
            condition_start = i + 1
            if char == ";":
                yield text[start:i].strip(), conditions
                start, conditions = i + 1, []
        i += 1
    if quoted:
        raise SelectorError(text[start:].strip(), "a quote is not closed")
    conditions.append(text[condition_start:])
    yield text[start:].strip(), conditions


def _selector(raw: str, conditions: list[str]) -> Selector:
    return Selector(tuple(_condition(raw, text) for text in conditions))


def _condition(raw: str, text: str) -> Condition:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not text.strip():
        raise SelectorError(raw, "an empty condition (two commas in a row, or one at an end)")
    if not sep:
        raise SelectorError(raw, f"{text.strip()!r} is not key=value (keys: {', '.join(KEYS)})")
    if key not in KEYS:
        raise SelectorError(raw, f"unknown key {key!r} (keys: {', '.join(KEYS)})")
    wanted = _unquote(raw, value.strip())
    return Condition(key, wanted, _TESTS[key](raw, wanted))


def _unquote(raw: str, value: str) -> str:
    if not value.startswith('"'):
        if '"' in value:
            raise SelectorError(raw, f"a quote inside the unquoted value {value!r}")
        return value
    out: list[str] = []
    i = 1
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value) and value[i + 1] in '"\\':
            out.append(value[i + 1])
            i += 2
            continue
        if char == '"':
            if value[i + 1 :].strip():
                raise SelectorError(raw, f"text after the closing quote in {value!r}")
            return "".join(out)
        out.append(char)
        i += 1
    raise SelectorError(raw, "a quote is not closed")


# --- what each key tests ----------------------------------------------------------------------------


def _pattern(text: str, *, ignore_case: bool = False) -> Callable[[str], bool]:
    """Whole-value comparison, ``*`` matching any run of characters."""
    if "*" not in text:
        if ignore_case:
            lowered = text.lower()
            return lambda value: value.lower() == lowered
        return lambda value: value == text
    regex = re.compile(
        "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", text)),
        re.DOTALL | (re.IGNORECASE if ignore_case else 0),
    )
    return lambda value: regex.fullmatch(value) is not None


def _category(raw: str, text: str) -> Callable[[Torrent], bool]:
    match = _pattern(text)
    return lambda torrent: match(torrent.category)


def _tag(raw: str, text: str) -> Callable[[Torrent], bool]:
    if text == "":
        return lambda torrent: torrent.tags == ""
    match = _pattern(text)
    return lambda torrent: any(match(tag) for tag in torrent.tags.split(",")) if torrent.tags else False


def _tracker(raw: str, text: str) -> Callable[[Torrent], bool]:
    match = _pattern(text, ignore_case=True)
    return lambda torrent: match(torrent.tracker)


def _state(raw: str, text: str) -> Callable[[Torrent], bool]:
    state = _STATE_BY_LOWER.get(text.lower())
    if state is None:
        hint = f"; for the group write status={text}" if text.lower() in STATUS_GROUPS else ""
        raise SelectorError(raw, f"unknown state {text!r}{hint}")
    return lambda torrent: torrent.state == state


def _status(raw: str, text: str) -> Callable[[Torrent], bool]:
    test = STATUS_GROUPS.get(text.lower())
    if test is None:
        raise SelectorError(raw, f"unknown status {text!r} (one of {', '.join(STATUS_GROUPS)})")
    return test


def _name(raw: str, text: str) -> Callable[[Torrent], bool]:
    try:
        regex = re.compile(text)
    except (re.error, OverflowError, RecursionError) as err:
        raise SelectorError(raw, f"name is not a regular expression: {err}") from None
    return lambda torrent: regex.search(torrent.name) is not None


_TESTS: dict[str, Callable[[str, str], Callable[[Torrent], bool]]] = {
    "category": _category,
    "tag": _tag,
    "tracker": _tracker,
    "state": _state,
    "status": _status,
    "name": _name,
}
