"""Throwaway certificate authorities and the certificates they sign, made by openssl (EC keys:
instant), for the tests of client certificates and of certificate rotation."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.tools import require_tool


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    subprocess.run([require_tool("openssl"), *args], check=True, capture_output=True)


def _new_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", str(path))


def authority(directory: Path, name: str = "ca") -> Pair:
    """A self-signed CA certificate and its key."""
    directory.mkdir(parents=True, exist_ok=True)
    pair = Pair(directory / f"{name}.pem", directory / f"{name}-key.pem")
    _new_key(pair.key)
    _openssl(
        "req", "-x509", "-new", "-key", str(pair.key), "-out", str(pair.cert), "-days", "2",
        "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
    )  # fmt: skip
    return pair


def issue(ca: Pair, directory: Path, name: str, *, server: bool, sans: str = "") -> Pair:
    """A certificate signed by ``ca``: for 127.0.0.1 as a server, or a client one named ``name``
    (with ``sans``, in openssl's spelling such as ``DNS:a.example,IP:::1``, if given)."""
    directory.mkdir(parents=True, exist_ok=True)
    pair = Pair(directory / f"{name}.pem", directory / f"{name}-key.pem")
    request = directory / f"{name}.csr"
    extensions = directory / f"{name}.ext"
    _new_key(pair.key)
    _openssl("req", "-new", "-key", str(pair.key), "-out", str(request), "-subj", f"/CN={name}")
    usage = "serverAuth\nsubjectAltName=IP:127.0.0.1" if server else "clientAuth"
    if sans:
        usage += f"\nsubjectAltName={sans}"
    extensions.write_text(f"basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n")
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-out", str(pair.cert), "-days", "2", "-extfile", str(extensions),
    )  # fmt: skip
    return pair
