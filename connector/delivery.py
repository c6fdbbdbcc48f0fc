"""Delivery: drain the outbox to a destination and follow the batches until every row is final.

``drain`` claims queued batches one at a time, oldest first, inside the off-peak window, the
daily quota and the in-flight limit, and submits them. ``poll`` follows the status URLs,
records per-row outcomes, writes ``Delivered`` digests for confirmed rows only, re-queues
failed, stuck and unverifiable rows as a new batch (``attempt + 1``) and dead-letters rows
whose attempts are used up.

Claims, quota and in-flight
---------------------------
One claim is one short transaction (``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL the
destination's ``QuotaUse`` row of the day is locked ``FOR UPDATE``) that counts the batches in
flight, reads the quota used today, checks that the oldest queued batch fits both, claims it
with ``ledger.claim_batches`` (a compare-and-set on ``state='queued'``) and charges its rows
to today's quota. Two drains at once are therefore serialised per destination: no batch is
claimed twice and neither limit is exceeded. A batch that does not fit today's remaining quota
stops the drain (oldest first; younger small batches do not jump the queue).

Crash recovery (claim lease)
----------------------------
Right before the POST the batch gets ``submitted_at`` (its "send started" mark) while still
``claimed``; after the answer it becomes ``submitted`` with the remote id and status URL. A
batch ``claimed`` for longer than the lease (``lease_s``, default 15 min, longer than a submit's
whole retry budget) belongs to a dead process:

* no ``submitted_at``: it was never sent -> back to ``queued`` (same attempt), quota refunded;
* ``submitted_at`` set: it may have reached the service -> treated as an ambiguous submit:
  ``failed`` and its rows re-queued with ``attempt + 1``. If it had landed, that one batch is
  delivered twice with the same values (idempotent, bounded by ``max_attempts``).

So a batch is never lost and never submitted twice within one attempt.

A batch is marked ``failed``/``stuck``/``expired`` before its rows are re-queued; a process that
dies in between leaves it in that state. ``drain`` finishes such a batch once it has been
untouched for longer than the lease (``resume_interrupted_retries``).

Statuses that vanish
--------------------
Only the last 10 statuses per client are kept for 24 h. A status that answers 404 (or another
4xx) is marked ``expired`` and resolved by reading every row back through the Profile Fetch
API (up to ``identify_limit`` rows; above that the whole batch is re-queued). Rows confirmed by
read-back are delivered, the rest re-queued. v1 reports only counts: when a v1 batch reports
failures or profiles not found, the rows are identified the same way (v1 never creates
profiles, so a not-found row is final with status ``not_found`` and is not retried).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector import ledger as ledger_mod
from connector import manifests, planner
from connector.destinations.copernica import CopernicaClient, PutResult
from connector.destinations.http import (
    AmbiguousSubmitError,
    AuthError,
    DeliveryError,
    NotFoundError,
    ProtocolError,
    RejectedError,
    RetriesExhausted,
)
from connector.destinations.target import (
    ROW_SUCCESS,
    STATUS_COMPLETE,
    STATUS_STUCK,
    BatchStatus,
    TargetClient,
)
from connector.ledger import (
    CLAIMED,
    COMPLETE,
    DEAD,
    EXPIRED,
    FAILED,
    QUEUED,
    STUCK,
    SUBMITTED,
    SUPERSEDED,
    Batch,
    Ledger,
    QuotaUse,
    RowOutcome,
)
from connector.outbox import build as outbox_build
from connector.settings import Settings

log = logging.getLogger(__name__)

IDENTITY, SOURCE_REF, DIGEST = "_identity", "_source_ref", "_digest"
DEFAULT_LEASE_S = 15 * 60
DEFAULT_IDENTIFY_LIMIT = 5_000
# Row outcome statuses written here
ROW_FAILED, ROW_NOT_FOUND, ROW_REQUEUED, ROW_DEAD = "failed", "not_found", "requeued", "dead"
ROW_SUPERSEDED = "superseded"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    """UTC-aware: what the ledger stores (SQLite keeps no offset, so never store local times)."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:6]}"


# --------------------------------------------------------------------------------------
# Results


@dataclass
class DrainResult:
    """What one ``drain`` did and what still waits."""

    destination: str
    destination_key: str
    submitted: list[int] = field(default_factory=list)
    rows_submitted: int = 0
    returned_to_queue: list[int] = field(default_factory=list)
    ambiguous: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    recovered: int = 0
    rows_confirmed: int = 0  # Copernica: rows confirmed during the drain
    rows_failed: int = 0
    unknown_fields: list[str] = field(default_factory=list)
    in_window: bool = True
    next_window: dt.datetime | None = None
    stopped_because: str = "empty"  # empty|window|quota|in_flight|unavailable|auth
    quota_used_today: int = 0
    quota_left_today: int = 0
    queued_batches: int = 0
    queued_rows: int = 0
    projected_drain_date: dt.date | None = None

    def summary(self) -> str:
        text = (
            f"submitted {len(self.submitted)} batch(es), {self.rows_submitted} rows; "
            f"stopped: {self.stopped_because}; {self.queued_batches} batch(es) / "
            f"{self.queued_rows} rows still queued; quota left today {self.quota_left_today}"
        )
        if self.projected_drain_date:
            text += f"; backlog drained by {self.projected_drain_date.isoformat()}"
        if not self.in_window and self.next_window:
            text += f"; next window {self.next_window.isoformat()}"
        return text

    def metadata(self) -> dict[str, Any]:
        return {
            "batches_submitted": len(self.submitted),
            "rows_submitted": self.rows_submitted,
            "batches_ambiguous": len(self.ambiguous),
            "batches_rejected": len(self.rejected),
            "batches_returned_to_queue": len(self.returned_to_queue),
            "stale_claims_recovered": self.recovered,
            "stopped_because": self.stopped_because,
            "in_window": self.in_window,
            "next_window": self.next_window.isoformat() if self.next_window else "",
            "quota_used_today": self.quota_used_today,
            "quota_left_today": self.quota_left_today,
            "queued_batches": self.queued_batches,
            "queued_rows": self.queued_rows,
            "projected_drain_date": (
                self.projected_drain_date.isoformat() if self.projected_drain_date else ""
            ),
            "unknown_fields": ", ".join(self.unknown_fields),
        }


