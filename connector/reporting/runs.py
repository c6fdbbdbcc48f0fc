"""The record of each delivery run at an account, kept: the status report's history.

A delivery run ends with its status report (the ``D/status_report`` asset), which calls
:func:`record_run`. A record counts what happened at the account since the account's
previous record (the run's *window*, ``(previous ended_at, ended_at]``):

- per mapping that feeds the account: ``counts.MAPPING_COUNTS`` of the stage runs that
  finished in the window (a partition run twice in the window counts once, as it last ran:
  its stages replace their earlier counts);
- per account: what the outbox builds of the window found (``changed`` profiles,
  ``already_sent`` of them, and of the rows written, ``added``: the profile's first row at
  the account, and ``updated``) and ``counts.DELIVERY_COUNTS`` of its rows. Those are the
  account's totals now (every batch, counted by ``counts.delivery_counts``) less the
  previous record's totals, so the history adds up to what the ledger holds, whatever ran
  in between (a drain, a poll, a crash);
- the reasons of the window, grouped: source values rejected (per mapping, param and
  reason) and rows that did not land or went again (per outcome and reason), each with its
  count and up to ``EXAMPLES`` examples.

An account's first record counts everything before it. The records live in the ledger
(``delivery_runs``), not in a file beside the report: the ledger is the state of record,
shared by every process and machine that runs a report (PostgreSQL in production), and it
writes a record and reads the one before it in one transaction. One status report runs at
a time per account (its Dagster pool), so two records never count the same window.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import ColumnElement, Select, delete, func, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from connector.ledger import (
    DEAD,
    Batch,
    DeliveryRun,
    Ledger,
    OutboxBuild,
    Reject,
    RowOutcome,
    StageRun,
    utcnow,
)
from connector.reporting.counts import (
    DELIVERY_COUNTS,
    MAPPING_COUNTS,
    OUTCOME_LABELS,
    add_stage,
    delivery_counts,
)

# what the outbox builds of a run found, then what became of the account's rows
BUILD_COUNTS = ("changed", "already_sent", "added", "updated")
ACCOUNT_COUNTS = (*BUILD_COUNTS, *DELIVERY_COUNTS)
HISTORY_RUNS = 90  # records a report shows
REASON_GROUPS = 50  # groups of reasons a record keeps, per kind (the most frequent)
EXAMPLES = 3
REJECTED = "rejected"

Column = ColumnElement[Any] | InstrumentedAttribute[Any]  # a column or expression of a query


@dataclass(frozen=True)
class Reason:
    """One reason of a run, grouped: ``kind`` is ``rejected`` (a source value) or the row
    outcome's status; ``mapping`` and ``param`` name where a rejected value came from."""

    kind: str
    reason: str
    count: int
    examples: tuple[str, ...] = ()
    mapping: str = ""
    param: str = ""

    @property
    def label(self) -> str:
        """The kind in the report's words."""
        if self.kind == REJECTED:
            return "source row rejected"
        return OUTCOME_LABELS.get(self.kind, self.kind)


@dataclass
class RunRecord:
    """One delivery run at one account (see the module doc for every figure)."""

    destination: str
    destination_key: str
    run_id: str
    started_at: dt.datetime
    ended_at: dt.datetime
    mappings: dict[str, dict[str, int]] = field(default_factory=dict)
    account: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACCOUNT_COUNTS, 0))
    reasons: list[Reason] = field(default_factory=list)
    reasons_left_off: int = 0  # groups beyond the REASON_GROUPS kept per kind
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DELIVERY_COUNTS, 0))

    @property
    def duration_s(self) -> float:
        return max((self.ended_at - self.started_at).total_seconds(), 0.0)

    @property
    def read(self) -> int:
        return sum(m["read"] for m in self.mappings.values())

    @property
    def rejected(self) -> int:
        return sum(m["rejected"] for m in self.mappings.values())

    @property
    def quiet(self) -> bool:
        """Nothing happened in the window: no row read, built, sent or settled, no reason."""
        return (
            not any(any(counts.values()) for counts in self.mappings.values())
            and not any(self.account.values())
            and not self.reasons
        )

    def figures(self) -> dict[str, Any]:
        """What the ledger row keeps in ``figures_json``."""
        return {
            "mappings": self.mappings,
            "account": self.account,
            "totals": self.totals,
            "reasons": [asdict(r) for r in self.reasons],
            "reasons_left_off": self.reasons_left_off,
        }

    @classmethod
    def of(cls, row: DeliveryRun) -> RunRecord:
        """The record a ledger row holds (figures a later release added read as 0)."""
        data = json.loads(row.figures_json or "{}")
        return cls(
            destination=row.destination,
            destination_key=row.destination_key,
            run_id=row.run_id,
            started_at=_utc(row.started_at),
            ended_at=_utc(row.ended_at),
            mappings={
                name: {k: int(c.get(k, 0)) for k in MAPPING_COUNTS}
                for name, c in data.get("mappings", {}).items()
            },
            account={k: int(data.get("account", {}).get(k, 0)) for k in ACCOUNT_COUNTS},
            totals={k: int(data.get("totals", {}).get(k, 0)) for k in DELIVERY_COUNTS},
            reasons=[
                Reason(**{**r, "examples": tuple(r.get("examples", ()))})
                for r in data.get("reasons", [])
            ],
            reasons_left_off=int(data.get("reasons_left_off", 0)),
        )


