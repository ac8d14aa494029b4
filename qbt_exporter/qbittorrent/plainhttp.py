"""One HTTP/1.1 reply read straight off a socket, the way ``http.client`` reads it, without its cost.

Why: a scrape of a large library makes hundreds of small calls (one per torrent's properties or
trackers), and through ``requests`` → ``urllib3`` → ``http.client`` each cost the exporter about
1.3 ms of CPU, of which the reply's head alone (``http.client`` hands its headers to the ``email``
package's parser) was a quarter. Reading the head here costs a few microseconds.

What is kept of ``http.client``, so that ``transport.failure_kind`` reads every failure as before:
the limits (a line over 65,536 bytes is ``LineTooLong``, more than 100 headers an ``HTTPException``),
``RemoteDisconnected`` when the server closes before a status line, ``BadStatusLine`` for one that
is not, ``IncompleteRead`` for a body shorter than announced or a broken chunk, ``100 Continue``
skipped, and the body's framing: chunked when ``Transfer-Encoding`` is ``chunked``, else
``Content-Length`` (a bad one reads to the end), else up to the close; none after 1xx, 204 and 304.
Headers end at the first line that is not one (as the ``email`` parser stops there too); a header
sent twice reads as both values joined by ", ", as ``urllib3`` joins them.
"""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Iterator, Mapping
from typing import Any

import urllib3.exceptions

MAXLINE = 65536  # http.client's _MAXLINE
MAXHEADERS = 100  # http.client's _MAXHEADERS
_RECV = 65536
# A header line's start, as the email parser recognises one (its headerRE, without "From ").
_HEADER_NAME = re.compile("[\041-\071\073-\176]+:")
# The head of an ordinary reply, and one of its header lines.
_SIMPLE_HEAD = re.compile(
    "HTTP/[0-9.]+ ([1-9][0-9][0-9])(?: [^\r\n]*)?\r\n((?:[\041-\071\073-\176]+:[^\r\n]*\r\n)*)\r\n"
)
_FIELD_LINE = re.compile("[\041-\071\073-\176]+:[^\r\n]*\r\n")
_FIELD = re.compile("([\041-\071\073-\176]+):[ \t]*([^\r\n]*)\r\n")  # its name and value, as email reads them
_NO_BODY = frozenset({204, 304})
# http.client's rules for what it sends (_contains_disallowed_url_pchar_re, _is_legal_header_name,
# _is_illegal_header_value).
_BAD_TARGET = re.compile("[\x00-\x20\x7f]")
_GOOD_NAME = re.compile("[^:\\s][^:\r\n]*")
_BAD_VALUE = re.compile("\n(?![ \t])|\r(?![ \t\n])")


