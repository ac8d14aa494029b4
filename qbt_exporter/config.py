"""Command-line flags with environment-variable fallbacks, validated into one ``Config``.

Every flag can also come from the environment (the variable is named in the flag's help), and a
flag on the command line wins. The password and the API key come only from a file or the
environment: a flag's value would show in ``ps`` to every user of the machine.

Any bad value raises ``ConfigError`` with one line that names the flag; the CLI prints it and
exits with status 2 before anything starts.
"""

from __future__ import annotations

import argparse
import os
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from qbt_exporter import __version__, filters, properties, trackers
from qbt_exporter.collectors import registry as collector_registry
from qbt_exporter.httpserver import Limits
from qbt_exporter.qbittorrent.password import (
    FixedPassword,
    PasswordFile,
    PasswordSource,
    has_credentials,
    read_password_file,
)
from qbt_exporter.webaccess import TLSTwice, WebAccess
from qbt_exporter.webconfig import TLSSettings, WebConfigError
from qbt_exporter.webtls import as_flag, server_context


class ConfigError(Exception):
    """A flag or variable has a value the exporter cannot run with."""


@dataclass(frozen=True, slots=True)
class Config:
    qbittorrent_url: str
    username: str
    password: PasswordSource | None
    api_key: str | None
    timeout: float
    host_header: str | None
    verify: bool | str
    max_reply_size: int
    listen_host: str
    listen_port: int
    telemetry_path: str
    timeout_offset: float
    web_access: WebAccess  # TLS and Basic auth: --web.config.file and the --web.tls-* shorthand, loaded
    web_limits: Limits
    log_level: str
    log_format: str
    collectors: frozenset[str]  # the names of the collectors that run (collectors/registry.py)
    exporter_metrics: bool  # the process's own process_* and python_* metrics
    properties_max_age: float
    torrent_filters: filters.Filters  # which torrents get per-torrent series (filters.py)
    torrents_max: int | None  # at most this many of them (selection.py); None: no cap
    trackers_max_age: float
    demo: bool
    # /probe (modules.py, targets.py): the modules file, and the bounds on per-target state
    config_file: str | None = None
    probe_idle_timeout: float = 600.0
    probe_max_targets: int = 100
    # whether /metrics reads the --qbittorrent.url qBittorrent: always without a config file;
    # with one, only when the URL was given (flag or environment)
    default_target: bool = True
    refresh_ahead: bool = False  # per-torrent refreshes between scrapes (refresher.py)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$", re.IGNORECASE)
_UNIT_BYTES = {
    None: 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}
_API_PATH = re.compile(r"/api/v2(/.*)?$")
_LOG_LEVELS = ("debug", "info", "warning", "error")
_LOG_FORMATS = ("logfmt", "json")


def parse_duration(text: str) -> float:
    """Seconds from ``5``, ``2.5s``, ``500ms``, ``5m`` or ``1h``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (examples: 5s, 500ms, 5m)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_size(text: str) -> int:
    """Bytes from ``1048576``, ``500KiB``, ``64MB`` or ``256MiB`` (KB/MB/GB are powers of 10)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 256MiB, 64MB, 500KiB, 1048576)")
    unit = match.group(2).lower() if match.group(2) else None
    return int(float(match.group(1)) * _UNIT_BYTES[unit])


def check_ca_file(path: str) -> None:
    """Load ``path`` as qBittorrent's CA bundle now, so that a wrong file stops start-up instead of
    failing every scrape: ValueError if it cannot be read or holds no certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # empty: only the file's certificates count
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as err:  # an OSError too: caught first
        raise ValueError(f"{path} holds no usable PEM certificate ({err.reason or err})") from None
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from None
    if not context.cert_store_stats()["x509"]:
        raise ValueError(f"{path} holds no usable PEM certificate")


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (true or false)")


def parse_listen_address(text: str) -> tuple[str, int]:
    """``:9561`` (all IPv4 interfaces), ``127.0.0.1:9561``, ``[::]:9561``."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r} is not host:port (examples: :9561, 127.0.0.1:9561, [::]:9561)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: put an IPv6 address in brackets, as in [::1]:9561")
    return host or "0.0.0.0", int(port_text)