def run_url(dagster_url: str, run_id: str) -> str:
    """The run's page in the Dagster UI at ``dagster_url`` (any user:password in it is left
    out: the link is written into reports and metadata)."""
    parts = urlsplit(dagster_url.rstrip("/"))
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, f"{parts.path}/runs/{run_id}", "", ""))


def _utc(value: dt.datetime) -> dt.datetime:
    """A ledger timestamp as an aware UTC datetime (SQLite hands them back naive)."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _window(
    column: InstrumentedAttribute[dt.datetime], since: dt.datetime | None, until: dt.datetime
) -> list[ColumnElement[bool]]:
    return [column <= until] + ([column > since] if since is not None else [])


def record_run(
    ledger: Ledger,
    *,
    destination: str,
    destination_key: str,
    mappings: Sequence[str],
    run_id: str,
    started_at: dt.datetime | None = None,
    ended_at: dt.datetime | None = None,
) -> RunRecord:
    """Count the run's window and keep the record (a record of the same run and account is
    replaced: a re-executed report counts against the record before it). A quiet record
    (:attr:`RunRecord.quiet`) after an earlier one is returned but not kept: its window
    stays open for the next run."""
    ended = _utc(ended_at or utcnow())
    with ledger.session(immediate=True) as session:
        session.execute(
            delete(DeliveryRun).where(
                DeliveryRun.run_id == run_id, DeliveryRun.destination_key == destination_key
            )
        )
        previous = session.scalars(
            select(DeliveryRun)
            .where(DeliveryRun.destination_key == destination_key)
            .order_by(DeliveryRun.ended_at.desc(), DeliveryRun.id.desc())
            .limit(1)
        ).first()
        before = RunRecord.of(previous) if previous is not None else None
        since = before.ended_at if before is not None else None
        record = RunRecord(
            destination=destination,
            destination_key=destination_key,
            run_id=run_id,
            started_at=_utc(started_at or ended),
            ended_at=ended,
        )
        record.mappings = _mapping_counts(session, mappings, since, ended)
        record.account.update(_build_counts(session, destination_key, since, ended))
        record.totals = _delivery_totals(session, destination_key)
        for key in DELIVERY_COUNTS:
            record.account[key] = record.totals[key] - (before.totals[key] if before else 0)
        rejects, rejects_left = _reject_reasons(session, mappings, since, ended)
        outcomes, outcomes_left = _outcome_reasons(session, destination_key, since, ended)
        record.reasons = rejects + outcomes + _dead_batches(session, destination_key, since, ended)
        record.reasons_left_off = rejects_left + outcomes_left
        if before is not None and record.quiet:
            # a status poll that found nothing new: the history keeps runs that did something
            # (the poll sensor runs every interval while batches are open)
            return record
        session.add(
            DeliveryRun(
                destination=destination,
                destination_key=destination_key,
                run_id=run_id,
                started_at=record.started_at,
                ended_at=ended,
                figures_json=json.dumps(record.figures(), sort_keys=True),
            )
        )
    return record


def run_history(ledger: Ledger, destination: str, limit: int = HISTORY_RUNS) -> list[RunRecord]:
    """The latest ``limit`` records of ``destination`` (target | copernica), newest first."""
    with ledger.session() as session:
        rows = session.scalars(
            select(DeliveryRun)
            .where(DeliveryRun.destination == destination)
            .order_by(DeliveryRun.ended_at.desc(), DeliveryRun.id.desc())
            .limit(limit)
        ).all()
        return [RunRecord.of(row) for row in rows]


def _mapping_counts(
    session: Session, mappings: Sequence[str], since: dt.datetime | None, until: dt.datetime
) -> dict[str, dict[str, int]]:
    counts = {name: dict.fromkeys(MAPPING_COUNTS, 0) for name in sorted(mappings)}
    stages = session.scalars(
        select(StageRun).where(
            StageRun.mapping.in_(list(mappings)), *_window(StageRun.finished_at, since, until)
        )
    )
    for stage in stages:
        add_stage(
            counts[stage.mapping], stage.stage, json.loads(stage.stats_json).get("counts", {})
        )
    return counts


def _build_counts(
    session: Session, key: str, since: dt.datetime | None, until: dt.datetime
) -> dict[str, int]:
    changed, already_sent, added, rows = session.execute(
        select(
            func.coalesce(func.sum(OutboxBuild.changed), 0),
            func.coalesce(func.sum(OutboxBuild.already_sent), 0),
            func.coalesce(func.sum(OutboxBuild.added), 0),
            func.coalesce(func.sum(OutboxBuild.rows), 0),
        ).where(OutboxBuild.destination_key == key, *_window(OutboxBuild.built_at, since, until))
    ).one()
    return {
        "changed": int(changed),
        "already_sent": int(already_sent),
        "added": int(added),
        "updated": int(rows) - int(added),
    }


def _delivery_totals(session: Session, key: str) -> dict[str, int]:
    """``DELIVERY_COUNTS`` of every batch the account ever had."""
    batches = list(
        session.scalars(select(Batch).where(Batch.destination_key == key).order_by(Batch.id))
    )
    outcomes = {
        (batch_id, status): int(n)
        for batch_id, status, n in session.execute(
            select(RowOutcome.batch_id, RowOutcome.status, func.count())
            .join(Batch, Batch.id == RowOutcome.batch_id)
            .where(Batch.destination_key == key)
            .group_by(RowOutcome.batch_id, RowOutcome.status)
        )
    }
    return delivery_counts(batches, outcomes, known={b.id: b for b in batches})


def _grouped(
    session: Session,
    rows: Select[Any],
    group: Sequence[Column],
    order: Column,
    example: Column,
) -> tuple[list[tuple[tuple[Any, ...], int, list[str]]], int]:
    """The ``REASON_GROUPS`` largest groups of ``rows`` by ``group`` (the largest first),
    each with its row count and the ``example`` of its first ``EXAMPLES`` rows in ``order``;
    and how many smaller groups were left off."""
    counted = rows.with_only_columns(*group, func.count()).group_by(*group)
    top = session.execute(
        counted.order_by(func.count().desc(), *group).limit(REASON_GROUPS + 1)
    ).all()
    kept = [(tuple(row[:-1]), int(row[-1])) for row in top[:REASON_GROUPS]]
    left = 0
    if len(top) > REASON_GROUPS:
        groups = session.scalar(select(func.count()).select_from(counted.subquery()))
        left = int(groups or 0) - REASON_GROUPS
    examples: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    if kept:
        rank = func.row_number().over(partition_by=list(group), order_by=order).label("rank")
        picked = (
            rows.with_only_columns(*group, example.label("example"), rank)
            .where(tuple_(*group).in_([key for key, _ in kept]))
            .subquery()
        )
        for *key, value, _ in session.execute(
            select(picked).where(picked.c.rank <= EXAMPLES).order_by(picked.c.rank)
        ):
            examples[tuple(key)].append(str(value))
    return [(key, n, examples[key]) for key, n in kept], left


def _reject_reasons(
    session: Session, mappings: Sequence[str], since: dt.datetime | None, until: dt.datetime
) -> tuple[list[Reason], int]:
    """Problems found in the source rows of the window, by (mapping, param, reason); an
    example is the row's identity and source reference (the reference alone without one)."""
    rows = select(Reject).where(
        Reject.mapping.in_(list(mappings)), *_window(Reject.created_at, since, until)
    )
    example = func.coalesce(
        func.nullif(Reject.identity, "") + " (" + Reject.source_ref + ")", Reject.source_ref
    )
    group = (Reject.mapping, func.coalesce(Reject.param, ""), Reject.reason)
    found, left = _grouped(session, rows, group, Reject.id, example)
    return [
        Reason(REJECTED, reason, n, tuple(examples), mapping=mapping, param=param)
        for (mapping, param, reason), n, examples in found
    ], left


