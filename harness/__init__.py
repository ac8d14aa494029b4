"""What the end-to-end tests and the benchmarks share: real programs on loopback, and torrents.

Not part of the exporter (pyproject packages ``qbt_exporter*`` only) and not under ``tests/``, so that
``benchmarks/`` can start a real qbittorrent-nox or the exporter without reaching into the test suite.

* ``processes``: free ports, polling waits, child processes that are always stopped;
* ``servers``: which qbittorrent-nox can run here (this machine's, or the other Debian release's in a
  chroot, started in a mount namespace of its own);
* ``qbittorrent``: a real qbittorrent-nox from a safe profile (loopback only, no DHT/PeX/LSD/UPnP,
  a PBKDF2 WebUI password of the harness's own) and its WebUI API;
* ``torrents``: torrents made by a small bencoder, announcing to loopback only;
* ``exporter``: ``python -m qbt_exporter`` in front of one qBittorrent.

What only the end-to-end tests need (their fixed torrent mix, the two-instance world, Prometheus)
stays in ``tests/e2e/harness.py``.
"""
