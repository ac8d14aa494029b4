"""The C library's malloc, told to hand large blocks back to the system when they are freed.

Every scrape reads qBittorrent's list (10 MB at 10,000 torrents) and builds and compresses an
exposition of similar size, then frees it all. glibc serves a block above its mmap threshold
(128 KiB at start) with a mapping of its own and unmaps it when freed, but after the first such free it
raises the threshold to that block's size (up to 32 MiB), so from then on those blocks come from the
heap, whose freed space it keeps, in pieces, as part of the process's resident memory. Setting the
threshold at start-up, to the very value it starts with, turns that adjustment off
(``mallopt(M_MMAP_THRESHOLD)``; the same as ``MALLOC_MMAP_THRESHOLD_=131072`` in the environment).

Only glibc is touched (the Debian image and Debian hosts): another C library, or a threshold the
environment already sets, is left as it is.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value (DEFAULT_MMAP_THRESHOLD_MIN)
ENVIRONMENT = "MALLOC_MMAP_THRESHOLD_"  # glibc reads it at start; a user's value wins


def hand_back_large_blocks() -> bool:
    """Fix glibc's mmap threshold; whether it was set (False: not glibc, or the environment's)."""
    if ENVIRONMENT in os.environ or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False
