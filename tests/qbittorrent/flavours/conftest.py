"""Fixtures for the flavour tests: the real Client against ``responses``, fed from the recordings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from qbt_exporter.deadline import Deadline
from qbt_exporter.qbittorrent.client import Client
from qbt_exporter.stats import Stats
from tests.qbittorrent.flavours.helpers import BASE


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """Unregistered URLs raise ConnectionError, so a request to a wrong path fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def stats() -> Stats:
    return Stats()


@pytest.fixture
def client(stats: Stats) -> Iterator[Client]:
    c = Client(BASE, "admin", "adminadmin", stats=stats, timeout=2.0)
    yield c
    c.close()


@pytest.fixture
def deadline() -> Deadline:
    return Deadline.never()
