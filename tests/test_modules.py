"""The ``--config.file`` parser: good files become modules, bad ones one line naming the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbt_exporter.allowlist import parse_target
from qbt_exporter.config import Config, ConfigError, parse
from qbt_exporter.modules import load
from qbt_exporter.modules import parse as parse_modules
from qbt_exporter.qbittorrent.password import FixedPassword, PasswordFile

FLAGS: Config = parse([], environ={})
ENV = {"SEEDBOX_PASSWORD": "s3cret", "EMPTY": ""}


def modules(text: str, env: dict[str, str] | None = None, flags: Config = FLAGS) -> dict[str, Any]:
    return parse_modules(text, flags, ENV if env is None else env)


def error(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        modules(text, env)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_full_module(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("from-file\n")
    key = tmp_path / "key"
    key.write_text("api-key-value")
    got = modules(f"""
modules:
  seedbox:
    username: alice
    password_file: {password}
    api_key_file: {key}
    timeout: 2500ms
    max_reply_size: 64MiB
    insecure_skip_verify: true
    host_header: localhost:8080
    collectors: {{torrent_properties: false}}
    targets: [https://seedbox.example/qbt, "*.lan:8080"]
  arr:
    password_env: SEEDBOX_PASSWORD
    targets: [arr.lan]
""")
    seedbox, arr = got["seedbox"], got["arr"]
    assert (seedbox.username, seedbox.timeout, seedbox.max_reply_size) == ("alice", 2.5, 64 * 2**20)
    assert seedbox.verify is False and seedbox.host_header == "localhost:8080"
    assert seedbox.api_key is not None and seedbox.api_key.value == "api-key-value"
    assert seedbox.collectors == FLAGS.collectors - {"torrent_properties"}
    source = seedbox.password_source()
    assert isinstance(source, PasswordFile) and source.current() == "from-file"
    assert seedbox.allows(parse_target("https://seedbox.example/qbt/"))
    assert seedbox.allows(parse_target("http://x.lan:8080"))
    assert not seedbox.allows(parse_target("http://arr.lan"))
    # left-out keys take the flags' values, never credentials
    assert arr.username == "admin" and arr.timeout == FLAGS.timeout and arr.collectors == FLAGS.collectors
    assert arr.verify is True and arr.host_header is None and arr.api_key is None
    env_source = arr.password_source()
    assert isinstance(env_source, FixedPassword) and env_source.current() == "s3cret"
    assert "s3cret" not in repr(arr) and "api-key-value" not in repr(seedbox)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("", "the file must be a mapping"),
        ("[]", "the file must be a mapping"),
        ("modules: {}", "modules:"),
        ("module: {a: {targets: [x.lan]}}", "module: unknown key"),
        ("modules: {a: 1}", "modules.a: must be a mapping"),
        ("modules: {'a b': {targets: [x.lan]}}", "modules.'a b': a module name"),
        ("modules: {a: {targets: [x.lan], pasword_file: /x}}", "modules.a.pasword_file: unknown key"),
        ("modules: {a: {targets: [x.lan], password: hunter2}}", "modules.a.password: secrets are never"),
        ("modules: {a: {targets: [x.lan], api_key: k}}", "modules.a.api_key: secrets are never"),
        ("modules: {a: {}}", "modules.a.targets: required"),
        ("modules: {a: {targets: []}}", "modules.a.targets: required"),
        ("modules: {a: {targets: x.lan}}", "modules.a.targets: required"),
        ("modules: {a: {targets: [x.lan, 3]}}", "modules.a.targets[1]: must be a string"),
        ("modules: {a: {targets: [x.lan, '*']}}", "modules.a.targets[1]: '*'"),
        ("modules: {a: {targets: ['http://u@x.lan']}}", "modules.a.targets[0]:"),
        ("modules: {a: {targets: [x.lan], timeout: 5x}}", "modules.a.timeout: '5x' is not a duration"),
        ("modules: {a: {targets: [x.lan], timeout: 0}}", "modules.a.timeout: must be more than 0"),
        ("modules: {a: {targets: [x.lan], timeout: [1]}}", "modules.a.timeout: must be a string or a number"),
        (
            "modules: {a: {targets: [x.lan], timeout: true}}",
            "modules.a.timeout: must be a string or a number",
        ),
        ("modules: {a: {targets: [x.lan], max_reply_size: 10}}", "modules.a.max_reply_size: is less than"),
        ("modules: {a: {targets: [x.lan], max_reply_size: lots}}", "modules.a.max_reply_size:"),
        ("modules: {a: {targets: [x.lan], insecure_skip_verify: 'yes'}}", "modules.a.insecure_skip_verify:"),
        ("modules: {a: {targets: [x.lan], username: ''}}", "modules.a.username: must be a non-empty"),
        ("modules: {a: {targets: [x.lan], username: 5}}", "modules.a.username: must be a non-empty"),
        (
            "modules: {a: {targets: [x.lan], password_file: /nonexistent/p}}",
            "modules.a.password_file: cannot",
        ),
        ("modules: {a: {targets: [x.lan], password_env: NOPE}}", "modules.a.password_env: the environment"),
        ("modules: {a: {targets: [x.lan], password_env: EMPTY}}", "modules.a.password_env: the environment"),
        ("modules: {a: {targets: [x.lan], api_key_env: NOPE}}", "modules.a.api_key_env: the environment"),
        (
            "modules: {a: {targets: [x.lan], password_env: SEEDBOX_PASSWORD, password_file: /x}}",
            "modules.a.password_file: give password_file or password_env",
        ),
        ("modules: {a: {targets: [x.lan], ca_file: /nonexistent/ca}}", "modules.a.ca_file: cannot read"),
        (
            "modules: {a: {targets: [x.lan], collectors: [torrents]}}",
            "modules.a.collectors: must be a mapping",
        ),
        ("modules: {a: {targets: [x.lan], collectors: {nope: true}}}", "modules.a.collectors.nope: unknown"),
        (
            "modules: {a: {targets: [x.lan], collectors: {torrents: 1}}}",
            "modules.a.collectors.torrents: must",
        ),
        ("modules: {a: {targets: [x.lan], torrents: [x]}}", "modules.a.torrents: must be a mapping"),
        ("modules: {a: {targets: [x.lan], torrents: {only: x}}}", "modules.a.torrents.only: unknown key"),
        (
            "modules: {a: {targets: [x.lan], torrents: {include: 'colour=red'}}}",
            "modules.a.torrents.include:",
        ),
        ("modules: {a: {targets: [x.lan], torrents: {exclude: [1]}}}", "modules.a.torrents.exclude: must be"),
        ("modules: {a: {targets: [x.lan], torrents: {max: 0}}}", "modules.a.torrents.max: must be a whole"),
        (
            "modules: {a: {targets: [x.lan], torrents: {max: true}}}",
            "modules.a.torrents.max: must be a whole",
        ),
        ("modules:\n  a: {targets: [x.lan]}\n  a: {targets: [y.lan]}\n", "line 3: a: written twice"),
        ("modules: {1: {targets: [x.lan]}}", "key 1 is not a string"),
        ("modules: {a: [unclosed", "line 1"),
        ("\tmodules: {}", "line 1"),
        ("modules: !!python/object:os.system {}", "line 1"),  # no arbitrary objects
    ],
)
def test_a_bad_file_is_one_line_naming_the_key(text: str, key: str) -> None:
    assert key in error(text)


def test_a_secret_written_inline_by_mistake_is_never_quoted() -> None:
    assert "hunter2" not in error("modules: {a: {targets: [x.lan], password_file: {value: hunter2}}}")
    assert "hunter2" not in error("modules: {a: {targets: [x.lan], password: hunter2}}")


def test_collectors_switches_keep_the_registrys_requirements() -> None:
    got = modules("modules: {a: {targets: [x.lan], collectors: {torrents: false, torrent_properties: true}}}")
    assert "torrents" not in got["a"].collectors and "torrent_properties" not in got["a"].collectors
    flags = parse(["--no-collector.torrent-properties"], environ={})
    got = modules("modules: {a: {targets: [x.lan], collectors: {torrent_properties: true}}}", flags=flags)
    assert "torrent_properties" in got["a"].collectors


def test_torrent_filters_per_module_over_the_flags() -> None:
    flags = parse(["--torrents.exclude", "status=errored", "--torrents.max", "50"], environ={})
    got = modules(
        "modules:\n"
        "  own: {targets: [x.lan], torrents: {include: ['category=movies', 'tag=hd'], max: 5}}\n"
        "  flags: {targets: [x.lan]}\n",
        flags=flags,
    )
    own, inherited = got["own"].selection, got["flags"].selection
    assert (own.include_text, own.exclude_text, own.max) == ("category=movies; tag=hd", "status=errored", 5)
    assert (inherited.include_text, inherited.exclude_text, inherited.max) == ("", "status=errored", 50)
    # compared by their text: the same file loaded twice is the same module (a reload keeps its targets)
    again = modules(
        "modules: {own: {targets: [x.lan], torrents: {include: 'category=movies; tag=hd', max: 5}}}",
        flags=flags,
    )
    assert again["own"] == got["own"]


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "qbt.yml"
    path.write_text("modules: {a: {targets: [x.lan], timeout: soon}}\n")
    with pytest.raises(ConfigError, match=rf"^--config.file: {re.escape(str(path))}: modules.a.timeout: "):
        load(str(path), FLAGS, {})
    with pytest.raises(ConfigError, match=r"^--config\.file: cannot read"):
        load(str(tmp_path / "missing.yml"), FLAGS, {})


# --- arbitrary input -------------------------------------------------------------------------------

# What a message starts with: where in the file (a line, a key path, a quoted odd key), or "the file"
KEY_PATH = re.compile(
    r"^(line \d+: |modules[.:]|the file |not valid YAML|([\w.-]+|'.*'|\".*\"): unknown key)"
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12))
KEYS = st.one_of(
    st.sampled_from(
        [
            "modules",
            "targets",
            "username",
            "password_file",
            "timeout",
            "collectors",
            "torrents",
            "include",
            "max",
        ]
    ),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


# No per-example deadline: the suite runs on a loaded two-core machine.
LOADED = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


def _check(raw: str | bytes) -> None:
    try:
        modules(raw)
    except ConfigError as err:
        message = str(err)
        assert "\n" not in message
        assert KEY_PATH.match(message), message


@LOADED
@given(st.dictionaries(KEYS, VALUES, max_size=3))
def test_any_yaml_document_is_modules_or_one_line_naming_the_key(document: dict[str, Any]) -> None:
    _check(yaml.safe_dump(document))


@LOADED
@given(st.dictionaries(KEYS, VALUES, max_size=4))
def test_any_module_settings_are_a_module_or_one_line_naming_the_key(module: dict[str, Any]) -> None:
    _check(yaml.safe_dump({"modules": {"m": module}}))


@LOADED
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_bytes_are_modules_or_one_line(raw: str | bytes) -> None:
    _check(raw)