# A secret given as a flag: never echoed back (argparse would quote the value in its error).
_SECRET_FLAG = re.compile(r"(?:^|\s)--qbittorrent\.(password|api-key)(?:=|\s|$)")
_SECRET_HOME = {
    "password": ("--qbittorrent.password-file FILE", "QBITTORRENT_PASSWORD"),
    "api-key": ("--qbittorrent.api-key-file FILE", "QBITTORRENT_API_KEY"),
}


class _Parser(argparse.ArgumentParser):
    """argparse that fails with one line instead of a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        secret = _SECRET_FLAG.search(message) if message.startswith("unrecognized arguments") else None
        if secret:
            # A newcomer's first guess; the plain "unrecognized arguments" would also print the secret.
            file_flag, var = _SECRET_HOME[secret.group(1)]
            raise ConfigError(
                f"--qbittorrent.{secret.group(1)}: not a flag, so that the secret never shows in ps: "
                f"put it in a file given with {file_flag}, or in the environment variable {var}"
            )
        raise ConfigError(message)


# (flag, environment variable, default, help)
_FLAGS: tuple[tuple[str, str, str | None, str], ...] = (
    (
        "--qbittorrent.url",
        "QBITTORRENT_URL",
        "http://localhost:8080",
        "WebUI URL of qBittorrent, with a path prefix when behind a reverse proxy",
    ),
    ("--qbittorrent.username", "QBITTORRENT_USERNAME", "admin", "WebUI user name"),
    (
        "--qbittorrent.password-file",
        "QBITTORRENT_PASSWORD_FILE",
        None,
        "file holding the WebUI password (or set QBITTORRENT_PASSWORD)",
    ),
    (
        "--qbittorrent.api-key-file",
        "QBITTORRENT_API_KEY_FILE",
        None,
        "file holding a qBittorrent 5.2+ API key, sent as a Bearer token (or set QBITTORRENT_API_KEY)",
    ),
    ("--qbittorrent.timeout", "QBITTORRENT_TIMEOUT", "5s", "timeout of each request to qBittorrent"),
    (
        "--qbittorrent.host-header",
        "QBITTORRENT_HOST_HEADER",
        None,
        "Host header to send, for a port-mapped qBittorrent that checks it (e.g. localhost:8080)",
    ),
    ("--qbittorrent.ca-file", "QBITTORRENT_CA_FILE", None, "CA bundle to verify qBittorrent's HTTPS"),
    (
        "--qbittorrent.max-reply-size",
        "QBITTORRENT_MAX_REPLY_SIZE",
        "256MiB",
        "largest reply read from qBittorrent, decoded (e.g. 64MB, 500KiB); a larger one fails that call",
    ),
    ("--web.listen-address", "QBT_EXPORTER_WEB_LISTEN_ADDRESS", ":9561", "address to serve metrics on"),
    ("--web.telemetry-path", "QBT_EXPORTER_WEB_TELEMETRY_PATH", "/metrics", "path of the metrics"),
    (
        "--web.timeout-offset",
        "QBT_EXPORTER_WEB_TIMEOUT_OFFSET",
        "0.5s",
        "subtracted from Prometheus's scrape timeout to leave time to answer",
    ),
    (
        "--web.config.file",
        "QBT_EXPORTER_WEB_CONFIG_FILE",
        None,
        "exporter-toolkit web config (YAML): TLS, client certificates, Basic auth users, headers; "
        "re-read when it changes (see Securing the exporter)",
    ),
    (
        "--web.tls-cert-file",
        "QBT_EXPORTER_WEB_TLS_CERT_FILE",
        None,
        "serve HTTPS with this certificate: a shorthand of tls_server_config.cert_file",
    ),
    ("--web.tls-key-file", "QBT_EXPORTER_WEB_TLS_KEY_FILE", None, "private key of --web.tls-cert-file"),
    (
        "--web.max-connections",
        "QBT_EXPORTER_WEB_MAX_CONNECTIONS",
        "256",
        "open connections served at once (idle ones included); more are refused at once",
    ),
    (
        "--web.read-timeout",
        "QBT_EXPORTER_WEB_READ_TIMEOUT",
        "10s",
        "time for a client's TLS handshake, request line and headers",
    ),
    (
        "--web.idle-timeout",
        "QBT_EXPORTER_WEB_IDLE_TIMEOUT",
        "2m",
        "how long a kept-alive connection may wait for its next request",
    ),
    (
        "--web.write-timeout",
        "QBT_EXPORTER_WEB_WRITE_TIMEOUT",
        "1m",
        "time for a client to take one whole answer",
    ),
    ("--log.level", "QBT_EXPORTER_LOG_LEVEL", "info", "debug, info, warning or error"),
    ("--log.format", "QBT_EXPORTER_LOG_FORMAT", "logfmt", "logfmt or json"),
    (
        "--config.file",
        "QBT_EXPORTER_CONFIG_FILE",
        None,
        "YAML file of /probe modules (credentials, allowed targets); reloaded on SIGHUP and POST /-/reload",
    ),
    (
        "--probe.target-idle-timeout",
        "QBT_EXPORTER_PROBE_TARGET_IDLE_TIMEOUT",
        "10m",
        "a /probe target not probed for this long is logged out of and forgotten",
    ),
    (
        "--probe.max-targets",
        "QBT_EXPORTER_PROBE_MAX_TARGETS",
        "100",
        "most /probe targets held at once; a probe of one more gets 503 until one is evicted",
    ),
    (
        "--torrents.properties-max-age",
        "QBT_EXPORTER_TORRENTS_PROPERTIES_MAX_AGE",
        f"{properties.DEFAULT_MAX_AGE / 60:g}m",
        "oldest per-torrent properties ever served; idle torrents are refreshed within it, unless the "
        "list shows they are stopped and have not run since",
    ),
    (
        "--torrents.include",
        "QBT_EXPORTER_TORRENTS_INCLUDE",
        None,
        "per-torrent series only for torrents matching this selector (repeatable, or several separated "
        'by ";"; see "Choosing torrents"); none: every torrent',
    ),
    (
        "--torrents.exclude",
        "QBT_EXPORTER_TORRENTS_EXCLUDE",
        None,
        "no per-torrent series for torrents matching this selector (repeatable, or several separated by "
        '";"); wins over --torrents.include',
    ),
    (
        "--torrents.max",
        "QBT_EXPORTER_TORRENTS_MAX",
        None,
        'per-torrent series for at most this many torrents, the most relevant first (see "Choosing '
        'torrents"); none: no cap',
    ),
    (
        "--torrents.trackers-max-age",
        "QBT_EXPORTER_TORRENTS_TRACKERS_MAX_AGE",
        f"{trackers.DEFAULT_MAX_AGE / 60:g}m",
        "oldest per-torrent tracker status ever served; torrents that neither start nor stop and keep "
        "their tracker are refreshed within it",
    ),
)

# Flags that may be given more than once; their environment variable holds one value.
_REPEATABLE = frozenset({"--torrents.include", "--torrents.exclude"})

# (flag without the --, environment variable, default, help) for on/off switches.
# The collectors' switches come from their registry, so that adding a collector adds its flag.
_COLLECTOR_SWITCHES = tuple(
    (entry.switch, entry.env, True, entry.help)
    for entry in collector_registry.ENTRIES
    if entry.switch is not None and entry.env is not None
)
_SWITCHES: tuple[tuple[str, str, bool, str], ...] = (
    *_COLLECTOR_SWITCHES,
    (
        "web.disable-exporter-metrics",
        "QBT_EXPORTER_WEB_DISABLE_EXPORTER_METRICS",
        False,
        "leave out the exporter process's own metrics (process_*, python_*); qbittorrent_exporter_* stay",
    ),
    (
        "qbittorrent.tls-insecure-skip-verify",
        "QBITTORRENT_TLS_INSECURE_SKIP_VERIFY",
        False,
        "do not verify qBittorrent's HTTPS certificate",
    ),
    (
        "torrents.refresh-ahead",
        "QBT_EXPORTER_TORRENTS_REFRESH_AHEAD",
        False,
        "between scrapes, refresh the per-torrent properties and trackers that would come due for age by "
        "the next scrape, so that scrapes make only the calls of new, changed and busy torrents "
        "(for libraries of thousands of torrents; costs memory, see the README)",
    ),
    (
        "demo",
        "QBT_EXPORTER_DEMO",
        False,
        "run against a built-in simulated qBittorrent 4.6.7 (/api/v2), no qBittorrent needed",
    ),
)


_FLAG_ROWS = {row[0]: row for row in _FLAGS}
_SWITCH_ROWS = {row[0]: row for row in _SWITCHES}


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace(".", "_").replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="qbt-exporter",
        allow_abbrev=False,
        description="Prometheus exporter for qBittorrent (legacy WebUI API 3.2.0-4.0.4 and /api/v2).",
    )
    for flag, env, default, text in _FLAGS:
        shown = f" (default {default})" if default is not None else ""
        action = "append" if flag in _REPEATABLE else "store"
        parser.add_argument(
            flag, dest=_dest(flag), default=None, action=action, help=f"{text}{shown}; env {env}"
        )
    for name, env, default, text in _SWITCHES:
        parser.add_argument(
            f"--{name}",
            dest=_dest(name),
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"{text} (default {'on' if default else 'off'}); env {env}",
        )
    parser.add_argument("--version", action="version", version=f"qbt-exporter {__version__}")
    return parser


def read_secret(path: str, flag: str) -> str:
    try:
        secret = read_password_file(path)
    except OSError as err:
        raise ConfigError(f"{flag}: cannot read {path}: {err.strerror or err}{_secret_hint(err)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{flag}: {path} is not UTF-8 text") from None
    except ValueError:  # a NUL in the name (a YAML modules file can hold one; argv and environ cannot)
        raise ConfigError(f"{flag}: {path!r} is not a file name") from None
    if not secret:
        raise ConfigError(f"{flag}: {path} is empty")
    return secret


def _web_access(path: str | None, cert: str | None, key: str | None) -> WebAccess:
    """The web config file and the ``--web.tls-*`` shorthand, loaded once to check them."""
    if bool(cert) != bool(key):
        raise ConfigError("--web.tls-cert-file and --web.tls-key-file go together: give both or neither")
    flag_tls = TLSSettings(cert_file=cert, key_file=key) if cert and key else None
    if flag_tls is not None:
        try:
            server_context(flag_tls, as_flag)
        except WebConfigError as err:
            raise ConfigError(str(err)) from None
    access = WebAccess(path, flag_tls)
    try:
        access.load()
    except TLSTwice:
        raise ConfigError(
            f"--web.config.file and --web.tls-cert-file both configure TLS: {path} has tls_server_config; "
            "use one or the other"
        ) from None
    except WebConfigError as err:
        raise ConfigError(f"--web.config.file: {path}: {err}") from None
    return access


def _secret_hint(err: OSError) -> str:
    """What to do about the two ways a secret file fails in a container (README, "Run it")."""
    if isinstance(err, IsADirectoryError):
        return " (Docker mounts a directory when the host file does not exist: create the file first)"
    if isinstance(err, PermissionError):
        return (
            f" (the exporter runs as uid {os.getuid()}: make the file readable to it, e.g. "
            f"chown {os.getuid()} FILE; chmod 400 FILE)"
        )
    return ""


def parse(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Flags, then environment, then defaults; raises ConfigError on the first bad value, named
    after the environment variable when the value came from there (that is where to fix it)."""
    env = os.environ if environ is None else environ
    args = vars(build_parser().parse_args(argv))
    try:
        return _parse(args, env)
    except ConfigError as err:
        raise _blame_environment(err, args, env) from None


