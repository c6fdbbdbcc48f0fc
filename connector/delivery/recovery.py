"""Crash recovery: batches a dead process left claimed or half re-queued.

Right before the submit the batch gets ``submitted_at`` (its "send started" mark) while
still ``claimed``; after the answer it becomes ``submitted`` with the remote id and status
URL. A batch ``claimed`` for longer than the lease (the setting ``claim_lease_s``,
``CONNECTOR_CLAIM_LEASE_S``, longer than a submit's whole retry budget) belongs to a dead
process:

* no ``submitted_at``: it was never sent -> back to ``queued`` (same attempt), quota refunded;
* ``submitted_at`` set: it may have reached the service -> treated as an ambiguous submit:
  ``failed`` and its rows re-queued with ``attempt + 1``. If it had landed, that one batch is
  delivered twice with the same values (idempotent, bounded by ``max_attempts``).

So a batch is never lost and never submitted twice within one attempt. A batch is marked
``failed``/``stuck``/``expired`` before its rows are re-queued; a process that dies in between
leaves it in that state, and the next drain finishes it once it has been untouched for longer
than the lease (``resume_interrupted_retries``).
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update

from connector.delivery.claims import owner_id, return_to_queue, utcnow
from connector.delivery.requeue import retry_whole_batch
from connector.ledger import CLAIMED, EXPIRED, FAILED, STUCK, Batch, Ledger
from connector.settings import Settings

log = logging.getLogger(__name__)


def recover_stale_claims(ledger: Ledger, settings: Settings, key: str, now: dt.datetime) -> int:
    """Resolve batches claimed longer than the lease by a process that is gone (see module doc)."""
    cutoff = now - dt.timedelta(seconds=settings.claim_lease_s)
    with ledger.session() as session:
        stale = list(
            session.scalars(
                select(Batch).where(
                    Batch.destination_key == key, Batch.state == CLAIMED, Batch.claimed_at < cutoff
                )
            )
        )
    me = owner_id()
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
            return_to_queue(ledger, batch, settings.tz, "claim expired before sending")
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
    ledger: Ledger, settings: Settings, key: str, now: dt.datetime
) -> int:
    """Finish re-queueing batches a dead process left ``failed``/``stuck``/``expired``.

    ``retry_whole_batch`` marks the batch first and re-queues its rows after; a process killed
    in between left a batch that no state machine step picks up again, its rows in no queue.
    A batch in one of those states untouched for longer than the lease is taken over (a
    compare-and-set on ``claimed_by``) and its rows re-queued whole; what the dead process had
    already re-queued is recognised by the retry batches that carry it
    (``requeued_already``) and outcomes are upserts, so finishing twice does no harm.
    """
    cutoff = now - dt.timedelta(seconds=settings.claim_lease_s)
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
    me = owner_id()
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
                .values(claimed_by=me, updated_at=utcnow())
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
