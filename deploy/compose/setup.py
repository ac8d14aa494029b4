#!/usr/bin/env python3
"""Make what the compose stack needs before its first ``docker compose up``: run once.

Why a script: qBittorrent 4.6.1+ has no default WebUI password (it prints a random one at each start
until one is set), so the exporter could not log in without a manual round trip through the WebUI;
and the secret files must be readable by the containers' users (uid 65534 for the exporter, 472 for
Grafana) without being readable by the host's other users. This writes:

- ``secrets/`` (mode 0700) with ``qbittorrent_password`` and ``grafana_admin_password`` (0644:
  readable inside the containers, unreachable for other host users through the 0700 directory);
- ``qbittorrent/qBittorrent/qBittorrent.conf`` with that password as qBittorrent stores it (PBKDF2),
  only when there is no configuration yet.

Existing files are kept, so running it again changes nothing. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECRET_NAMES = ("qbittorrent_password", "grafana_admin_password")
QBT_CONF = Path("qbittorrent/qBittorrent/qBittorrent.conf")


def pbkdf2_password(password: str, salt: bytes | None = None) -> str:
    """``WebUI\\Password_PBKDF2`` as qBittorrent 4.2+ reads it: PBKDF2-HMAC-SHA512, 100,000
    iterations, 16-byte salt, 64-byte key (a copy of harness/qbittorrent.py's, which the test suite
    checks it against: this script must run without the repository's Python package)."""
    salt = salt if salt is not None else os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, 100_000, dklen=64)
    return f"@ByteArray({base64.b64encode(salt).decode()}:{base64.b64encode(key).decode()})"


def qbittorrent_conf(password: str) -> str:
    return "\n".join(
        [
            "[LegalNotice]",
            "Accepted=true",
            "",
            "[Preferences]",
            "WebUI\\Port=8080",
            "WebUI\\Username=admin",
            f'WebUI\\Password_PBKDF2="{pbkdf2_password(password)}"',
            "",
        ]
    )


def setup(directory: Path) -> list[str]:
    """Create what is missing under ``directory``; returns one line per file written."""
    done = []
    secret_dir = directory / "secrets"
    secret_dir.mkdir(mode=0o700, exist_ok=True)
    secret_dir.chmod(0o700)
    for name in SECRET_NAMES:
        path = secret_dir / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(18) + "\n")
            done.append(f"wrote {path}")
        path.chmod(0o644)
    conf = directory / QBT_CONF
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True)
        password = (secret_dir / "qbittorrent_password").read_text().rstrip("\r\n")
        conf.write_text(qbittorrent_conf(password))
        done.append(f"wrote {conf} (WebUI user admin, password in secrets/qbittorrent_password)")
    downloads = directory / "downloads"
    if not downloads.exists():
        downloads.mkdir()
        done.append(f"made {downloads} (qBittorrent's downloads; set DOWNLOADS=/path to use another)")
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dir", type=Path, default=HERE, help="where the stack lives (default: here)")
    args = parser.parse_args()
    for line in setup(args.dir) or ["nothing to do: everything exists"]:
        print(line)
    print("next: docker compose up -d --build")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
