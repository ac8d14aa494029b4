"""Which qbittorrent-nox the harness can start: this machine's ("system"), or the other Debian
release's, installed by ``.ci/run`` into a chroot ("chroot"), so that both a 4.x and a 5.x server are
proved on every run. Which directory holds the chroot is ``$QBT_E2E_CHROOT`` (``.ci/run`` sets it) or,
by default, ``/var/cache/qbt-exporter/<release>`` where <release> is the Debian release this machine
does *not* run (bookworm <-> trixie). No pytest here: ``tests/tools.py`` turns "not usable" into a
skip (or a failure under CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CHROOT_ENV = "QBT_E2E_CHROOT"
CHROOT_BASE = Path("/var/cache/qbt-exporter")
# Debian's major version -> codename, for the two releases whose qbittorrent-nox the suite proves.
DEBIAN_CODENAMES = {"12": "bookworm", "13": "trixie"}
# The chroot holds the release this machine does not run.
OTHER_RELEASE = {"bookworm": "trixie", "trixie": "bookworm"}
SERVER_KEYS = ("system", "chroot")
# Seen by the chroot's qbittorrent-nox at the same path as outside: profiles and data live there.
SHARED_DIRS = ("/tmp", "/dev")


def find_tool(name: str) -> str | None:
    """Where a program is: PATH first, then /usr/bin (a test runner may trim PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path("/usr/bin") / name
    return str(candidate) if candidate.exists() else None


# --------------------------------------------------------------------------------------------------
# the qBittorrent servers
# --------------------------------------------------------------------------------------------------


def debian_codename(debian_version: str) -> str | None:
    """The codename for the text of /etc/debian_version ("12.11" -> bookworm, "trixie/sid" -> trixie)."""
    text = debian_version.strip()
    if "/" in text:  # testing/unstable write "<codename>/sid"
        name = text.split("/", 1)[0]
        return name if name in OTHER_RELEASE else None
    return DEBIAN_CODENAMES.get(text.split(".", 1)[0])


def this_release() -> str | None:
    try:
        return debian_codename(Path("/etc/debian_version").read_text())
    except OSError:
        return None


def chroot_release() -> str | None:
    """The release whose qbittorrent-nox the chroot holds: the one this machine does not run."""
    release = this_release()
    return OTHER_RELEASE.get(release) if release else None


def chroot_dir() -> Path | None:
    """``$QBT_E2E_CHROOT``, else the documented default for this machine (None off Debian 12/13)."""
    configured = os.environ.get(CHROOT_ENV)
    if configured:
        return Path(configured)
    release = chroot_release()
    return CHROOT_BASE / release if release else None


@dataclass(frozen=True)
class QbtServer:
    """One qbittorrent-nox the end-to-end tests can start: how to run it, or why it cannot run."""

    key: str  # "system" or "chroot"
    prefix: tuple[str, ...]  # the command before qbittorrent-nox's own arguments; () when unusable
    problem: str = ""  # why it cannot run here, when prefix is ()
    chroot: Path | None = None

    @property
    def usable(self) -> bool:
        return bool(self.prefix)

    def command(self, *args: str) -> list[str]:
        return [*self.prefix, *args]

    def version(self) -> str:
        """What the binary says about itself (``qbittorrent-nox --version``), e.g. "qBittorrent v5.1.0"."""
        # --version needs no mount: run the binary in the chroot directly, not through the wrapper
        argv = ["chroot", str(self.chroot), "/usr/bin/qbittorrent-nox"] if self.chroot else [self.prefix[0]]
        done = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=30, check=False)
        return done.stdout.strip() or done.stderr.strip()


# Runs as "sh -c SCRIPT qbt-chroot ROOT ARGS...": in a mount namespace of its own (unshare), bind
# /tmp and /dev and mount /proc inside the chroot, then become qbittorrent-nox. The mounts exist
# only in that namespace, so they vanish with the process, however it ends (even SIGKILL): the
# host's mount table never changes and nothing can be left mounted behind.
CHROOT_SCRIPT = (
    'set -e; root=$1; shift; for d in {shared}; do mount --rbind "$d" "$root$d"; done; '
    'mount -t proc proc "$root/proc"; exec chroot "$root" /usr/bin/qbittorrent-nox "$@"'
).format(shared=" ".join(SHARED_DIRS))


def _system_server() -> QbtServer:
    found = find_tool("qbittorrent-nox")
    if found is None:
        how = "apt-get install -y qbittorrent-nox"
        return QbtServer("system", (), f"qbittorrent-nox is not installed ({how})")
    return QbtServer("system", (found,))


def _chroot_server() -> QbtServer:
    root = chroot_dir()
    if root is None:
        return QbtServer(
            "chroot", (), f"not Debian 12 or 13 (/etc/debian_version) and ${CHROOT_ENV} is not set"
        )
    how = f"build it with .ci/run (debootstrap --variant=minbase --include=qbittorrent-nox ... {root})"
    if not (root / "usr/bin/qbittorrent-nox").exists():
        return QbtServer("chroot", (), f"no qbittorrent-nox in the chroot {root}: {how}", root)
    if os.geteuid() != 0:
        return QbtServer("chroot", (), f"the chroot server {root} needs root (chroot, mount)", root)
    unshare = find_tool("unshare")
    if unshare is None:
        return QbtServer("chroot", (), "unshare (util-linux) is not installed", root)
    prefix = (unshare, "--mount", "--propagation", "private", "sh", "-c", CHROOT_SCRIPT, "qbt-chroot")
    return QbtServer("chroot", (*prefix, str(root)), chroot=root)


@cache
def qbittorrent_server(key: str) -> QbtServer:
    """The server ``key`` (one of SERVER_KEYS), usable or with the reason it is not."""
    return {"system": _system_server, "chroot": _chroot_server}[key]()
