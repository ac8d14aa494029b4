"""What the operator is told once at start-up about the credentials the exporter will use.

Why: a missing password reads, on the first scrape, exactly like a wrong one (qBittorrent rejects
an empty password with the same ``Fails.``), and a password given twice, or a password next to an
API key, used to win silently. Saying it once at start-up, before any login is tried, puts the
fix next to the cause. Nothing here contacts qBittorrent or changes the configuration.
"""

from __future__ import annotations

from collections.abc import Mapping

from qbt_exporter.config import Config
from qbt_exporter.qbittorrent.password import PasswordFile

__all__ = ["credential_warnings"]


def credential_warnings(config: Config, environ: Mapping[str, str]) -> list[str]:
    """One line per thing to warn about; empty when exactly one credential is set, or in the demo."""
    if config.demo:
        return []
    warnings: list[str] = []
    if config.password is None and config.api_key is None:
        warnings.append(
            f"no password set: logging in as {config.username!r} with an empty password, which "
            "qBittorrent rejects unless it skips authentication for the exporter's address; set "
            "--qbittorrent.password-file (or QBITTORRENT_PASSWORD), or --qbittorrent.api-key-file on 5.2+"
        )
    if isinstance(config.password, PasswordFile) and "QBITTORRENT_PASSWORD" in environ:
        warnings.append(
            f"QBITTORRENT_PASSWORD is ignored: the password file {config.password.path} wins; unset one"
        )
    env_key = environ.get("QBITTORRENT_API_KEY")
    if env_key and config.api_key is not None and config.api_key != env_key:
        warnings.append("QBITTORRENT_API_KEY is ignored: the API key file wins; unset one")
    if config.api_key is not None and config.password is not None:
        warnings.append(
            "the API key wins: it is sent as a Bearer token and no login is made, so the password is "
            "not used; drop the password to silence this"
        )
    return warnings
