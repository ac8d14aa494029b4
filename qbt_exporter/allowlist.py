"""Which qBittorrent URLs a ``/probe`` module may send its credentials to.

An open ``/probe`` is a server-side request forgery hole, and here it would also post a module's
password to whatever URL a caller names. So a probe's target is parsed strictly into one canonical
form, checked against the module's allow list, and the exporter then connects to that canonical
URL, never to the text it was given: what was checked is what is contacted.

Strict means refused rather than guessed (HTTP 400, no request):

* only ``http`` and ``https``; no user info (``http://allowed.example@evil/`` names the host
  ``evil``); no query, fragment, whitespace, control character, backslash or ``%`` in the host;
  no ``.`` or ``..`` path segments;
* host names are compared lower-cased, as IDNA (``bücher.example`` is ``xn--bcher-kva.example``,
  and full-width dots are dots), without one trailing dot; IPv4 only in dotted-quad form (a host
  such as ``2130706433`` or ``0x7f.1``, which the resolver would read as 127.0.0.1, is refused);
  IPv6 in brackets, compared in its compressed form, without a zone;
* the port is compared explicitly: ``http://host`` is ``http://host:80``.

An allow-list entry is either an **exact URL** (scheme, host, port and path prefix must all be the
same), or a **host pattern**, ``host``, ``*.domain``, an IP address, each with an optional
``:port``: any http or https URL on that host (and port, when given) is allowed. ``*.domain``
matches names under ``domain`` (one label or more), never ``domain`` itself, nor an IP address.
Host names are never resolved: the allow list speaks of names, as the URL does.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import idna

SCHEMES = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LOOKING = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")


class TargetError(ValueError):
    """A target (or allow-list entry) that is not a URL or host this exporter will use."""


@dataclass(frozen=True, slots=True)
class Target:
    """A qBittorrent URL in canonical form; equal targets are the same server and path."""

    scheme: str
    host: str  # lower-case ASCII (IDNA) name without trailing dot, dotted-quad IPv4, or compressed IPv6
    port: int
    path: str  # "" or "/prefix" without trailing slash

    @property
    def is_ip(self) -> bool:
        return _is_ip(self.host)

    @property
    def url(self) -> str:
        """The URL the exporter connects to (the default port left out, as a user writes it)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if SCHEMES[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"


def parse_target(text: str) -> Target:
    """``text`` as a canonical Target; TargetError saying why it is refused."""
    if len(text) > MAX_URL_LENGTH:
        raise TargetError(f"longer than {MAX_URL_LENGTH} characters")
    if _FORBIDDEN.search(text):
        raise TargetError("contains whitespace, a control character or a backslash")
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise TargetError("is not an http:// or https:// URL")
    if "?" in rest or "#" in rest:
        raise TargetError("must not have a query or fragment")
    if "@" in rest:
        raise TargetError("must not contain user info (user@ or user:password@)")
    netloc, slash, path = rest.partition("/")
    host, port = _split_port(netloc, default=SCHEMES[scheme])
    return Target(scheme, _canonical_host(host), port, _canonical_path(slash + path))


def _split_port(netloc: str, *, default: int | None) -> tuple[str, int | None]:
    """(host, port) of ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise TargetError("has an unclosed [ in its host")
        host, after = netloc[1:end], netloc[end + 1 :]
        if host and not _is_ipv6(host):
            raise TargetError(f"[{host}] is not an IPv6 address")
        if after and not after.startswith(":"):
            raise TargetError("has text after its IPv6 address")
        port_text = after[1:] if after else None
    else:
        host, sep, port_text = netloc.partition(":")
        if not sep:
            port_text = None
    if port_text is None:
        return host, default
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise TargetError(f"port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _canonical_host(host: str) -> str:
    if not host:
        raise TargetError("has no host")
    if "%" in host:
        raise TargetError("has a % in its host (percent-encoding or an IPv6 zone)")
    if ":" in host:  # only an IPv6 address gets here with a colon (checked by _split_port)
        if not _is_ipv6(host):
            raise TargetError(f"{host!r} is not a host")
        return ipaddress.IPv6Address(host).compressed
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii") if not host.isascii() else host.lower()
    except (idna.IDNAError, UnicodeError) as err:
        raise TargetError(f"host {host!r} is not a valid international domain name ({err})") from None
    if ascii_host.endswith("."):
        ascii_host = ascii_host[:-1]
    labels = ascii_host.split(".")
    if not ascii_host or len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise TargetError(f"host {host!r} is not a valid host name")
    for label in labels:
        if label.startswith("xn--"):  # punycode: must decode, or two spellings could name one host
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                raise TargetError(f"host {host!r} has an invalid punycode label") from None
    if _NUMERIC_LOOKING.match(labels[-1]):
        raise TargetError(f"host {host!r} is neither a host name nor an IPv4 address in dotted-quad form")
    return ascii_host


def _canonical_path(path: str) -> str:
    segments = path.split("/")
    if any(segment.lower() in (".", "..", "%2e", "%2e%2e", ".%2e", "%2e.") for segment in segments):
        raise TargetError("must not have . or .. path segments")
    return path.rstrip("/")


@dataclass(frozen=True, slots=True)
class AllowRule:
    """One allow-list entry: an exact URL, or a host pattern with an optional port."""

    text: str
    exact: Target | None = None
    host: str = ""  # a host name, IP address, or the domain of a "*." pattern
    wildcard: bool = False
    port: int | None = None

    def allows(self, target: Target) -> bool:
        if self.exact is not None:
            return target == self.exact
        if self.port is not None and target.port != self.port:
            return False
        if self.wildcard:
            return not target.is_ip and target.host.endswith("." + self.host)
        return target.host == self.host


def parse_rule(text: str) -> AllowRule:
    """An allow-list entry; TargetError saying why it is not one."""
    if "://" in text:
        return AllowRule(text, exact=parse_target(text))
    if _FORBIDDEN.search(text) or any(char in text for char in "/@?#"):
        raise TargetError(
            "is neither a URL with http:// or https:// nor a host pattern (host, *.domain, an IP "
            "address, each with an optional :port)"
        )
    host, port = _split_port(text, default=None)
    wildcard = host.startswith("*.")
    if wildcard:
        host = host[2:]
    if "*" in host:
        raise TargetError("may only start with '*.' followed by a domain ('*' alone would allow any host)")
    canonical = _canonical_host(host)
    if wildcard and _is_ip(canonical):
        raise TargetError("'*.' must be followed by a domain name, not an IP address")
    return AllowRule(text, host=canonical, wildcard=wildcard, port=port)


def allowed(rules: tuple[AllowRule, ...], target: Target) -> bool:
    return any(rule.allows(target) for rule in rules)
