"""The watchdog that cuts exchanges at their deadline, tested on its own with real socket pairs."""

from __future__ import annotations

import socket

from qbt_exporter.qbittorrent.watchdog import Exchange, Watchdog, watch


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_fired_exchange_unblocks_a_read_and_says_so() -> None:
    dog = Watchdog()
    left, right = socket.socketpair()
    with left, right, dog.guard(0.2) as exchange:
        watch(left)
        left.settimeout(30)
        data = left.recv(10)  # nothing is ever sent: only the watchdog can end this
        assert data == b"" and exchange.fired


def test_a_finished_exchange_is_never_fired_and_its_duplicates_are_closed() -> None:
    exchange = Exchange(due=0.0)
    left, right = socket.socketpair()
    with left, right:
        exchange.adopt(left)
        exchange.finish()
        exchange.fire()
        assert not exchange.fired
        right.sendall(b"still open")
        assert left.recv(100) == b"still open"  # the original socket is untouched
        exchange.adopt(left)  # adopted after the end: closed at once, nothing kept


def test_a_socket_made_after_the_deadline_is_cut_at_once() -> None:
    exchange = Exchange(due=0.0)
    exchange.fire()
    left, right = socket.socketpair()
    with left, right:
        exchange.adopt(left)
        left.settimeout(30)
        assert left.recv(10) == b""
    exchange.finish()


def test_watch_outside_an_exchange_does_nothing() -> None:
    left, right = socket.socketpair()
    with left, right:
        watch(left)
        right.sendall(b"x")
        assert left.recv(1) == b"x"


def test_far_deadlines_do_not_pile_up() -> None:
    """Finished exchanges leave the heap lazily; with a huge scrape timeout they would never reach
    its top, so the heap is rebuilt when they are most of it."""
    clock = Clock()
    dog = Watchdog(clock=clock)
    for _ in range(10_000):
        with dog.guard(1e9):
            pass
    assert len(dog._heap) <= 64


def test_exchanges_fire_in_deadline_order_not_arming_order() -> None:
    dog = Watchdog()
    fired: list[str] = []
    left, right = socket.socketpair()
    with left, right, dog.guard(30) as late, dog.guard(0.1) as early:
        watch(left)
        left.settimeout(30)
        assert left.recv(1) == b""
        fired.append("early" if early.fired else "")
        fired.append("late" if late.fired else "")
    assert fired == ["early", ""]
