"""Small questions about the ledger's content that the schedules, sensors, checks and the
in-process sync ask: counts and the batches a sync wrote. Read-only, one session each."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import distinct, exists, func, select
from sqlalchemy.orm import Session, aliased

from connector.ledger import (
    DEAD,
    FINAL_STATES,
    Batch,
    Delivered,
    Ledger,
    Reject,
    RowOutcome,
)

# row outcomes of a settled batch whose rows did not land (dead: out of attempts; not_found:
# Target v1 creates no profile; failed and error: written by earlier releases)
NOT_LANDED = ("failed", "not_found", "error", "dead")


def rejected_rows(ledger: Ledger, mapping: str, partition: str) -> int:
    """Rows of the partition with at least one reject line (a row gets one per bad value)."""
    with ledger.session() as session:
        count = session.scalar(
            select(func.count(distinct(Reject.source_ref))).where(
                Reject.mapping == mapping, Reject.partition == partition
            )
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


def lineage(ledger: Ledger, roots: Collection[int], first_id: int) -> WrittenBatches:
    """The batches ``roots`` and their retries written from ``first_id`` on (a retry's retry
    too), oldest first, with their row outcomes."""
    with ledger.session() as session:
        batches: dict[int, Batch] = {
            b.id: b for b in session.scalars(select(Batch).where(Batch.id.in_(list(roots))))
        }
        for b in session.scalars(select(Batch).where(Batch.id >= first_id).order_by(Batch.id)):
            if b.parent_id in batches:  # parents come first
                batches[b.id] = b
        ordered = sorted(batches.values(), key=lambda b: b.id)
        return WrittenBatches(ordered, _outcomes(session, list(batches)))


def unfinished_batch_ids(ledger: Ledger) -> list[int]:
    """Batches whose rows are not final yet (queued, on their way, or being re-queued)."""
    with ledger.session() as session:
        return list(session.scalars(select(Batch.id).where(Batch.state.not_in(FINAL_STATES))))


def _outcomes(session: Session, batch_ids: list[int]) -> dict[tuple[int, str], int]:
    """(batch id, row status) -> rows, for ``batch_ids``."""
    return {
        (batch_id, status): n
        for batch_id, status, n in session.execute(
            select(RowOutcome.batch_id, RowOutcome.status, func.count())
            .where(RowOutcome.batch_id.in_(batch_ids))
            .group_by(RowOutcome.batch_id, RowOutcome.status)
        ).all()
    }


@dataclass(frozen=True)
class Undelivered:
    """One account's rows that did not land and whose profile was not confirmed since.

    ``rows``: row status (``dead``, ``not_found``, ...) -> profiles, each counted once, by
    its latest such row; ``dead_batches`` / ``dead_batch_rows``: batches dead whole with no
    row named (their manifest was unreadable), which no later row can be matched with."""

    rows: dict[str, int]
    dead_batches: int = 0
    dead_batch_rows: int = 0

    @property
    def total(self) -> int:
        return sum(self.rows.values()) + self.dead_batch_rows


def undelivered(ledger: Ledger, identity: str | None = None) -> dict[str, Undelivered]:
    """Account key -> its rows that did not land and were not confirmed since (a later batch
    of the account confirmed the profile); only accounts that have any. ``identity``: only
    that profile's rows."""
    later = aliased(RowOutcome)
    later_batch = aliased(Batch)
    confirmed_since = exists().where(
        Delivered.destination_key == Batch.destination_key,
        Delivered.identity == RowOutcome.identity,
        Delivered.batch_id > RowOutcome.batch_id,
    )
    failed_again = exists(
        select(later.id)
        .join(later_batch, later_batch.id == later.batch_id)
        .where(
            later.identity == RowOutcome.identity,
            later_batch.destination_key == Batch.destination_key,
            later.batch_id > RowOutcome.batch_id,
            later.status.in_(NOT_LANDED),
        )
    )
    query = (
        select(Batch.destination_key, RowOutcome.status, func.count())
        .join(Batch, Batch.id == RowOutcome.batch_id)
        .where(RowOutcome.status.in_(NOT_LANDED), ~confirmed_since, ~failed_again)
        .group_by(Batch.destination_key, RowOutcome.status)
    )
    whole = select(Batch.destination_key, func.count(), func.sum(Batch.row_count)).where(
        Batch.state == DEAD, ~exists().where(RowOutcome.batch_id == Batch.id)
    )
    if identity is not None:
        query = query.where(RowOutcome.identity == identity)
    rows: dict[str, dict[str, int]] = {}
    found: dict[str, Undelivered] = {}
    with ledger.session() as session:
        for key, status, n in session.execute(query):
            rows.setdefault(key, {})[status] = int(n)
        if identity is None:
            for key, n, total in session.execute(whole.group_by(Batch.destination_key)):
                found[key] = Undelivered(rows.pop(key, {}), int(n), int(total or 0))
    found.update({key: Undelivered(counts) for key, counts in rows.items()})
    return dict(sorted(found.items()))
