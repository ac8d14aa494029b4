"""Waiting for what another thread does, without sleeping a fixed time."""

from __future__ import annotations

import threading
from collections.abc import Callable


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``condition`` holds within ``timeout`` (checked every 10 ms): for work another thread
    does; only a hang makes it wait the whole timeout."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        pause.wait(0.01)
    return condition()
