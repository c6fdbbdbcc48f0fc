"""Claims, quota and the in-flight limit: which queued batch a drain may send next.

One claim is one short transaction (``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL the
account's ``QuotaUse`` row of the day is locked ``FOR UPDATE``) that counts the batches in
flight, reads the quota used today, checks that the oldest queued batch fits both, claims it
with ``ledger.claim_batches`` (a compare-and-set on ``state='queued'``) and charges its rows
to today's quota. Two drains at once are therefore serialised per account: no batch is
claimed twice and neither limit is exceeded. A batch that does not fit today's remaining
quota stops the drain (oldest first; younger small batches do not jump the queue).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector import ledger as ledger_mod
from connector import planner
from connector.ledger import CLAIMED, QUEUED, SUBMITTED, Batch, Ledger, QuotaUse


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    """UTC-aware: what the ledger stores (SQLite keeps no offset, so never store local times)."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def owner_id() -> str:
    """Who holds a claim: host, process, thread and a token."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:6]}"


def quota_used(session: Session, key: str, day: dt.date) -> int:
    used = session.scalar(
        select(QuotaUse.rows).where(QuotaUse.destination_key == key, QuotaUse.day == day)
    )
    return int(used or 0)


def _locked_quota_row(session: Session, key: str, day: dt.date) -> QuotaUse:
    row = session.scalars(
        select(QuotaUse)
        .where(QuotaUse.destination_key == key, QuotaUse.day == day)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        row = QuotaUse(destination_key=key, day=day, rows=0, calls=0)
        session.add(row)
        session.flush()
    return row


def _in_flight(session: Session, key: str) -> int:
    return int(
        session.scalar(
            select(func.count(Batch.id)).where(
                Batch.destination_key == key, Batch.state.in_((CLAIMED, SUBMITTED))
            )
        )
        or 0
    )


def claim_next(
    ledger: Ledger,
    key: str,
    owner: str,
    now: dt.datetime,
    *,
    day: dt.date,
    quota: int | None,
    max_in_flight: int | None,
) -> tuple[Batch | None, str]:
    """Claim the oldest queued batch if it fits the quota and the in-flight limit."""
    for _ in range(3):
        try:
            with ledger.session(immediate=True) as session:
                qrow = _locked_quota_row(session, key, day)
                if max_in_flight is not None and _in_flight(session, key) >= max_in_flight:
                    return None, "in_flight"
                oldest = session.execute(
                    select(Batch.id, Batch.row_count)
                    .where(Batch.destination_key == key, Batch.state == QUEUED)
                    .order_by(Batch.created_at, Batch.id)
                    .limit(1)
                ).first()
                if oldest is None:
                    return None, "empty"
                if quota is not None and qrow.rows + oldest.row_count > quota:
                    return None, "quota"
                claimed = ledger_mod.claim_batches(session, key, 1, owner, now=now)
                if not claimed:
                    return None, "empty"
                batch = claimed[0]
                qrow.rows += batch.row_count
                return batch, ""
        except IntegrityError:  # two first claims of the day inserted the quota row at once
            continue
    return None, "contention"


def refund(session: Session, key: str, batch: Batch, tz: Any) -> None:
    """Give back the quota a never-sent batch was charged (only if charged today)."""
    claimed_at = aware(batch.claimed_at)
    if claimed_at is None:
        return
    day = planner.quota_day(claimed_at, tz)
    session.execute(
        update(QuotaUse)
        .where(
            QuotaUse.destination_key == key, QuotaUse.day == day, QuotaUse.rows >= batch.row_count
        )
        .values(rows=QuotaUse.rows - batch.row_count)
    )


def mark_sending(ledger: Ledger, batch: Batch, now: dt.datetime, day: dt.date) -> None:
    with ledger.session(immediate=True) as session:
        session.execute(
            update(Batch).where(Batch.id == batch.id).values(submitted_at=now, updated_at=now)
        )
        session.execute(
            update(QuotaUse)
            .where(QuotaUse.destination_key == batch.destination_key, QuotaUse.day == day)
            .values(calls=QuotaUse.calls + 1)
        )


def return_to_queue(ledger: Ledger, batch: Batch, tz: Any, message: str) -> None:
    with ledger.session(immediate=True) as session:
        current = session.get(Batch, batch.id)
        if current is None or current.state != CLAIMED:
            return
        refund(session, batch.destination_key, current, tz)
        current.state = QUEUED
        current.claimed_by = None
        current.claimed_at = None
        current.submitted_at = None
        current.message = message[:2000]
