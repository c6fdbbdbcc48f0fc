"""Ledger.exclusive: one holder of a named lock at a time among the processes and threads
that share a ledger (what keeps two outbox builds of one account from queuing the same
profiles twice)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from connector.ledger import Ledger

# how long the second holder is given to (wrongly) get in while the first holds the lock:
# the lock working never depends on it; a broken lock gets in well within it
CHANCE_S = 0.5


def _second_waits_for_the_first(first: Ledger, second: Ledger) -> None:
    held, entered, release = threading.Event(), threading.Event(), threading.Event()

    def holder() -> None:
        with first.exclusive("outbox:target:demo"):
            held.set()
            release.wait(30)

    def waiter() -> None:
        held.wait(30)
        with second.exclusive("outbox:target:demo"):
            entered.set()

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    for t in threads:
        t.start()
    try:
        assert held.wait(30)
        assert not entered.wait(CHANCE_S), "the second holder got in while the first held it"
        # another name is another lock
        with second.exclusive("outbox:copernica:demo"):
            pass
    finally:
        release.set()
        for t in threads:
            t.join(30)
    assert entered.is_set()  # once the first let go


def test_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first, second = Ledger(url), Ledger(url)  # two engines: as two processes would
    try:
        _second_waits_for_the_first(first, second)
    finally:
        first.dispose()
        second.dispose()


def test_sqlite_in_memory() -> None:
    ledger = Ledger("sqlite:///:memory:")
    try:
        _second_waits_for_the_first(ledger, ledger)
    finally:
        ledger.dispose()


@pytest.mark.postgres
def test_postgresql(postgres_url: str) -> None:
    first, second = Ledger(postgres_url), Ledger(postgres_url)
    try:
        _second_waits_for_the_first(first, second)
    finally:
        first.dispose()
        second.dispose()