def _blame_environment(err: ConfigError, args: Mapping[str, object], env: Mapping[str, str]) -> ConfigError:
    """``err`` renamed from ``--flag:`` to ``VARIABLE:`` when the flag was not given and the variable was."""
    message = str(err)
    flag = message.split(":", 1)[0]
    row = _FLAG_ROWS.get(flag)
    if row is None or args.get(_dest(flag)) is not None or row[1] not in env:
        return err
    return ConfigError(f"{row[1]} (environment){message[len(flag) :]}")


def _parse(args: Mapping[str, object], env: Mapping[str, str]) -> Config:

    def value(flag: str) -> str | None:
        _, var, default, _ = _FLAG_ROWS[flag]
        given = args[_dest(flag)]
        return str(given) if given is not None else env.get(var, default)

    def selectors(flag: str) -> tuple[filters.Selector, ...]:
        _, var, _, _ = _FLAG_ROWS[flag]
        given = args[_dest(flag)]
        texts = given if given is not None else [env.get(var, "")]
        try:
            return filters.parse_all(texts)
        except filters.SelectorError as err:
            raise ConfigError(f"{flag}: {err}") from None

    def switch(name: str) -> bool:
        _, var, default, _ = _SWITCH_ROWS[name]
        given = args[_dest(name)]
        if given is not None:
            return bool(given)
        if var not in env:
            return default
        try:
            return parse_bool(env[var])
        except ValueError as err:
            raise ConfigError(f"{var}: {err}") from None

    def duration(flag: str, *, positive: bool = True) -> float:
        text = value(flag)
        assert text is not None
        try:
            seconds = parse_duration(text)
        except ValueError as err:
            raise ConfigError(f"{flag}: {err}") from None
        if positive and seconds <= 0:
            raise ConfigError(f"{flag}: must be more than 0, got {text!r}")
        return seconds

    def count(flag: str) -> int:
        text = (value(flag) or "").strip()
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(f"{flag}: {text!r} is not a whole number of at least 1")
        return int(text)

    url = (value("--qbittorrent.url") or "").rstrip("/")
    parts = urlsplit(url)
    if has_credentials(url):
        # Refused rather than sent as Basic auth for a reverse proxy: qBittorrent 5.2+ takes an
        # Authorization: Basic header as a login attempt, and proxies forward it by default, so
        # the proxy's credentials would count as failed logins toward qBittorrent's ban.
        raise ConfigError(
            "--qbittorrent.url: must not contain credentials (user:password@); give the password with "
            "--qbittorrent.password-file or QBITTORRENT_PASSWORD"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--qbittorrent.url: {url!r} is not an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"--qbittorrent.url: {url!r} has an invalid port") from None
    api_path = _API_PATH.search(parts.path)
    if api_path:
        # The exporter adds the API paths itself; with them in the URL every call would answer 404.
        root = urlunsplit((parts.scheme, parts.netloc, parts.path[: api_path.start()], "", ""))
        raise ConfigError(
            f"--qbittorrent.url: {url!r} names an API path; give the WebUI's root URL, without "
            f"/api/v2: {root!r}"
        )

    password_file = value("--qbittorrent.password-file")
    password: PasswordSource | None = None
    if password_file:
        first = read_secret(password_file, "--qbittorrent.password-file")
        password = PasswordFile(password_file, initial=first)
    elif env.get("QBITTORRENT_PASSWORD") is not None:
        password = FixedPassword(env["QBITTORRENT_PASSWORD"], "QBITTORRENT_PASSWORD")
    api_key_file = value("--qbittorrent.api-key-file")
    api_key = (
        read_secret(api_key_file, "--qbittorrent.api-key-file")
        if api_key_file
        else env.get("QBITTORRENT_API_KEY") or None
    )

    try:
        host, port = parse_listen_address(value("--web.listen-address") or "")
    except ValueError as err:
        raise ConfigError(f"--web.listen-address: {err}") from None
    telemetry_path = value("--web.telemetry-path") or ""
    if not telemetry_path.startswith("/") or telemetry_path in ("/", "/healthz"):
        raise ConfigError(
            f"--web.telemetry-path: {telemetry_path!r} must start with / and not be / or /healthz"
        )

    web_access = _web_access(
        value("--web.config.file") or None, value("--web.tls-cert-file"), value("--web.tls-key-file")
    )

    limits = Limits(
        max_connections=count("--web.max-connections"),
        read_timeout=duration("--web.read-timeout"),
        idle_timeout=duration("--web.idle-timeout"),
        write_timeout=duration("--web.write-timeout"),
    )

    level = (value("--log.level") or "").lower()
    if level not in _LOG_LEVELS:
        raise ConfigError(f"--log.level: {level!r} is not one of {', '.join(_LOG_LEVELS)}")
    log_format = (value("--log.format") or "").lower()
    if log_format not in _LOG_FORMATS:
        raise ConfigError(f"--log.format: {log_format!r} is not one of {', '.join(_LOG_FORMATS)}")

    ca_file = value("--qbittorrent.ca-file") or None
    if ca_file:
        try:
            check_ca_file(ca_file)
        except ValueError as err:
            raise ConfigError(f"--qbittorrent.ca-file: {err}") from None
    verify: bool | str = ca_file if ca_file else not switch("qbittorrent.tls-insecure-skip-verify")
    size_text = value("--qbittorrent.max-reply-size") or ""
    try:
        max_reply_size = parse_size(size_text)
    except ValueError as err:
        raise ConfigError(f"--qbittorrent.max-reply-size: {err}") from None
    if max_reply_size < 1024:
        raise ConfigError(f"--qbittorrent.max-reply-size: {size_text!r} is less than 1KiB")

    config_file = value("--config.file") or None
    url_given = args[_dest("--qbittorrent.url")] is not None or "QBITTORRENT_URL" in env
    max_text = (value("--torrents.max") or "").strip()
    if max_text and (not re.fullmatch(r"[0-9]+", max_text) or int(max_text) < 1):
        raise ConfigError(f"--torrents.max: {max_text!r} is not a whole number of at least 1")

    return Config(
        qbittorrent_url=url,
        username=value("--qbittorrent.username") or "",
        password=password,
        api_key=api_key,
        timeout=duration("--qbittorrent.timeout"),
        host_header=value("--qbittorrent.host-header") or None,
        verify=verify,
        max_reply_size=max_reply_size,
        listen_host=host,
        listen_port=port,
        telemetry_path=telemetry_path,
        timeout_offset=duration("--web.timeout-offset", positive=False),
        web_access=web_access,
        web_limits=limits,
        log_level=level,
        log_format=log_format,
        collectors=collector_registry.enabled(
            entry.name for entry in collector_registry.ENTRIES if entry.switch and not switch(entry.switch)
        ),
        exporter_metrics=not switch("web.disable-exporter-metrics"),
        properties_max_age=duration("--torrents.properties-max-age"),
        torrent_filters=filters.Filters(selectors("--torrents.include"), selectors("--torrents.exclude")),
        torrents_max=int(max_text) if max_text else None,
        trackers_max_age=duration("--torrents.trackers-max-age"),
        demo=switch("demo"),
        config_file=config_file,
        probe_idle_timeout=duration("--probe.target-idle-timeout"),
        probe_max_targets=count("--probe.max-targets"),
        default_target=config_file is None or url_given or switch("demo"),
        refresh_ahead=switch("torrents.refresh-ahead"),
    )


def flag_table() -> str:
    """The README's flag table, generated so that it cannot drift from the parser."""
    rows = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for flag, env, default, text in _FLAGS:
        rows.append(f"| `{flag}` | `{env}` | {f'`{default}`' if default else ''} | {text} |")
    for name, env, default, text in _SWITCHES:
        rows.append(f"| `--[no-]{name}` | `{env}` | {'on' if default else 'off'} | {text} |")
    rows.append("| | `QBITTORRENT_PASSWORD` | | the WebUI password (environment only, never a flag) |")
    rows.append("| | `QBITTORRENT_API_KEY` | | a qBittorrent 5.2+ API key (environment only) |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(flag_table())