class SocketReader:
    """A buffer over a blocking socket: lines (with a limit) and reads of up to n bytes."""

    __slots__ = ("_buf", "_pos", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def readline(self, limit: int) -> bytes:
        """Up to and including the next b"\\n", at most ``limit`` bytes; less at the end of the stream."""
        while True:
            buf, pos = self._buf, self._pos
            end = buf.find(b"\n", pos, pos + limit)
            if end >= 0:
                self._pos = end + 1
                return buf[pos : end + 1]
            if len(buf) - pos >= limit:
                self._pos = pos + limit
                return buf[pos : pos + limit]
            data = self._sock.recv(_RECV)
            if not data:
                self._buf, self._pos = b"", 0
                return buf[pos:]
            self._buf, self._pos = buf[pos:] + data, 0

    def peek_head(self) -> bytes | None:
        """Everything up to the first blank line, when the first piece received holds it; consumes nothing."""
        if not self._buf:
            self._buf = self._sock.recv(_RECV)
        end = self._buf.find(b"\r\n\r\n", self._pos)
        return None if end < 0 else self._buf[self._pos : end + 4]

    def skip(self, size: int) -> None:
        self._pos += size

    def read(self, size: int) -> bytes:
        """``size`` bytes, or fewer at the end of the stream (blocks until one or the other)."""
        buf, pos = self._buf, self._pos
        have = len(buf) - pos
        if have >= size:
            self._pos = pos + size
            return buf[pos : pos + size]
        parts = [buf[pos:]] if have else []
        self._buf, self._pos = b"", 0
        need = size - have
        while need > 0:
            data = self._sock.recv(min(need, _RECV))
            if not data:
                break
            parts.append(data)
            need -= len(data)
        return b"".join(parts)


class Reply:
    """A reply's status and headers, read; its body is read by ``read`` in pieces, as framed."""

    __slots__ = (
        "_chunk_left",
        "_chunked",
        "_done",
        "_reader",
        "_received",
        "_remaining",
        "head",
        "headers",
        "status",
    )

    def __init__(self, reader: SocketReader, status: int, headers: Headers, head: bytes) -> None:
        self._reader = reader
        self.status = status
        self.headers = headers
        self.head = head  # the header lines as sent (for Set-Cookie, read by http.cookiejar)
        self._chunked = False
        self._chunk_left = 0
        self._remaining: int | None = None  # None: up to the close
        self._received = 0  # bytes of a body with a Content-Length read so far
        self._done = False
        if status in _NO_BODY or 100 <= status < 200:
            self._remaining = 0
        elif (headers.get("transfer-encoding") or "").lower() == "chunked":
            self._chunked = True
        else:
            self._remaining = _content_length(headers.get("content-length"))

    @property
    def framed(self) -> bool:
        """Whether the body's end is known without the server closing (so the connection may be reused)."""
        return self._chunked or self._remaining is not None

    @property
    def complete(self) -> bool:
        return self._done

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes of the body; b"" once it has all been read."""
        if self._done:
            return b""
        if self._chunked:
            return self._read_chunk(size)
        if self._remaining is None:
            data = self._reader.read(size)
            if not data:
                self._done = True
            return data
        if self._remaining == 0:
            self._done = True
            return b""
        data = self._reader.read(min(size, self._remaining))
        if not data:
            raise urllib3.exceptions.IncompleteRead(self._received, self._remaining)
        self._remaining -= len(data)
        self._received += len(data)
        return data

    def _read_chunk(self, size: int) -> bytes:
        if self._chunk_left == 0:
            line = self._reader.readline(MAXLINE + 1)
            if len(line) > MAXLINE:
                raise http.client.LineTooLong("chunk size")
            try:
                left = int(line.partition(b";")[0], 16)
            except ValueError:
                raise http.client.IncompleteRead(b"") from None
            if left < 0:
                raise http.client.IncompleteRead(b"")
            if left == 0:
                self._skip_trailer()
                self._done = True
                return b""
            self._chunk_left = left
        want = min(size, self._chunk_left)
        data = self._reader.read(want)
        if len(data) < want:
            raise http.client.IncompleteRead(data, want - len(data))
        self._chunk_left -= want
        if self._chunk_left == 0:
            self._reader.read(2)  # the chunk's CRLF (http.client does not check it either)
        return data

    def _skip_trailer(self) -> None:
        while True:
            line = self._reader.readline(MAXLINE + 1)
            if len(line) > MAXLINE:
                raise http.client.LineTooLong("trailer line")
            if line in (b"\r\n", b"\n", b""):
                return


class Headers(Mapping[str, str]):
    """A reply's headers by name, whatever its case (as requests' ``CaseInsensitiveDict``), built
    in one pass: ``store`` maps each lower-case name to the name as sent and its value."""

    __slots__ = ("_store",)

    def __init__(self, store: dict[str, tuple[str, str]]) -> None:
        self._store = store

    def __getitem__(self, name: str) -> str:
        return self._store[name.lower()][1]

    def get(self, name: str, default: Any = None) -> Any:
        item = self._store.get(name.lower())
        return default if item is None else item[1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._store

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


def read_reply(sock: socket.socket) -> Reply:
    """The status line and headers of the next reply on ``sock`` (after any ``100 Continue``)."""
    reader = SocketReader(sock)
    simple = _simple_head(reader)
    if simple is not None:
        return Reply(reader, *simple)
    while True:
        status = _read_status(reader)
        lines = _read_header_lines(reader)
        if status != 100:
            break
    return Reply(reader, status, _headers([str(line, "iso-8859-1") for line in lines]), b"".join(lines))


def _simple_head(reader: SocketReader) -> tuple[int, Headers, bytes] | None:
    """The head of a reply that arrived whole in the first piece read and has nothing unusual
    (a plain status line, no folded or odd header line, within every limit), read in one go; else
    ``None``, with nothing consumed: the head is then read line by line, as http.client does."""
    block = reader.peek_head()
    if block is None or len(block) > MAXLINE or block.count(b"\n") > MAXHEADERS + 1:
        return None
    match = _SIMPLE_HEAD.fullmatch(str(block, "iso-8859-1"))
    if match is None or match[1] == "100":
        return None
    reader.skip(len(block))
    pairs = _FIELD.findall(match[2])
    store = {name.lower(): (name, value) for name, value in pairs}
    headers = Headers(store) if len(store) == len(pairs) else _headers(_FIELD_LINE.findall(match[2]))
    return int(match[1]), headers, block[match.start(2) : -2]


def _read_status(reader: SocketReader) -> int:
    raw = reader.readline(MAXLINE + 1)
    if len(raw) > MAXLINE:
        raise http.client.LineTooLong("status line")
    if not raw:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    line = str(raw, "iso-8859-1")
    # http.client's own reading, down to which ValueError a bad status carries
    try:
        version, status, _ = line.split(None, 2)
    except ValueError:
        try:
            version, status = line.split(None, 1)
        except ValueError:
            version = ""
    if not version.startswith("HTTP/"):
        raise http.client.BadStatusLine(line)
    try:
        code = int(status)
        if code < 100 or code > 999:
            raise http.client.BadStatusLine(line)
    except ValueError:
        raise http.client.BadStatusLine(line)  # noqa: B904 - the ValueError is what the message shows
    return code


def _read_header_lines(reader: SocketReader) -> list[bytes]:
    lines: list[bytes] = []
    while True:
        line = reader.readline(MAXLINE + 1)
        if len(line) > MAXLINE:
            raise http.client.LineTooLong("header line")
        if len(lines) >= MAXHEADERS:  # the blank line that ends them counts too, in http.client
            raise http.client.HTTPException(f"got more than {MAXHEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return lines
        lines.append(line)


def _headers(lines: list[str]) -> Headers:
    """Name → value; a folded line continues the header before it; the headers end at the first
    line that is none (the email parser takes the rest for a body)."""
    store: dict[str, tuple[str, str]] = {}
    key = ""
    for line in lines:
        if line[:1] in (" ", "\t"):
            if key:
                name, value = store[key]
                store[key] = (name, value + line.rstrip("\r\n"))
            continue
        if not _HEADER_NAME.match(line):
            break
        name, _, value = line.partition(":")
        value = value.lstrip(" \t").rstrip("\r\n")
        key = name.lower()
        known = store.get(key)
        store[key] = (name, value) if known is None else (known[0], f"{known[1]}, {value}")
    return Headers(store)


def _content_length(value: str | None) -> int | None:
    """The announced length, as http.client reads it; ``None`` (read to the close) when it is
    not a number. Differing values sent twice are refused, as urllib3 refuses them."""
    if not value:
        return None
    values = {part.strip() for part in value.split(",")}
    if len(values) > 1:
        raise http.client.HTTPException(f"Content-Length contained multiple unmatching values ({value})")
    try:
        length = int(values.pop())
    except ValueError:
        return None
    return length if length >= 0 else None


def header_block(host: str, headers: Mapping[str, str]) -> bytes | None:
    """The header lines of a request (``Host`` first, as http.client sends it) and the blank line
    that ends them, or ``None`` when http.client would refuse one of them (a line break in a
    value): the caller then goes through ``requests``, which refuses it as it always did."""
    pairs = [("Host", headers.get("Host", host))]
    pairs.extend((name, value) for name, value in headers.items() if name.lower() != "host")
    if not all(_GOOD_NAME.fullmatch(name) and not _BAD_VALUE.search(value) for name, value in pairs):
        return None
    try:
        return ("".join(f"{name}: {value}\r\n" for name, value in pairs) + "\r\n").encode("latin-1")
    except UnicodeEncodeError:
        return None


def request_line(target: str) -> bytes | None:
    """``GET target HTTP/1.1``, or ``None`` for a target http.client refuses (a control character)."""
    if _BAD_TARGET.search(target) or not target.isascii():
        return None
    return f"GET {target} HTTP/1.1\r\n".encode("ascii")
