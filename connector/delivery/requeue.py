"""Rows that did not land go out again as the profiles' current rows, or die with a reason.

A failed, stuck or unverifiable row is re-queued as ``attempt + 1`` (a child batch of the
one that failed), written from the profile stores as the profile stands now
(``outbox.build.current_rows``): a retry never sends a stale copy. A row whose profile a
newer batch of the account already carries is not re-sent (``superseded``); a row out of
attempts is ``dead``. Outcomes are recorded per row (``RowOutcome``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connector.columns import IDENTITY, SOURCE_REF
from connector.delivery.claims import utcnow
from connector.ledger import DEAD, SUPERSEDED, Batch, Ledger, RowOutcome
from connector.outbox import build as outbox_build
from connector.outbox import manifests
from connector.outbox.files import BatchFileMissing, OutboxFile
from connector.settings import Settings
from connector.storage import ObjectMissing, StorageError

log = logging.getLogger(__name__)

# Row outcome statuses written here and by the poll
ROW_FAILED, ROW_NOT_FOUND, ROW_REQUEUED, ROW_DEAD = "failed", "not_found", "requeued", "dead"
ROW_SUPERSEDED = "superseded"


def _requeue_current(
    ledger: Ledger, settings: Settings, batch: Batch, identities: list[str], *, attempt: int
) -> list[Batch]:
    """Queue the profiles' current full rows (never the failed row's copy) as ``attempt``."""
    acct, rows = outbox_build.current_rows(settings, ledger, batch.destination, identities)
    return outbox_build.write_rows(
        settings, ledger, acct, rows, partition=batch.partition, attempt=attempt, parent_id=batch.id
    )


def write_outcomes(
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


def newer_batches_with(
    ledger: Ledger, batch: Batch, identities: list[str], cache_dir: Path | None = None
) -> dict[str, str]:
    """identity -> key of a newer batch of the same account that carries it.

    Newer means written later (a higher id) outside ``batch``'s own retry lineage: its row
    holds the profile's values as they stood then, which are at least as current as
    ``batch``'s. So a read-back that differs from ``batch`` is no sign of loss, and re-sending
    ``batch``'s rows would tell the destination nothing the newer batch does not.
    Manifests in an object store are read through ``cache_dir``.
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
    return _carried_by([b for b in candidates if b.id not in lineage], identities, cache_dir)


def _carried_by(
    batches: list[Batch], identities: list[str], cache_dir: Path | None
) -> dict[str, str]:
    """identity -> key of the first of ``batches`` whose manifest lists it (a manifest that
    cannot be read is left out)."""
    wanted = pa.array(identities, pa.string())
    found: dict[str, str] = {}
    for other in batches:
        if len(found) == len(identities):
            break
        try:
            table = manifests.read(other.manifest_path, cache_dir, columns=[IDENTITY])
        except (StorageError, OSError, pa.ArrowException):
            continue
        ids = table.column(IDENTITY)
        for ident in pc.filter(
            wanted, pc.is_in(wanted, value_set=ids.combine_chunks())
        ).to_pylist():
            found.setdefault(ident, other.batch_key)
    return found


def requeue_or_dead(
    ledger: Ledger,
    settings: Settings,
    batch: Batch,
    rows: pa.Table,
    reasons: dict[str, str],
) -> tuple[int, int]:
    """Re-queue ``rows`` of ``batch`` as attempt+1, or dead-letter them when attempts are used up.

    Rows whose profile a newer batch already carries are not re-sent (it holds values at
    least as current): their outcome is ``superseded``, naming the newer batch.

    Returns (requeued, dead). Outcomes are written after the new batch is registered; a crash
    in between leaves a retry batch (a child of ``batch``) carrying rows without their
    outcome. A repeat finds them there and records them re-queued instead of writing them
    again: the profiles' current rows may differ from the first time (a day merged since), so
    ``write_batches``'s content check alone would queue them twice.
    """
    if rows.num_rows == 0:
        return 0, 0
    carried = requeued_already(ledger, batch, rows.column(IDENTITY).to_pylist(), settings.cache_dir)
    rows = _record_named(
        ledger,
        batch,
        rows,
        carried,
        ROW_REQUEUED,
        lambda i: f"{reasons.get(i, 'not confirmed')} (in {carried[i]})",
    )
    if rows.num_rows == 0:
        return len(carried), 0
    requeued, dead = _requeue_or_dead(ledger, settings, batch, rows, reasons)
    return requeued + len(carried), dead


def _record_named(
    ledger: Ledger,
    batch: Batch,
    rows: pa.Table,
    named: dict[str, str],
    status: str,
    reason: Callable[[str], str],
) -> pa.Table:
    """Write ``status`` outcomes for the rows whose identity ``named`` holds; the others."""
    if not named:
        return rows
    hit = pc.is_in(rows.column(IDENTITY), pa.array(list(named), pa.string()))
    done = rows.filter(hit)
    with ledger.session(immediate=True) as session:
        write_outcomes(
            session,
            batch.id,
            [
                (i, r, status, reason(i))
                for i, r in zip(done.column(IDENTITY).to_pylist(), _refs(done), strict=True)
            ],
        )
    return rows.filter(pc.invert(hit))


def requeued_already(
    ledger: Ledger, batch: Batch, identities: list[str], cache_dir: Path | None = None
) -> dict[str, str]:
    """identity -> key of a retry batch of ``batch`` (its child) that already carries it."""
    with ledger.session() as session:
        children = list(
            session.scalars(select(Batch).where(Batch.parent_id == batch.id).order_by(Batch.id))
        )
    return _carried_by(children, identities, cache_dir) if identities else {}


def _requeue_or_dead(
    ledger: Ledger,
    settings: Settings,
    batch: Batch,
    rows: pa.Table,
    reasons: dict[str, str],
) -> tuple[int, int]:
    newer = newer_batches_with(ledger, batch, rows.column(IDENTITY).to_pylist(), settings.cache_dir)
    rows = _record_named(
        ledger,
        batch,
        rows,
        newer,
        ROW_SUPERSEDED,
        lambda i: (
            f"{reasons.get(i, 'not confirmed')}; not re-sent: newer values went in batch {newer[i]}"
        ),
    )
    if rows.num_rows == 0:
        return 0, 0
    dead = batch.attempt >= settings.max_attempts
    why_dead = f"attempts exhausted ({batch.attempt}/{settings.max_attempts}): "
    if not dead:
        # the profiles as they stand now: values learnt since the failed row go too
        _requeue_current(
            ledger, settings, batch, rows.column(IDENTITY).to_pylist(), attempt=batch.attempt + 1
        )
    ids = rows.column(IDENTITY).to_pylist()
    refs = _refs(rows)
    status = ROW_DEAD if dead else ROW_REQUEUED
    with ledger.session(immediate=True) as session:
        write_outcomes(
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
            .values(state=state, message=reason[:2000], updated_at=utcnow())
        )
    try:
        table = OutboxFile.of(batch, settings.cache_dir).manifest()
    except ObjectMissing as exc:
        # the run fails naming it; the batch keeps ``state`` and the next drain, once the
        # lease has passed, tries again (``resume_interrupted_retries``): nothing is lost
        raise BatchFileMissing(int(batch.id), str(batch.batch_key), exc.url) from None
    except (StorageError, OSError, pa.ArrowException) as exc:
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
            .values(state=DEAD if dead else SUPERSEDED, finished_at=utcnow())
        )
    return requeued, dead
