"""The ``--config.file`` YAML: named modules for ``/probe``, validated into plain values.

A module is how to reach and read a kind of qBittorrent (user name, where its password is, TLS,
timeouts, collectors) and, above all, which targets it may be used for: its credentials go to those
targets only (``allowlist.py``). The format follows blackbox/snmp/pve exporters::

    modules:
      seedbox:
        username: admin
        password_file: /run/secrets/seedbox   # or password_env: SEEDBOX_PASSWORD
        targets: [https://seedbox.example.com/qbittorrent, "*.lan:8080"]

Secrets are never written in the file: only ``password_file``/``password_env`` and
``api_key_file``/``api_key_env`` name where they are. A key the exporter does not know, a value of
the wrong kind, a secret file that cannot be read, an environment variable that is not set: each is a
``ConfigError`` with one line naming the key (``modules.seedbox.timeout: ...``). The same function
loads the file at start-up (exit 2) and on reload (the old modules stay).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from qbt_exporter import filters
from qbt_exporter.allowlist import AllowRule, Target, TargetError, allowed, parse_rule
from qbt_exporter.collectors import registry as collector_registry
from qbt_exporter.config import (
    Config,
    ConfigError,
    check_ca_file,
    parse_duration,
    parse_size,
    read_secret,
)
from qbt_exporter.qbittorrent.password import FixedPassword, PasswordFile, PasswordSource
from qbt_exporter.selection import Selection

MAX_FILE_SIZE = 1024 * 1024
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SWITCHABLE = tuple(entry.name for entry in collector_registry.ENTRIES if entry.switch is not None)
KEYS = (
    "username",
    "password_file",
    "password_env",
    "api_key_file",
    "api_key_env",
    "timeout",
    "max_reply_size",
    "ca_file",
    "insecure_skip_verify",
    "host_header",
    "collectors",
    "torrents",
    "targets",
)
INLINE_SECRETS = {"password": "password_file or password_env", "api_key": "api_key_file or api_key_env"}


@dataclass(frozen=True, slots=True)
class Secret:
    """Where a secret comes from; compared by origin and value so that a reload sees a change."""

    origin: str  # "file" or "env"
    where: str  # the path or the variable name
    value: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    username: str
    password: Secret | None
    api_key: Secret | None
    timeout: float
    max_reply_size: int
    verify: bool | str
    host_header: str | None
    collectors: frozenset[str]
    targets: tuple[AllowRule, ...]
    # which torrents get per-torrent series; compared by its text (selectors hold functions)
    selection: Selection = field(default_factory=Selection, compare=False)
    selection_text: tuple[str, str, int | None] = ("", "", None)

    def allows(self, target: Target) -> bool:
        return allowed(self.targets, target)

    def password_source(self) -> PasswordSource | None:
        """A password file is read again at each login (a fixed password can be edited in place);
        a variable cannot change while the exporter runs."""
        if self.password is None:
            return None
        if self.password.origin == "file":
            return PasswordFile(self.password.where, initial=self.password.value)
        return FixedPassword(self.password.value, self.password.where)


@dataclass(frozen=True, slots=True)
class Modules:
    path: str
    by_name: Mapping[str, Module]

    def get(self, name: str) -> Module | None:
        return self.by_name.get(name)


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice: YAML would silently keep the last one."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise ConfigError(f"line {key_node.start_mark.line + 1}: key {key!r} is not a string")
        if key in out:
            raise ConfigError(f"line {key_node.start_mark.line + 1}: {_label(key)}: written twice")
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(path: str, flags: Config, environ: Mapping[str, str] | None = None) -> Modules:
    """The modules in ``path``, with the flags' values where a module leaves a key out (never for
    credentials, TLS or the Host header: those belong to the module alone)."""
    env = os.environ if environ is None else environ
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_SIZE + 1)
    except OSError as err:
        raise ConfigError(f"--config.file: cannot read {path}: {err.strerror or err}") from None
    if len(raw) > MAX_FILE_SIZE:
        raise ConfigError(f"--config.file: {path} is larger than {MAX_FILE_SIZE} bytes")
    try:
        return Modules(path, parse(raw, flags, env))
    except ConfigError as err:
        raise ConfigError(f"--config.file: {path}: {err}") from None


def parse(raw: bytes | str, flags: Config, env: Mapping[str, str]) -> dict[str, Module]:
    """Modules by name from the file's text; ConfigError naming the key on the first problem."""
    try:
        document = yaml.load(raw, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise ConfigError(f"{where}{problem}") from None
    except (ValueError, TypeError, RecursionError, OverflowError) as err:  # e.g. a bad !!timestamp
        raise ConfigError(f"not valid YAML ({type(err).__name__})") from None
    if not isinstance(document, dict):
        raise ConfigError("the file must be a mapping with a 'modules' key")
    _only_keys(document, ("modules",), "")
    modules = document.get("modules")
    if not isinstance(modules, dict) or not modules:
        raise ConfigError("modules: must be a mapping of at least one module name to its settings")
    out: dict[str, Module] = {}
    for name, settings in modules.items():
        if not _NAME.match(name):
            raise ConfigError(f"modules.{_label(name)}: a module name is 1 to 64 of A-Z a-z 0-9 _ . -")
        out[name] = _module(name, settings, flags, env)
    return out


def _only_keys(mapping: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in known:
            raise ConfigError(f"{where}{_label(key)}: unknown key (known: {', '.join(known)})")


class _Reader:
    """Typed reads of one module's keys, each error naming ``modules.<name>.<key>``."""

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.prefix = f"modules.{name}."
        self.settings = settings

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.prefix}{key}: {problem}")

    def text(self, key: str) -> str | None:
        value = self.settings.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, got {_kind(value)}")
        return value

    def converted(self, key: str, convert: Callable[[str], Any], default: Any) -> Any:
        value = self.settings.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, f"must be a string or a number, got {_kind(value)}")
        try:
            return convert(str(value))
        except (ValueError, OverflowError) as err:
            raise self.fail(key, str(err)) from None

    def boolean(self, key: str) -> bool:
        value = self.settings.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {_kind(value)}")
        return value

    def secret(self, file_key: str, env_key: str, env: Mapping[str, str]) -> Secret | None:
        path, var = self.text(file_key), self.text(env_key)
        if path and var:
            raise self.fail(file_key, f"give {file_key} or {env_key}, not both")
        if path:
            return Secret("file", path, read_secret(path, f"{self.prefix}{file_key}"))
        if var:
            value = env.get(var)
            if not value:
                raise self.fail(env_key, f"the environment variable {var} is not set or empty")
            return Secret("env", var, value)
        return None