@dataclass
class PollResult:
    """What one ``poll`` found and recorded."""

    destination: str
    destination_key: str
    polled: int = 0
    completed: list[int] = field(default_factory=list)
    stuck: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    still_open: int = 0
    errors: list[str] = field(default_factory=list)
    rows_confirmed: int = 0
    rows_failed: int = 0
    rows_not_found: int = 0
    rows_requeued: int = 0
    rows_dead: int = 0
    verified: int = 0
    verified_ok: int = 0

    @property
    def landing_rate(self) -> float | None:
        """Share of the read-back sample whose stored values equal the manifest."""
        return self.verified_ok / self.verified if self.verified else None

    def summary(self) -> str:
        rate = "n/a" if self.landing_rate is None else f"{self.landing_rate:.2%}"
        return (
            f"polled {self.polled}, completed {len(self.completed)}, stuck {len(self.stuck)}, "
            f"expired {len(self.expired)}, still open {self.still_open}; rows confirmed "
            f"{self.rows_confirmed}, failed {self.rows_failed}, not found {self.rows_not_found}, "
            f"requeued {self.rows_requeued}, dead {self.rows_dead}; landing rate {rate} "
            f"({self.verified_ok}/{self.verified})"
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "batches_polled": self.polled,
            "batches_completed": len(self.completed),
            "batches_stuck": len(self.stuck),
            "batches_expired": len(self.expired),
            "batches_still_open": self.still_open,
            "rows_confirmed": self.rows_confirmed,
            "rows_failed": self.rows_failed,
            "rows_not_found": self.rows_not_found,
            "rows_requeued": self.rows_requeued,
            "rows_dead": self.rows_dead,
            "verified": self.verified,
            "verified_ok": self.verified_ok,
            "landing_rate": -1.0 if self.landing_rate is None else float(self.landing_rate),
            "poll_errors": len(self.errors),
        }


# --------------------------------------------------------------------------------------
# Quota and claims


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


