"""Claims, quota and the in-flight limit: which queued batch a drain may send next.

The quota (the setting ``daily_quota``) is rows per account per rolling 24 hours, Adobe's "one
million profile updates in a 24-hour period": a claim at ``now`` may take the oldest queued
batch only if the rows charged in the 24 hours before ``now`` plus the batch's rows stay within
it, so no 24-hour period ever holds more (a night window across midnight sends one quota, not
one per calendar day). A batch is charged when it is claimed, at its ``claimed_at``, and stays
charged whatever becomes of it (submitted, complete, failed and retried: what was sent counts).
A batch returned to the queue unsent (``return_to_queue``) gets ``claimed_at=None`` and
``submitted_at=None`` and is charged no more. A batch whose ``claimed_at`` is cleared by other
means while its ``submitted_at`` (the send started) stays set stays charged at
``submitted_at`` (no code path clears it so; ``recovery.recover_stale_claims`` keeps
``claimed_at``).
A charge with a time after ``now`` (another host's clock ahead) counts too.

One claim is one short transaction (``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL the account's
``QuotaUse`` rows of the local day before ``now``'s and of ``now``'s day are locked
``FOR UPDATE``, in that order) that counts the batches in flight, sums the rows charged in the
last 24 hours, checks that the oldest queued batch fits both and claims it with
``ledger.claim_batches`` (a compare-and-set on ``state='queued'``). Two claims at once whose
``now`` values fall on the same or adjacent local days (any two less than 23 hours apart do)
lock a row in common, so two drains at once are serialised per account: no batch is claimed
twice and neither limit is exceeded. A batch that
does not fit the quota stops the drain (oldest first; younger small batches do not jump the
queue); ``next_fit`` says when it will.

``QuotaUse`` keeps, per account and local day, the submit calls started (``calls``, shown by
``connector status``) and the rows claimed that day (``rows``, taken back when a batch goes
back unsent): records, not the limit.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import uuid
from typing import Any
from zoneinfo import ZoneInfo

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


WINDOW = dt.timedelta(hours=24)
"""The quota's period: ``daily_quota`` rows per account in any 24 hours."""


def _charged_at() -> Any:
    """When a batch was charged: its claim, or (claim cleared after the send started) its send."""
    return func.coalesce(Batch.claimed_at, Batch.submitted_at)


def _used_since(session: Session, key: str, since: dt.datetime) -> int:
    used = session.scalar(
        select(func.coalesce(func.sum(Batch.row_count), 0)).where(
            Batch.destination_key == key, _charged_at() > since
        )
    )
    return int(used or 0)


def quota_used_24h(target: Ledger | Session, key: str, now: dt.datetime) -> int:
    """Rows of ``key`` charged in the 24 hours before ``now`` (what the quota limits)."""
    since = _utc(now) - WINDOW
    if isinstance(target, Session):
        return _used_since(target, key, since)
    with target.session() as session:
        return _used_since(session, key, since)


def next_fit(ledger: Ledger, key: str, now: dt.datetime, quota: int) -> dt.datetime | None:
    """When the oldest queued batch of ``key`` fits the quota: ``now`` if it does, else the
    moment enough of the oldest charged rows leave the 24-hour window (UTC); None when nothing
    is queued or the batch is larger than the quota itself."""
    now = _utc(now)
    with ledger.session() as session:
        rows = session.scalar(
            select(Batch.row_count)
            .where(Batch.destination_key == key, Batch.state == QUEUED)
            .order_by(Batch.created_at, Batch.id)
            .limit(1)
        )
        charges = session.execute(
            select(_charged_at(), Batch.row_count)
            .where(Batch.destination_key == key, _charged_at() > now - WINDOW)
            .order_by(_charged_at())
        ).all()
    if rows is None or rows > quota:
        return None
    used = sum(int(n) for _, n in charges)
    for at, n in charges:
        if used + rows <= quota:
            break
        used -= int(n)
        if used + rows <= quota:
            return max(_utc(at) + WINDOW, now)
    return now


def _utc(moment: dt.datetime) -> dt.datetime:
    found = aware(moment)
    assert found is not None
    return found


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


def _lock_account(session: Session, key: str, day: dt.date) -> QuotaUse:
    """Lock the account's ``QuotaUse`` rows of ``day - 1`` and ``day`` (that order, so two
    claimers never wait on each other crosswise); returns ``day``'s."""
    _locked_quota_row(session, key, day - dt.timedelta(days=1))
    return _locked_quota_row(session, key, day)


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
    """Claim the oldest queued batch if it fits the quota (rows per rolling 24 hours) and the
    in-flight limit; ``day``: ``now``'s local day (``planner.quota_day``), whose ``QuotaUse``
    row records the claim. The reason when nothing is claimed: ``in_flight``, ``empty``,
    ``quota`` or ``contention``."""
    now = _utc(now)
    for _ in range(3):
        try:
            with ledger.session(immediate=True) as session:
                qrow = _lock_account(session, key, day)
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
                if (
                    quota is not None
                    and _used_since(session, key, now - WINDOW) + oldest.row_count > quota
                ):
                    return None, "quota"
                claimed = ledger_mod.claim_batches(session, key, 1, owner, now=now)
                if not claimed:
                    return None, "empty"
                batch = claimed[0]
                qrow.rows += batch.row_count
                return batch, ""
        except IntegrityError:  # two first claims of a day inserted its quota row at once
            continue
    return None, "contention"


def refund(session: Session, key: str, batch: Batch, tz: ZoneInfo | str) -> None:
    """Take a never-sent batch's rows off the record of the day it was claimed (``QuotaUse``);
    the rolling quota frees them when the caller clears ``claimed_at``."""
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


def return_to_queue(ledger: Ledger, batch: Batch, tz: ZoneInfo | str, message: str) -> None:
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
