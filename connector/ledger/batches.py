"""Queries on batch records: register a batch, claim queued ones, count and list them.

Each takes a ``Ledger`` (and runs its own unit of work) or a ``Session`` (and runs inside the
caller's transaction).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connector.ledger.models import CLAIMED, IN_FLIGHT_STATES, QUEUED, Batch, utcnow
from connector.ledger.store import Ledger, unit_of_work

log = logging.getLogger(__name__)


def register_batch(target: Ledger | Session, **values: Any) -> Batch:
    """Insert one batch record (state ``queued`` unless given) and return it."""
    with unit_of_work(target, immediate=True) as session:
        batch = Batch(**values)
        session.add(batch)
        session.flush()
        session.expunge(batch)
    return batch


def claim_batches(
    target: Ledger | Session,
    destination_key: str,
    limit: int,
    owner: str,
    *,
    mapping: str | None = None,
    now: dt.datetime | None = None,
) -> list[Batch]:
    """Take up to ``limit`` queued batches of ``destination_key``, oldest first, for ``owner``.

    Two processes never get the same batch: SQLite serialises claimers with BEGIN IMMEDIATE
    (when given a ``Ledger``), PostgreSQL skips rows another claimer has locked
    (``FOR UPDATE SKIP LOCKED``), and the update itself is a compare-and-set on
    ``state = 'queued'`` so a batch taken in between is never taken twice, whatever the
    isolation of a caller's own session.
    """
    if limit <= 0:
        return []
    now = now or utcnow()
    with unit_of_work(target, immediate=True) as session:
        query = (
            select(Batch.id)
            .where(Batch.destination_key == destination_key, Batch.state == QUEUED)
            .order_by(Batch.created_at, Batch.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if mapping is not None:
            query = query.where(Batch.mapping == mapping)
        ids = list(session.scalars(query))
        claimed: list[int] = []
        for batch_id in ids:
            result = session.execute(
                update(Batch)
                .where(Batch.id == batch_id, Batch.state == QUEUED)
                .values(state=CLAIMED, claimed_by=owner, claimed_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(batch_id)
        if not claimed:
            return []
        batches = list(
            session.scalars(
                select(Batch)
                .where(Batch.id.in_(claimed))
                .order_by(Batch.created_at, Batch.id)
                .execution_options(populate_existing=True)
            )
        )
    log.info("%s claimed %d batch(es) of %s", owner, len(batches), destination_key)
    return batches


def counts_by_state(
    target: Ledger | Session,
    *,
    destination_key: str | None = None,
    mapping: str | None = None,
    partition: str | None = None,
) -> dict[str, dict[str, int]]:
    """``{state: {"batches": n, "rows": r, "bytes": b}}`` over the selected batches."""
    query = select(
        Batch.state,
        func.count(Batch.id),
        func.coalesce(func.sum(Batch.row_count), 0),
        func.coalesce(func.sum(Batch.byte_size), 0),
    ).group_by(Batch.state)
    if destination_key is not None:
        query = query.where(Batch.destination_key == destination_key)
    if mapping is not None:
        query = query.where(Batch.mapping == mapping)
    if partition is not None:
        query = query.where(Batch.partition == partition)
    with unit_of_work(target) as session:
        return {
            state: {"batches": int(n), "rows": int(rows), "bytes": int(size)}
            for state, n, rows, size in session.execute(query)
        }


def in_flight_manifests(
    target: Ledger | Session, destination_key: str
) -> list[tuple[int, str, str]]:
    """``(batch id, state, manifest path)`` of the batches whose rows are queued or on their way."""
    with unit_of_work(target) as session:
        rows = session.execute(
            select(Batch.id, Batch.state, Batch.manifest_path).where(
                Batch.destination_key == destination_key, Batch.state.in_(IN_FLIGHT_STATES)
            )
        )
        return [(int(i), str(s), str(p)) for i, s, p in rows]