def _module(name: str, settings: Any, flags: Config, env: Mapping[str, str]) -> Module:
    if not isinstance(settings, dict):
        raise ConfigError(f"modules.{name}: must be a mapping of settings, got {_kind(settings)}")
    for key, how in INLINE_SECRETS.items():
        if key in settings:
            raise ConfigError(f"modules.{name}.{key}: secrets are never written in the file; use {how}")
    _only_keys(settings, KEYS, f"modules.{name}.")
    read = _Reader(name, settings)
    timeout = read.converted("timeout", parse_duration, flags.timeout)
    if not timeout > 0 or timeout > 3600:
        raise read.fail("timeout", "must be more than 0 and at most 1h")
    max_reply_size = read.converted("max_reply_size", parse_size, flags.max_reply_size)
    if max_reply_size < 1024:
        raise read.fail("max_reply_size", "is less than 1KiB")
    ca_file = read.text("ca_file")
    skip_verify = read.boolean("insecure_skip_verify")
    if ca_file and skip_verify:
        raise read.fail("ca_file", "give ca_file or insecure_skip_verify, not both")
    if ca_file:
        try:
            check_ca_file(ca_file)
        except ValueError as err:
            raise read.fail("ca_file", str(err)) from None
    selection = _selection(read, flags)
    return Module(
        name=name,
        username=read.text("username") or "admin",
        password=read.secret("password_file", "password_env", env),
        api_key=read.secret("api_key_file", "api_key_env", env),
        timeout=timeout,
        max_reply_size=max_reply_size,
        verify=ca_file if ca_file else not skip_verify,
        host_header=read.text("host_header"),
        collectors=_collectors(read, flags),
        targets=_targets(read),
        selection=selection,
        selection_text=(selection.include_text, selection.exclude_text, selection.max),
    )