def _claim_next(
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


def _refund(session: Session, key: str, batch: Batch, tz: Any) -> None:
    """Give back the quota a never-sent batch was charged (only if charged today)."""
    claimed_at = _aware(batch.claimed_at)
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


def _mark_sending(ledger: Ledger, batch: Batch, now: dt.datetime, day: dt.date) -> None:
    with ledger.session(immediate=True) as session:
        session.execute(
            update(Batch).where(Batch.id == batch.id).values(submitted_at=now, updated_at=now)
        )
        session.execute(
            update(QuotaUse)
            .where(QuotaUse.destination_key == batch.destination_key, QuotaUse.day == day)
            .values(calls=QuotaUse.calls + 1)
        )


def _return_to_queue(ledger: Ledger, batch: Batch, tz: Any, message: str) -> None:
    with ledger.session(immediate=True) as session:
        current = session.get(Batch, batch.id)
        if current is None or current.state != CLAIMED:
            return
        _refund(session, batch.destination_key, current, tz)
        current.state = QUEUED
        current.claimed_by = None
        current.claimed_at = None
        current.submitted_at = None
        current.message = message[:2000]


def recover_stale_claims(
    ledger: Ledger, settings: Settings, key: str, now: dt.datetime, lease_s: float
) -> int:
    """Resolve batches claimed longer than the lease by a process that is gone (see module doc)."""
    cutoff = now - dt.timedelta(seconds=lease_s)
    with ledger.session() as session:
        stale = list(
            session.scalars(
                select(Batch).where(
                    Batch.destination_key == key, Batch.state == CLAIMED, Batch.claimed_at < cutoff
                )
            )
        )
    me = _owner()
    count = 0
    for batch in stale:
        with ledger.session(immediate=True) as session:
            took = session.execute(
                update(Batch)
                .where(
                    Batch.id == batch.id,
                    Batch.state == CLAIMED,
                    Batch.claimed_by == batch.claimed_by,
                )
                .values(claimed_by=me, updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
        if took != 1:
            continue
        count += 1
        if batch.submitted_at is None:
            log.warning("batch %s: claim expired before sending; back to the queue", batch.id)
            _return_to_queue(ledger, batch, settings.tz, "claim expired before sending")
        else:
            log.warning("batch %s: claim expired while sending; outcome unknown", batch.id)
            retry_whole_batch(
                ledger,
                settings,
                batch,
                "submit interrupted (process died while sending); outcome unknown",
                state=FAILED,
            )
    return count


RETRYING_STATES = (FAILED, STUCK, EXPIRED)


def resume_interrupted_retries(
    ledger: Ledger, settings: Settings, key: str, now: dt.datetime, lease_s: float
) -> int:
    """Finish re-queueing batches a dead process left ``failed``/``stuck``/``expired``.

    ``retry_whole_batch`` marks the batch first and re-queues its rows after; a process killed
    in between left a batch that no state machine step picks up again, its rows in no queue.
    A batch in one of those states untouched for longer than the lease is taken over (a
    compare-and-set on ``claimed_by``) and its rows re-queued whole; what the dead process had
    already re-queued is recognised by the retry batches that carry it
    (``requeued_already``) and outcomes are upserts, so finishing twice does no harm.
    """
    cutoff = now - dt.timedelta(seconds=lease_s)
    with ledger.session() as session:
        stale = list(
            session.scalars(
                select(Batch).where(
                    Batch.destination_key == key,
                    Batch.state.in_(RETRYING_STATES),
                    Batch.updated_at < cutoff,
                )
            )
        )
    me = _owner()
    count = 0
    for batch in stale:
        same_owner = (
            Batch.claimed_by.is_(None)
            if batch.claimed_by is None
            else Batch.claimed_by == batch.claimed_by
        )
        with ledger.session(immediate=True) as session:
            took = session.execute(
                update(Batch)
                .where(
                    Batch.id == batch.id,
                    Batch.state == batch.state,
                    Batch.updated_at < cutoff,
                    same_owner,
                )
                .values(claimed_by=me, updated_at=_utcnow())
            ).rowcount  # type: ignore[attr-defined]
        if took != 1:
            continue
        count += 1
        log.warning(
            "batch %s: left %s by a process that died while re-queueing it; finishing",
            batch.id,
            batch.state,
        )
        retry_whole_batch(
            ledger,
            settings,
            batch,
            (batch.message or f"batch {batch.state}") + " (re-queue resumed after a crash)",
            state=batch.state,
        )
    return count


# --------------------------------------------------------------------------------------
# Manifests and re-queueing


def read_manifest(batch: Batch) -> pa.Table:
    """The batch's manifest rows (no values: :func:`with_values` adds those it is asked for)."""
    return manifests.read(batch.manifest_path)


def with_values(batch: Batch, rows: pa.Table) -> pa.Table:
    """Manifest ``rows`` of ``batch`` with their param values, read from the batch file."""
    return manifests.with_values(batch.path, rows)


param_columns = manifests.param_names


def _identity_type(ledger: Ledger, batch: Batch, settings: Settings) -> str:
    """How the batch's rows identify profiles: the Target header's first field, or the
    Copernica account's match field (the identity type its mappings share)."""
    if batch.destination == "target":
        with open(batch.path, "rb") as fh:
            head = fh.readline(64 * 1024).decode("utf-8", "replace")
        first = head.removeprefix("batch=").split(",", 1)[0].strip()
        return unquote_plus(first) or "thirdPartyId"
    acct = outbox_build.account(settings, ledger, batch.destination)
    return acct.identity_type if acct is not None else "id"


def _requeue_current(
    ledger: Ledger, settings: Settings, batch: Batch, identities: list[str], *, attempt: int
) -> list[Batch]:
    """Queue the profiles' current full rows (never the failed row's copy) as ``attempt``."""
    acct, rows = outbox_build.current_rows(settings, ledger, batch.destination, identities)
    return outbox_build.write_rows(
        settings, ledger, acct, rows, partition=batch.partition, attempt=attempt, parent_id=batch.id
    )


def _write_outcomes(
    session: Session, batch_id: int, rows: list[tuple[str, str | None, str, str]]
) -> None:
    """Upsert ``(identity, source_ref, status, reason)`` outcomes of one batch."""
    if not rows:
        return
    existing = {
        o.identity: o
        for o in session.scalars(select(RowOutcome).where(RowOutcome.batch_id == batch_id))
    }
    for identity, source_ref, status, reason in rows:
        outcome = existing.get(identity)
        if outcome is None:
            outcome = RowOutcome(batch_id=batch_id, identity=identity, source_ref=source_ref)
            session.add(outcome)
            existing[identity] = outcome
        outcome.status = status
        outcome.reason = reason[:2000]


def newer_batches_with(ledger: Ledger, batch: Batch, identities: list[str]) -> dict[str, str]:
    """identity -> key of a newer batch of the same account that carries it.

    Newer means written later (a higher id) outside ``batch``'s own retry lineage: its row
    holds the profile's values as they stood then, which are at least as current as
    ``batch``'s. So a read-back that differs from ``batch`` is no sign of loss, and re-sending
    ``batch``'s rows would tell the destination nothing the newer batch does not.
    """
    if not identities:
        return {}
    with ledger.session() as session:
        candidates = list(
            session.scalars(
                select(Batch)
                .where(
                    Batch.destination_key == batch.destination_key,
                    Batch.id > batch.id,
                    Batch.state != DEAD,
                )
                .order_by(Batch.id.desc())
            )
        )
    lineage = {batch.id}
    for other in sorted(candidates, key=lambda b: b.id):  # children come after their parents
        if other.parent_id in lineage:
            lineage.add(other.id)
    wanted = pa.array(identities, pa.string())
    found: dict[str, str] = {}
    for other in candidates:
        if other.id in lineage:
            continue
        try:
            ids = pq.read_table(other.manifest_path, columns=[IDENTITY]).column(IDENTITY)
        except (OSError, pa.ArrowException):
            continue
        for ident in pc.filter(
            wanted, pc.is_in(wanted, value_set=ids.combine_chunks())
        ).to_pylist():
            found.setdefault(ident, other.batch_key)
        if len(found) == len(identities):
            break
    return found


def requeue_or_dead(
    ledger: Ledger,
    settings: Settings,
    batch: Batch,
    rows: pa.Table,
    reasons: dict[str, str],
    *,
    attempted: bool = True,
) -> tuple[int, int]:
    """Re-queue ``rows`` of ``batch`` as attempt+1, or dead-letter them when attempts are used up.

    Rows that a newer batch already carries are not re-sent (that would overwrite newer values
    with older ones): their outcome is ``superseded``, naming the newer batch. ``attempted``
    False (the batch was held back, never sent): the rows are re-queued at the same attempt,
    since no attempt was made; they cannot run out of attempts that way.

    Returns (requeued, dead). Outcomes are written after the new batch is registered; a crash
    in between leaves a retry batch (a child of ``batch``) carrying rows without their
    outcome. A repeat finds them there and records them re-queued instead of writing them
    again: the profiles' current rows may differ from the first time (a day merged since), so
    ``write_batches``'s content check alone would queue them twice.
    """
    if rows.num_rows == 0:
        return 0, 0
    carried = requeued_already(ledger, batch, rows.column(IDENTITY).to_pylist())
    if carried:
        keep = pc.invert(pc.is_in(rows.column(IDENTITY), pa.array(list(carried), pa.string())))
        done = rows.filter(pc.invert(keep))
        with ledger.session(immediate=True) as session:
            _write_outcomes(
                session,
                batch.id,
                [
                    (i, r, ROW_REQUEUED, f"{reasons.get(i, 'not confirmed')} (in {carried[i]})")
                    for i, r in zip(done.column(IDENTITY).to_pylist(), _refs(done), strict=True)
                ],
            )
        rows = rows.filter(keep)
        if rows.num_rows == 0:
            return len(carried), 0
    requeued, dead = _requeue_or_dead(ledger, settings, batch, rows, reasons, attempted=attempted)
    return requeued + len(carried), dead


def requeued_already(ledger: Ledger, batch: Batch, identities: list[str]) -> dict[str, str]:
    """identity -> key of a retry batch of ``batch`` (its child) that already carries it."""
    with ledger.session() as session:
        children = list(
            session.scalars(select(Batch).where(Batch.parent_id == batch.id).order_by(Batch.id))
        )
    found: dict[str, str] = {}
    if not children or not identities:
        return found
    wanted = pa.array(identities, pa.string())
    for child in children:
        try:
            ids = pq.read_table(child.manifest_path, columns=[IDENTITY]).column(IDENTITY)
        except (OSError, pa.ArrowException):
            continue
        for ident in pc.filter(
            wanted, pc.is_in(wanted, value_set=ids.combine_chunks())
        ).to_pylist():
            found.setdefault(ident, child.batch_key)
    return found


def _requeue_or_dead(
    ledger: Ledger,
    settings: Settings,
    batch: Batch,
    rows: pa.Table,
    reasons: dict[str, str],
    *,
    attempted: bool,
) -> tuple[int, int]:
    newer = newer_batches_with(ledger, batch, rows.column(IDENTITY).to_pylist())
    if newer:
        keep = pc.invert(pc.is_in(rows.column(IDENTITY), pa.array(list(newer), pa.string())))
        gone = rows.filter(pc.invert(keep))
        with ledger.session(immediate=True) as session:
            _write_outcomes(
                session,
                batch.id,
                [
                    (
                        i,
                        r,
                        ROW_SUPERSEDED,
                        f"{reasons.get(i, 'not confirmed')}; not re-sent: "
                        f"newer values went in batch {newer[i]}",
                    )
                    for i, r in zip(gone.column(IDENTITY).to_pylist(), _refs(gone), strict=True)
                ],
            )
        rows = rows.filter(keep)
        if rows.num_rows == 0:
            return 0, 0
    dead = attempted and batch.attempt >= settings.max_attempts
    why_dead = f"attempts exhausted ({batch.attempt}/{settings.max_attempts}): "
    if not dead:
        attempt = batch.attempt + 1 if attempted else batch.attempt
        # the profiles as they stand now: values learnt since the failed row go too
        _requeue_current(
            ledger, settings, batch, rows.column(IDENTITY).to_pylist(), attempt=attempt
        )
    ids = rows.column(IDENTITY).to_pylist()
    refs = _refs(rows)
    status = ROW_DEAD if dead else ROW_REQUEUED
    with ledger.session(immediate=True) as session:
        _write_outcomes(
            session,
            batch.id,
            [
                (
                    ident,
                    ref,
                    status,
                    (why_dead if dead else "") + reasons.get(ident, "not confirmed"),
                )
                for ident, ref in zip(ids, refs, strict=True)
            ],
        )
    return (0, len(ids)) if dead else (len(ids), 0)


def _refs(rows: pa.Table) -> list[str | None]:
    if SOURCE_REF in rows.column_names:
        return list(rows.column(SOURCE_REF).to_pylist())
    return [None] * rows.num_rows


def retry_whole_batch(
    ledger: Ledger, settings: Settings, batch: Batch, reason: str, *, state: str
) -> tuple[int, int]:
    """Mark ``batch`` ``state`` (failed/stuck/expired), re-queue all rows, supersede or kill."""
    with ledger.session(immediate=True) as session:
        session.execute(
            update(Batch)
            .where(Batch.id == batch.id)
            .values(state=state, message=reason[:2000], updated_at=_utcnow())
        )
    try:
        table = read_manifest(batch)
    except (OSError, pa.ArrowException) as exc:
        with ledger.session(immediate=True) as session:
            session.execute(
                update(Batch)
                .where(Batch.id == batch.id)
                .values(state=DEAD, message=f"{reason}; manifest unreadable: {exc}"[:2000])
            )
        return 0, batch.row_count
    reasons = dict.fromkeys(table.column(IDENTITY).to_pylist(), reason)
    requeued, dead = requeue_or_dead(ledger, settings, batch, table, reasons)
    with ledger.session(immediate=True) as session:
        session.execute(
            update(Batch)
            .where(Batch.id == batch.id)
            .values(state=DEAD if dead else SUPERSEDED, finished_at=_utcnow())
        )
    return requeued, dead


# --------------------------------------------------------------------------------------
# drain


def drain(
    settings: Settings,
    ledger: Ledger,
    *,
    destination: str,
    now: dt.datetime | None = None,
    force: bool = False,
    client: Any = None,
    lease_s: float = DEFAULT_LEASE_S,
    max_batches: int | None = None,
) -> DrainResult:
    """Submit queued batches of ``destination`` within window, quota and in-flight limit."""
    key = ledger_mod.destination_key(destination, settings)
    fixed = _aware(now)

    def clock() -> dt.datetime:
        return fixed if fixed is not None else _utcnow()

    result = DrainResult(destination=destination, destination_key=key)
    result.recovered = recover_stale_claims(ledger, settings, key, clock(), lease_s)
    result.recovered += resume_interrupted_retries(ledger, settings, key, clock(), lease_s)
    window = planner.parse_off_peak(settings.off_peak)
    result.in_window = planner.in_window(window, clock(), settings.tz)
    if not result.in_window and not force:
        result.next_window = planner.next_window_start(window, clock(), settings.tz)
        result.stopped_because = "window"
        _fill_backlog(ledger, settings, key, clock(), result)
        log.info("%s: outside the off-peak window; next window %s", key, result.next_window)
        return result
    own_client = client is None
    if destination == "target":
        client = client or TargetClient(settings.target)
    copernica_clients: dict[str, CopernicaClient] = {}
    owner = _owner()
    try:
        while max_batches is None or len(result.submitted) < max_batches:
            moment = clock()
            if not force and not planner.in_window(window, moment, settings.tz):
                result.stopped_because = "window"
                result.next_window = planner.next_window_start(window, moment, settings.tz)
                break
            day = planner.quota_day(moment, settings.tz)
            is_target = destination == "target"
            batch, reason = _claim_next(
                ledger,
                key,
                owner,
                moment,
                day=day,
                quota=settings.daily_quota if is_target else None,
                max_in_flight=settings.target.max_in_flight if is_target else None,
            )
            if batch is None:
                result.stopped_because = reason
                break
            _mark_sending(ledger, batch, moment, day)
            if is_target:
                if not _submit_target(ledger, settings, client, batch, result):
                    break
            elif not _drain_copernica_batch(
                ledger, settings, client, copernica_clients, batch, result
            ):
                break
    finally:
        if own_client and client is not None:
            client.close()
        for cop in copernica_clients.values():
            cop.close()
    _fill_backlog(ledger, settings, key, clock(), result)
    log.info("%s drain: %s", key, result.summary())
    return result


def _submit_target(
    ledger: Ledger, settings: Settings, client: TargetClient, batch: Batch, result: DrainResult
) -> bool:
    """Submit one claimed batch; False when draining should stop (service unavailable)."""
    path = Path(batch.path)
    try:
        answer = client.submit(path)
    except RetriesExhausted as exc:
        # every failure proved the request was not processed: same attempt, later
        _return_to_queue(ledger, batch, settings.tz, f"not accepted: {exc}")
        result.returned_to_queue.append(batch.id)
        result.stopped_because = "unavailable"
        log.warning("batch %s: %s", batch.id, exc)
        return False
    except AuthError as exc:
        # a setup problem: burning the batch's attempts would dead-letter good rows
        _return_to_queue(ledger, batch, settings.tz, str(exc))
        result.returned_to_queue.append(batch.id)
        result.stopped_because = "auth"
        log.error("Target refused the credentials: %s", exc)
        return False
    except AmbiguousSubmitError as exc:
        result.ambiguous.append(batch.id)
        retry_whole_batch(ledger, settings, batch, str(exc), state=FAILED)
        return True
    except ProtocolError as exc:
        # a 200 answer we cannot read: the batch may have been accepted
        result.ambiguous.append(batch.id)
        retry_whole_batch(ledger, settings, batch, f"unreadable answer: {exc}", state=FAILED)
        return True
    except RejectedError as exc:
        result.rejected.append(batch.id)
        retry_whole_batch(ledger, settings, batch, str(exc), state=FAILED)
        return True
    except FileNotFoundError as exc:
        with ledger.session(immediate=True) as session:
            session.execute(
                update(Batch)
                .where(Batch.id == batch.id)
                .values(state=DEAD, message=f"batch file missing: {exc.filename}")
            )
        return True
    with ledger.session(immediate=True) as session:
        session.execute(
            update(Batch)
            .where(Batch.id == batch.id)
            .values(
                state=SUBMITTED,
                remote_batch_id=answer.batch_id,
                status_url=answer.status_url,
                message=answer.message[:2000],
                updated_at=_utcnow(),
            )
        )
    result.submitted.append(batch.id)
    result.rows_submitted += batch.row_count
    log.info("batch %s submitted as %s (%d rows)", batch.id, answer.batch_id, batch.row_count)
    return True


def _fill_backlog(
    ledger: Ledger, settings: Settings, key: str, moment: dt.datetime, result: DrainResult
) -> None:
    day = planner.quota_day(moment, settings.tz)
    with ledger.session() as session:
        used = quota_used(session, key, day)
        n, rows, largest = session.execute(
            select(
                func.count(Batch.id),
                func.coalesce(func.sum(Batch.row_count), 0),
                func.coalesce(func.max(Batch.row_count), 0),
            ).where(Batch.destination_key == key, Batch.state == QUEUED)
        ).one()
    result.quota_used_today = used
    result.quota_left_today = max(settings.daily_quota - used, 0)
    result.queued_batches, result.queued_rows = int(n), int(rows)
    result.projected_drain_date = planner.project_drain_date(
        int(rows),
        daily_quota=settings.daily_quota,
        used_today=used,
        today=day,
        largest_batch=int(largest),
    )


# --------------------------------------------------------------------------------------
# Copernica: a batch is delivered profile by profile during the drain


def _iter_jsonl(path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with path.open("r", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                doc = json.loads(line)
                yield str(doc["identity"]), {k: str(v) for k, v in doc["fields"].items()}


def _drain_copernica_batch(
    ledger: Ledger,
    settings: Settings,
    client: Any,
    clients: dict[str, CopernicaClient],
    batch: Batch,
    result: DrainResult,
) -> bool:
    match_field = _identity_type(ledger, batch, settings)
    cop = client if client is not None else clients.get(match_field)
    if cop is None:
        cop = clients[match_field] = CopernicaClient(settings.copernica, match_field=match_field)
    table = read_manifest(batch)
    outcomes: list[PutResult] = cop.put_many(_iter_jsonl(Path(batch.path)))
    if outcomes and not any(r.ok for r in outcomes) and any(r.auth_refused for r in outcomes):
        first_error = next(r.error for r in outcomes if r.auth_refused)
        _return_to_queue(ledger, batch, settings.tz, f"credentials refused: {first_error}")
        result.returned_to_queue.append(batch.id)
        result.stopped_because = "auth"
        log.error("Copernica refused the credentials: %s", first_error)
        return False
    probe = next((r.identity for r in outcomes if r.ok), None)
    if not result.unknown_fields and probe is not None:
        try:
            result.unknown_fields = sorted(cop.unknown_fields(param_columns(table), probe))
        except DeliveryError as exc:
            log.warning("copernica: could not check the database's fields: %s", exc)
        if result.unknown_fields:
            log.warning(
                "copernica: fields unknown to database %s (silently dropped): %s",
                settings.copernica.database,
                ", ".join(result.unknown_fields),
            )
    failed = {r.identity: r.error or "not confirmed" for r in outcomes if not r.ok}
    ids = table.column(IDENTITY).to_pylist()
    ok_mask = pa.array([i not in failed for i in ids])
    confirmed = table.filter(ok_mask)
    ledger_mod.record_delivered(
        ledger,
        batch.destination_key,
        confirmed,
        partition=batch.partition,
        batch_id=batch.id,
    )
    failed_rows = table.filter(pc.invert(ok_mask))
    requeued, dead = requeue_or_dead(ledger, settings, batch, failed_rows, failed)
    with ledger.session(immediate=True) as session:
        session.execute(
            update(Batch)
            .where(Batch.id == batch.id)
            .values(
                state=COMPLETE,
                successful=confirmed.num_rows,
                failed_rows=failed_rows.num_rows,
                finished_at=_utcnow(),
                message=f"{confirmed.num_rows} confirmed, {requeued} requeued, {dead} dead",
            )
        )
    result.submitted.append(batch.id)
    result.rows_submitted += batch.row_count
    result.rows_confirmed += confirmed.num_rows
    result.rows_failed += failed_rows.num_rows
    return True


# --------------------------------------------------------------------------------------
# poll


def poll(
    settings: Settings,
    ledger: Ledger,
    *,
    destination: str,
    now: dt.datetime | None = None,
    wait: bool = False,
    timeout_s: float | None = None,
    client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    identify_limit: int = DEFAULT_IDENTIFY_LIMIT,
) -> PollResult:
    """Follow open batches of ``destination``: once, or until final/``timeout_s`` when ``wait``."""
    key = ledger_mod.destination_key(destination, settings)
    result = PollResult(destination=destination, destination_key=key)
    if destination != "target":  # Copernica batches are final when drain returns
        return result
    own_client = client is None
    client = client or TargetClient(settings.target)
    started = time.monotonic()
    try:
        while True:
            moment = _aware(now) or _utcnow()
            with ledger.session() as session:
                open_batches = list(
                    session.scalars(
                        select(Batch)
                        .where(Batch.destination_key == key, Batch.state == SUBMITTED)
                        .order_by(Batch.submitted_at, Batch.id)
                    )
                )
            for batch in open_batches:
                result.polled += 1
                _poll_one(ledger, settings, client, batch, moment, result, identify_limit)
            with ledger.session() as session:
                result.still_open = int(
                    session.scalar(
                        select(func.count(Batch.id)).where(
                            Batch.destination_key == key, Batch.state == SUBMITTED
                        )
                    )
                    or 0
                )
            if not wait or result.still_open == 0:
                break
            if timeout_s is not None and time.monotonic() - started >= timeout_s:
                break
            sleep(settings.target.poll_interval_s)
    finally:
        if own_client:
            client.close()
    log.info("%s poll: %s", key, result.summary())
    return result


def _poll_one(
    ledger: Ledger,
    settings: Settings,
    client: TargetClient,
    batch: Batch,
    moment: dt.datetime,
    result: PollResult,
    identify_limit: int,
) -> None:
    try:
        status = client.batch_status(batch.status_url or "")
    except NotFoundError as exc:
        result.expired.append(batch.id)
        _mark(ledger, batch, state=EXPIRED, message=f"status gone at the service: {exc}")
        _resolve_by_readback(ledger, settings, client, batch, result, identify_limit, str(exc))
        return
    except DeliveryError as exc:
        result.errors.append(f"batch {batch.id}: {exc}")
        _touch(ledger, batch, moment)
        if _overdue(batch, moment, settings):
            _stuck(ledger, settings, batch, result, "no readable status within the pending timeout")
        return
    _touch(ledger, batch, moment)
    if status.status == STATUS_STUCK:
        _stuck(ledger, settings, batch, result, "the service reports the batch stuck")
    elif status.status == STATUS_COMPLETE:
        _complete(ledger, settings, client, batch, status, result, identify_limit)
    elif _overdue(batch, moment, settings):
        hours = settings.target.pending_timeout_h
        _stuck(ledger, settings, batch, result, f"still pending after {hours:g} h")


def _overdue(batch: Batch, moment: dt.datetime, settings: Settings) -> bool:
    sent = _aware(batch.submitted_at)
    return sent is not None and moment - sent > dt.timedelta(
        hours=settings.target.pending_timeout_h
    )


def _mark(ledger: Ledger, batch: Batch, **values: Any) -> None:
    with ledger.session(immediate=True) as session:
        session.execute(update(Batch).where(Batch.id == batch.id).values(**values))


def _touch(ledger: Ledger, batch: Batch, moment: dt.datetime) -> None:
    _mark(ledger, batch, last_polled_at=moment, poll_count=Batch.poll_count + 1)


def _stuck(
    ledger: Ledger, settings: Settings, batch: Batch, result: PollResult, reason: str
) -> None:
    result.stuck.append(batch.id)
    requeued, dead = retry_whole_batch(ledger, settings, batch, reason, state=STUCK)
    result.rows_requeued += requeued
    result.rows_dead += dead


def _compare(expected: dict[str, Any], stored: dict[str, str] | None) -> str | None:
    """None when every non-empty expected value is stored as is, else why not."""
    if stored is None:
        return "profile not found at the service"
    for name, value in expected.items():
        if value in (None, ""):
            continue
        if stored.get(name) != value:
            return f"param {name}: stored {stored.get(name)!r} != sent {value!r}"
    return None


def _readback(
    client: TargetClient, id_type: str, rows: list[dict[str, Any]], names: list[str]
) -> dict[str, str | None]:
    """identity -> None (matches) or the reason it does not; a fetch error is a reason too."""
    out: dict[str, str | None] = {}
    for row in rows:
        ident = row[IDENTITY]
        try:
            stored = client.fetch_profile(ident, id_type)
        except DeliveryError as exc:
            out[ident] = f"read-back failed: {exc}"
            continue
        out[ident] = _compare({n: row[n] for n in names}, stored)
    return out


def _complete(
    ledger: Ledger,
    settings: Settings,
    client: TargetClient,
    batch: Batch,
    status: BatchStatus,
    result: PollResult,
    identify_limit: int,
) -> None:
    table = read_manifest(batch)
    names = param_columns(table)
    ids = table.column(IDENTITY).to_pylist()
    id_type = _identity_type(ledger, batch, settings)
    failed: dict[str, str] = {}
    not_found: dict[str, str] = {}
    if status.rows:  # v2 per-row statuses (only failed rows are listed since 2020)
        for ident, word in status.rows.items():
            if word != ROW_SUCCESS:
                failed[ident] = f"row status {word} in batch {batch.remote_batch_id}"
    elif (status.failed or 0) + (status.not_found or 0) > 0:
        # v1 counts only: find which rows by reading every row back
        if table.num_rows > identify_limit:
            reason = (
                f"{status.failed or 0} failed / {status.not_found or 0} not found reported "
                f"for {table.num_rows} rows; too many to identify by read-back"
            )
            failed = dict.fromkeys(ids, reason)
        else:
            checks = _readback(client, id_type, with_values(batch, table).to_pylist(), names)
            for ident, why in checks.items():
                if why == "profile not found at the service" and batch_is_v1(settings):
                    not_found[ident] = "v1 does not create profiles: profile not found"
                elif why is not None:
                    failed[ident] = why
    # verify a sample of the rows taken as confirmed
    confirmed_ids = [i for i in ids if i not in failed and i not in not_found]
    # a profile that a newer batch has updated since cannot show this batch's values
    newer = (
        newer_batches_with(ledger, batch, confirmed_ids) if settings.target.verify_sample else {}
    )
    verifiable = [i for i in confirmed_ids if i not in newer]
    sample = _sample(verifiable, settings.target.verify_sample, seed=batch.id)
    if sample:
        picked = table.filter(pc.is_in(table.column(IDENTITY), pa.array(sample, pa.string())))
        by_id = {r[IDENTITY]: r for r in with_values(batch, picked).to_pylist()}
        checks = _readback(client, id_type, [by_id[i] for i in sample if i in by_id], names)
        for ident, why in checks.items():
            result.verified += 1
            if why is None:
                result.verified_ok += 1
            else:
                failed[ident] = f"read-back mismatch: {why}"
    _settle(ledger, settings, batch, table, failed, not_found, result, status)
    result.completed.append(batch.id)


def batch_is_v1(settings: Settings) -> bool:
    return settings.target.api_version == "v1"


def _sample(ids: list[str], k: int, *, seed: int) -> list[str]:
    if k <= 0 or not ids:
        return []
    if len(ids) <= k:
        return list(ids)
    return random.Random(seed).sample(ids, k)  # noqa: S311 - sampling, not security


def _settle(
    ledger: Ledger,
    settings: Settings,
    batch: Batch,
    table: pa.Table,
    failed: dict[str, str],
    not_found: dict[str, str],
    result: PollResult,
    status: BatchStatus | None,
) -> None:
    """Record the outcome of a finished batch: digests, outcomes, re-queue, batch counts."""
    ids = table.column(IDENTITY)
    bad = pc.is_in(ids, pa.array(list(failed) + list(not_found), pa.string()))
    confirmed = table.filter(pc.invert(bad))
    ledger_mod.record_delivered(
        ledger,
        batch.destination_key,
        confirmed,
        partition=batch.partition,
        batch_id=batch.id,
    )
    if not_found:
        nf = table.filter(pc.is_in(ids, pa.array(list(not_found), pa.string())))
        with ledger.session(immediate=True) as session:
            refs = nf.column(SOURCE_REF).to_pylist()
            _write_outcomes(
                session,
                batch.id,
                [
                    (i, r, ROW_NOT_FOUND, not_found[i])
                    for i, r in zip(nf.column(IDENTITY).to_pylist(), refs, strict=True)
                ],
            )
    retry_rows = table.filter(pc.is_in(ids, pa.array(list(failed), pa.string())))
    requeued, dead = requeue_or_dead(ledger, settings, batch, retry_rows, failed)
    _mark(
        ledger,
        batch,
        state=COMPLETE,
        finished_at=_utcnow(),
        successful=confirmed.num_rows,
        not_found=len(not_found) if not_found else (status.not_found if status else None),
        failed_rows=len(failed),
    )
    result.rows_confirmed += confirmed.num_rows
    result.rows_failed += len(failed)
    result.rows_not_found += len(not_found)
    result.rows_requeued += requeued
    result.rows_dead += dead


def _resolve_by_readback(
    ledger: Ledger,
    settings: Settings,
    client: TargetClient,
    batch: Batch,
    result: PollResult,
    identify_limit: int,
    why: str,
) -> None:
    """A batch whose status is gone: read every row back, or re-queue it whole when too big."""
    if batch.row_count > identify_limit:
        requeued, dead = retry_whole_batch(
            ledger, settings, batch, f"status expired ({why}); too big to verify", state=EXPIRED
        )
        result.rows_requeued += requeued
        result.rows_dead += dead
        return
    table = read_manifest(batch)
    names = param_columns(table)
    rows = with_values(batch, table).to_pylist()
    checks = _readback(client, _identity_type(ledger, batch, settings), rows, names)
    failed: dict[str, str] = {}
    not_found: dict[str, str] = {}
    for ident, reason in checks.items():
        result.verified += 1
        if reason is None:
            result.verified_ok += 1
        elif reason == "profile not found at the service" and batch_is_v1(settings):
            not_found[ident] = "v1 does not create profiles: profile not found (status expired)"
        else:
            failed[ident] = f"status expired; read-back: {reason}"
    _settle(ledger, settings, batch, table, failed, not_found, result, None)
    result.completed.append(batch.id)
