"""The exporter's log lines: logfmt and JSON, as log pipelines next to Prometheus parse them.

Why: a torrent name or an error text can hold quotes, newlines, backslashes and equals signs; one
badly escaped value splits a logfmt line in two or shifts every key after it, and the pipeline then
drops or misfiles the line. These tests read each line back the way a consumer would.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest

from qbt_exporter import logs

#: One logfmt pair: a bare value, or a quoted one where \\ and \" are the only escapes.
PAIR = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^ "=]+))(?: |$)')


def record(
    msg: str, *args: object, level: int = logging.INFO, name: str = "qbt_exporter.scraper"
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def parse_logfmt(line: str) -> dict[str, str]:
    """Read a logfmt line back, failing if any character is left over (a broken escape)."""
    fields: dict[str, str] = {}
    position = 0
    while position < len(line):
        match = PAIR.match(line, position)
        assert match, f"unparseable logfmt at {position}: {line!r}"
        quoted, bare = match.group(2), match.group(3)
        if quoted is not None:
            fields[match.group(1)] = re.sub(
                r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), quoted
            )
        else:
            fields[match.group(1)] = bare
        position = match.end()
    return fields


HOSTILE = [
    'say "hi"',
    "two\nlines",
    "C:\\path\\to",
    "key=value",
    "trailing backslash \\",
    '\\"',
    "ünïcödé 日本語 🎉",
    "",
    "plain",
]


@pytest.mark.parametrize("message", HOSTILE)
def test_logfmt_reads_back_every_message_exactly(message: str) -> None:
    line = logs.LogfmtFormatter().format(record("%s", message))
    assert "\n" not in line  # one event, one line
    fields = parse_logfmt(line)
    assert list(fields) == ["ts", "level", "logger", "msg"]
    assert fields["msg"] == message


def test_logfmt_quotes_only_what_needs_quoting() -> None:
    fmt = logs.LogfmtFormatter()
    assert fmt.format(record("plain")).endswith(" msg=plain")
    assert fmt.format(record("ünïcödé")).endswith(" msg=ünïcödé")
    assert fmt.format(record("")).endswith(' msg=""')  # an empty bare value would read as a missing one
    assert fmt.format(record("a=b")).endswith(' msg="a=b"')
    assert fmt.format(record('x "y" \\ z\nw')).endswith(r' msg="x \"y\" \\ z\nw"')


def test_logfmt_fields_time_level_and_logger() -> None:
    rec = record("scrape failed", level=logging.WARNING, name="qbt_exporter.web")
    rec.created, rec.msecs = 1_700_000_000.25, 250.0
    fields = parse_logfmt(logs.LogfmtFormatter().format(rec))
    assert fields == {
        "ts": "2023-11-14T22:13:20.250Z",
        "level": "warning",
        "logger": "qbt_exporter.web",
        "msg": "scrape failed",
    }


def test_logfmt_keeps_the_traceback_inside_the_one_line() -> None:
    try:
        raise ValueError('bad "value"')
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    line = logs.LogfmtFormatter().format(rec)
    assert "\n" not in line
    msg = parse_logfmt(line)["msg"]
    assert msg.startswith("boom\nTraceback") and msg.endswith('ValueError: bad "value"')


@pytest.mark.parametrize("message", HOSTILE)
def test_json_reads_back_every_message_exactly(message: str) -> None:
    line = logs.JsonFormatter().format(record("%s", message, level=logging.DEBUG))
    assert "\n" not in line
    fields = json.loads(line)
    assert fields["msg"] == message and fields["level"] == "debug"
    assert set(fields) == {"ts", "level", "logger", "msg"}


def test_json_keeps_unicode_readable_and_the_traceback_apart() -> None:
    assert "日本語" in logs.JsonFormatter().format(record("日本語"))  # not \\u escapes
    try:
        raise KeyError("k")
    except KeyError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    fields = json.loads(logs.JsonFormatter().format(rec))
    assert fields["msg"] == "boom" and fields["level"] == "error"
    assert fields["exception"].startswith("Traceback") and "KeyError: 'k'" in fields["exception"]


@pytest.fixture
def root_logging() -> Iterator[None]:
    """setup() rewires the root logger; put it back so other tests' caplog keeps working."""
    root, urllib3 = logging.getLogger(), logging.getLogger("urllib3")
    saved = (root.handlers[:], root.level, urllib3.level)
    try:
        yield
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        urllib3.setLevel(saved[2])


@pytest.mark.parametrize(
    ("fmt", "formatter"), [("logfmt", logs.LogfmtFormatter), ("json", logs.JsonFormatter)]
)
def test_setup_sends_the_chosen_format_to_stderr_at_the_chosen_level(
    root_logging: None, monkeypatch: pytest.MonkeyPatch, fmt: str, formatter: type
) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    logs.setup("warning", fmt)
    root = logging.getLogger()
    assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, formatter)
    logging.getLogger("qbt_exporter.test").info("hidden")
    logging.getLogger("qbt_exporter.test").warning("shown")
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and "shown" in lines[0]


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_setup_levels_and_quiet_http_libraries(root_logging: None, level: str) -> None:
    logs.setup(level, "logfmt")
    assert logging.getLogger().level == getattr(logging, level.upper())
    # urllib3 logs every connection at debug; even --log.level=debug must not drown in it.
    assert logging.getLogger("urllib3").level == logging.WARNING