def _collectors(read: _Reader, flags: Config) -> frozenset[str]:
    """The module's collectors: the flags' choice, with the module's own switches over it."""
    switches = read.settings.get("collectors")
    if switches is None:
        return flags.collectors
    if not isinstance(switches, dict):
        raise read.fail(
            "collectors", f"must be a mapping of collector name to true/false, got {_kind(switches)}"
        )
    on = {name: name in flags.collectors for name in SWITCHABLE}
    for name, value in switches.items():
        if name not in on:
            raise read.fail(
                f"collectors.{_label(name)}", f"unknown collector (known: {', '.join(SWITCHABLE)})"
            )
        if not isinstance(value, bool):
            raise read.fail(f"collectors.{name}", f"must be true or false, got {_kind(value)}")
        on[name] = value
    return collector_registry.enabled(name for name, value in on.items() if not value)


def _selection(read: _Reader, flags: Config) -> Selection:
    """The module's torrent filters: ``torrents: {include, exclude, max}``, each key left out taking
    the value of --torrents.include, --torrents.exclude, --torrents.max."""
    spec = read.settings.get("torrents")
    if spec is None:
        return Selection(flags.torrent_filters, flags.torrents_max)
    if not isinstance(spec, dict):
        raise read.fail("torrents", f"must be a mapping with include, exclude or max, got {_kind(spec)}")
    _only_keys(spec, ("include", "exclude", "max"), f"{read.prefix}torrents.")
    include = _selectors(read, spec, "include", flags.torrent_filters.include)
    exclude = _selectors(read, spec, "exclude", flags.torrent_filters.exclude)
    most = spec.get("max", flags.torrents_max)
    if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 1):
        raise read.fail("torrents.max", f"must be a whole number of at least 1, got {_kind(most)}")
    return Selection(filters.Filters(include, exclude), most)


def _selectors(
    read: _Reader, spec: dict[str, Any], key: str, default: tuple[filters.Selector, ...]
) -> tuple[filters.Selector, ...]:
    """Selectors written as one string (``;``-separated) or a list of strings."""
    value = spec.get(key)
    if value is None:
        return default
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise read.fail(f"torrents.{key}", f"must be a selector string or a list of them, got {_kind(value)}")
    try:
        return filters.parse_all(texts)
    except filters.SelectorError as err:
        raise read.fail(f"torrents.{key}", str(err)) from None


def _targets(read: _Reader) -> tuple[AllowRule, ...]:
    entries = read.settings.get("targets")
    if not isinstance(entries, list) or not entries:
        raise read.fail(
            "targets",
            "required: a list of the qBittorrent URLs or host patterns this module may be used for",
        )
    rules = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, str):
            raise read.fail(f"targets[{index}]", f"must be a string, got {_kind(entry)}")
        try:
            rules.append(parse_rule(entry))
        except TargetError as err:
            raise read.fail(f"targets[{index}]", f"{entry!r} {err}") from None
    return tuple(rules)


def _label(key: str) -> str:
    """A key as it can be shown in a one-line message: as written when plain, else quoted."""
    return key if _PLAIN_KEY.match(key) else repr(key)


def _kind(value: Any) -> str:
    """What a YAML value is, in words, without quoting it (it may be a secret written by mistake)."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}
    if value is None:
        return "nothing"
    return names.get(type(value), "a mapping" if isinstance(value, dict) else type(value).__name__)
