"""Small questions about the ledger's content that the schedules, sensors, checks and the
in-process sync ask: counts and the batches a sync wrote. Read-only, one session each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import distinct, func, select

from connector.ledger import OPEN_STATES, Batch, Ledger, Reject, RowOutcome


def rejected_rows(ledger: Ledger, mapping: str, partition: str) -> int:
    """Rows of the partition with at least one reject line (a row gets one per bad value)."""
    with ledger.session() as session:
        count = session.scalar(
            select(func.count(distinct(Reject.source_ref))).where(
                Reject.mapping == mapping, Reject.partition == partition
            )
        )
    return int(count or 0)


def open_batch_count(ledger: Ledger) -> int:
    """Batches submitted (or being submitted) whose final status is not known yet."""
    with ledger.session() as session:
        count = session.scalar(
            select(func.count()).select_from(Batch).where(Batch.state.in_(OPEN_STATES))
        )
    return int(count or 0)


def next_batch_id(ledger: Ledger) -> int:
    """The id the next batch registered will have at least: batches from it on are new."""
    with ledger.session() as session:
        return int(session.scalar(select(func.max(Batch.id))) or 0) + 1


@dataclass(frozen=True)
class WrittenBatches:
    """The batches from an id on, oldest first, and their row outcomes counted by status."""

    batches: Sequence[Batch]
    outcomes: dict[tuple[int, str], int]  # (batch id, row status) -> rows


def batches_since(ledger: Ledger, first_id: int) -> WrittenBatches:
    """Batches with ``id >= first_id`` whose retry chain starts at or after ``first_id`` (a
    retry of an older batch and its own retries are left out), with their row outcomes."""
    with ledger.session() as session:
        batches: dict[int, Batch] = {}
        for b in session.scalars(select(Batch).where(Batch.id >= first_id).order_by(Batch.id)):
            if b.parent_id is None or b.parent_id in batches:  # parents come first
                batches[b.id] = b
        outcomes: dict[tuple[int, str], int] = {
            (batch_id, status): n
            for batch_id, status, n in session.execute(
                select(RowOutcome.batch_id, RowOutcome.status, func.count())
                .where(RowOutcome.batch_id.in_(list(batches)))
                .group_by(RowOutcome.batch_id, RowOutcome.status)
            ).all()
        }
    return WrittenBatches(list(batches.values()), outcomes)