def _outcome_reasons(
    session: Session, key: str, since: dt.datetime | None, until: dt.datetime
) -> tuple[list[Reason], int]:
    """Rows of the window that did not land or went out again, by (status, reason); an
    example is the row's identity."""
    rows = (
        select(RowOutcome)
        .join(Batch, Batch.id == RowOutcome.batch_id)
        .where(Batch.destination_key == key, *_window(RowOutcome.created_at, since, until))
    )
    group = (RowOutcome.status, func.coalesce(RowOutcome.reason, ""))
    found, left = _grouped(session, rows, group, RowOutcome.id, RowOutcome.identity)
    return [
        Reason(status, reason, n, tuple(examples)) for (status, reason), n, examples in found
    ], left


def _dead_batches(
    session: Session, key: str, since: dt.datetime | None, until: dt.datetime
) -> list[Reason]:
    """Batches that died whole in the window without naming their rows (their files could
    not be read): one reason each, the batch as its example."""
    named = select(RowOutcome.batch_id).where(RowOutcome.batch_id == Batch.id).exists()
    batches = session.scalars(
        select(Batch).where(
            Batch.destination_key == key,
            Batch.state == DEAD,
            ~named,
            *_window(Batch.updated_at, since, until),
        )
    )
    return [
        Reason(
            kind=DEAD,
            reason=batch.message or "batch dead",
            count=batch.row_count,
            examples=(f"batch {batch.batch_key}",),
        )
        for batch in batches
    ]
