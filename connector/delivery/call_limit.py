"""The calls-per-minute limit of a destination account, kept in the ledger for every process.

Adobe Target allows a client code about 50 calls a minute, shared by all its APIs, and answers
503 above it (``api/PROTOCOLS.md``). Every process of a deployment that calls the account (a
drain, a poll, a Dagster step in its own container) takes its calls from the ledger's
``call_slots`` table, so together they stay within ``target.calls_per_minute``.

The rule, defined here and nowhere else: **a call holds a slot of its account from the moment
it is granted until a minute after it was answered; at most ``calls`` slots of an account are
held at once.** A request reaches the service between its grant and its answer, so the service
never sees more than ``calls`` of them in any rolling minute, whatever the delays of the
network, of the ledger or of the sleeping callers. A slot whose answer is never recorded (its
process died mid-call) is held until ``UNANSWERED_HOLD_S`` plus a minute after its grant.

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
from dataclasses import dataclass

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from connector import progress
from connector.destinations.base import CallLimits
from connector.ledger import CallSlot, Ledger, lock_for_transaction

log = logging.getLogger(__name__)

PERIOD_S = 60.0
"""The limit's window: ``calls`` per minute."""

UNANSWERED_HOLD_S = 60.0
"""How long after its grant a call with no recorded answer may still reach the service (far
longer than any connect timeout): its slot is held until then plus ``PERIOD_S``."""

Clock = Callable[[], float]
"""Seconds since the epoch (tests: a fake clock; None: the ledger's)."""


@dataclass(frozen=True)
class Grant:
    """What one request for a slot got: the slot, or the seconds until one may be free."""

    slot_id: int | None
    wait_s: float = 0.0


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
        held = session.execute(
            select(CallSlot.free_at, CallSlot.answered_at).where(CallSlot.destination_key == key)
        ).all()
        if len(held) < calls:
            slot = CallSlot(
                destination_key=key,
                granted_at=now,
                free_at=now + UNANSWERED_HOLD_S + PERIOD_S,
            )
            session.add(slot)
            session.flush()
            return Grant(slot.id)
        frees = sorted(
            free_at if answered_at is not None else min(free_at, now + PERIOD_S)
            for free_at, answered_at in held
        )
        # all but calls - 1 of the held slots must be free before one more call may go
        return Grant(None, frees[len(held) - calls] - now)


def record_answer(ledger: Ledger, slot_id: int, *, clock: Clock | None = None) -> None:
    """The call of ``slot_id`` was answered now: its slot is held for one more minute."""
    with ledger.session(immediate=True) as session:
        session.connection()  # SQLite: the write lock before the clock is read
        now = _now(session, clock)
        session.execute(
            update(CallSlot)
            .where(CallSlot.id == slot_id)
            .values(answered_at=now, free_at=now + PERIOD_S)
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
