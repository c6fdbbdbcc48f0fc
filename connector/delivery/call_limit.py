"""The calls-per-minute limit of a destination account, kept in the ledger for every process.

Adobe Target allows a client code about 50 calls a minute, shared by all its APIs, and answers
503 above it (``api/PROTOCOLS.md``). Every process of a deployment that calls the account (a
drain, a poll, a Dagster step in its own container) takes its calls from the ledger's
``call_slots`` table, so together they stay within ``target.calls_per_minute``.

The rule is ``connector.destinations.call_slots``'s (a call holds a slot of its account from
its grant until a period after its answer; at most ``calls`` slots held at once), with a
period of a minute; this module keeps the slots in the ledger's ``call_slots`` table.

A grant is one short transaction: under the account's lock (PostgreSQL: a transaction-scoped
advisory lock, so there is no row to create first and no insert race; SQLite: the database's
write lock, ``BEGIN IMMEDIATE``), read the clock (PostgreSQL's, so hosts whose clocks differ
share one timeline; SQLite: this machine's), delete the account's slots that no longer count,
count the others, and insert the new slot if fewer than ``calls`` are held. Otherwise it says
how long until one is free at the earliest; the caller sleeps that long and asks again (it
never spins). Recording the answer is one more short transaction. What that costs per call is
in ``docs/ledger.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from connector import progress
from connector.destinations.base import CallLimits
from connector.destinations.call_slots import (
    Grant,
    HeldSlot,
    free_at_when_answered,
    free_at_when_granted,
    wait_for_slot,
)
from connector.ledger import CallSlot, Ledger, lock_for_transaction

log = logging.getLogger(__name__)

PERIOD_S = 60.0
"""The limit's window: ``calls`` per minute."""

Clock = Callable[[], float]
"""Seconds since the epoch (tests: a fake clock; None: the ledger's)."""


def _now(session: Session, clock: Clock | None) -> float:
    """The ledger's time (read once its lock is held): PostgreSQL's clock, else this machine's."""
    if clock is not None:
        return clock()
    if session.get_bind().dialect.name == "postgresql":
        return float(session.scalar(text("SELECT extract(epoch FROM clock_timestamp())")))
    return time.time()


def take_slot(ledger: Ledger, key: str, calls: int, *, clock: Clock | None = None) -> Grant:
    """A slot for one call of account ``key`` if fewer than ``calls`` are held, else how long
    until one is free at the earliest (an unanswered call frees its slot a minute after its
    answer at the soonest)."""
    with ledger.session(immediate=True) as session:
        lock_for_transaction(session, f"call_slots:{key}")
        now = _now(session, clock)
        session.execute(
            delete(CallSlot).where(CallSlot.destination_key == key, CallSlot.free_at <= now)
        )
        held = [
            HeldSlot(free_at, answered_at is not None)
            for free_at, answered_at in session.execute(
                select(CallSlot.free_at, CallSlot.answered_at).where(
                    CallSlot.destination_key == key
                )
            )
        ]
        wait = wait_for_slot(held, calls, now, PERIOD_S)
        if wait > 0:
            return Grant(None, wait)
        slot = CallSlot(
            destination_key=key, granted_at=now, free_at=free_at_when_granted(now, PERIOD_S)
        )
        session.add(slot)
        session.flush()
        return Grant(slot.id)


def record_answer(ledger: Ledger, slot_id: int, *, clock: Clock | None = None) -> None:
    """The call of ``slot_id`` was answered now: its slot is held for one more minute."""
    with ledger.session(immediate=True) as session:
        session.connection()  # SQLite: the write lock before the clock is read
        now = _now(session, clock)
        session.execute(
            update(CallSlot)
            .where(CallSlot.id == slot_id)
            .values(answered_at=now, free_at=free_at_when_answered(now, PERIOD_S))
        )


class LedgerCallLimiter:
    """The ``CallLimiter`` (``destinations.base``) of account ``key``, kept in ``ledger``:
    at most ``calls`` calls a minute among every process that shares the ledger.

    ``clock`` and ``sleep`` are for tests (a fake clock on which nothing really waits)."""

    def __init__(
        self,
        ledger: Ledger,
        key: str,
        calls: int,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calls <= 0:
            raise ValueError(f"calls per minute must be positive, got {calls}")
        self.ledger, self.key, self.calls = ledger, key, calls
        self._clock, self._sleep = clock, sleep

    @contextmanager
    def call(self) -> Iterator[float]:
        """Wait for a slot (sleeping, reported as the stage's wait), hold it while the block
        makes its one request, then record the answer; yields the seconds waited."""
        waited = 0.0
        grant = take_slot(self.ledger, self.key, self.calls, clock=self._clock)
        while grant.slot_id is None:
            what = f"next call (limit {self.calls} per {PERIOD_S:g}s)"
            with progress.waiting(what, grant.wait_s):
                self._sleep(grant.wait_s)
            waited += grant.wait_s
            grant = take_slot(self.ledger, self.key, self.calls, clock=self._clock)
        try:
            yield waited
        finally:
            self._answered(grant.slot_id)

    def _answered(self, slot_id: int) -> None:
        try:
            record_answer(self.ledger, slot_id, clock=self._clock)
        except SQLAlchemyError as exc:
            # the slot stays held as unanswered: longer than needed, never too short
            log.warning("%s: the answer of call slot %d not recorded: %s", self.key, slot_id, exc)


def ledger_call_limits(ledger: Ledger) -> CallLimits:
    """Where delivery's destinations get their accounts' limiters: from ``ledger``."""

    def limiter(key: str, calls: int) -> LedgerCallLimiter:
        return LedgerCallLimiter(ledger, key, calls)

    return limiter
