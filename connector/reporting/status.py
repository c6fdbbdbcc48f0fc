"""What ``connector status`` shows: batches by state, the quota used and left in the rolling
24 hours, the backlog projection and the rows that did not land per destination account; one
batch in detail. Each view knows its exit code (``connector.exit_codes``): what a monitor
calling ``connector status`` learns from the ledger as it stands."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select

from connector import ledger as ledger_mod
from connector import planner
from connector.delivery.claims import quota_used_24h
from connector.exit_codes import ExitCode, worst
from connector.ledger import (
    CLAIMED,
    DEAD,
    FINAL_STATES,
    QUEUED,
    SUBMITTED,
    Batch,
    Ledger,
    QuotaUse,
    RowOutcome,
)
from connector.reporting.queries import NOT_LANDED, Undelivered, undelivered
from connector.settings import Settings


@dataclass
class DestinationStatus:
    """One account's figures; the quota is rows per rolling 24 hours (``delivery.claims``)."""

    destination_key: str
    by_state: dict[str, dict[str, int]]
    quota_used: int  # rows charged in the 24 hours before the view's moment
    quota_left: int  # what may still be claimed now: daily_quota - quota_used
    calls_today: int  # submit calls started on the view's local day
    queued_rows: int
    projected_drain_date: dt.date | None
    # rows that did not land and whose profile was not confirmed since
    undelivered: Undelivered = field(default_factory=lambda: Undelivered({}))

    @property
    def not_final_rows(self) -> int:
        """Rows of batches queued, on their way, or being re-queued."""
        return sum(c["rows"] for s, c in self.by_state.items() if s not in FINAL_STATES)


@dataclass
class StatusView:
    day: dt.date
    destinations: list[DestinationStatus] = field(default_factory=list)
    open_batches: list[Batch] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        """``NOT_FINAL`` when work is queued or open, ``ROWS_FAILED`` when rows did not land
        and were not confirmed since, else ``OK`` (the most serious of them)."""
        found = [ExitCode.OK]
        if any(d.not_final_rows for d in self.destinations):
            found.append(ExitCode.NOT_FINAL)
        if any(d.undelivered.total for d in self.destinations):
            found.append(ExitCode.ROWS_FAILED)
        return worst(*found)


def status_view(settings: Settings, ledger: Ledger, now: dt.datetime | None = None) -> StatusView:
    """Counts by state, quota used/left in the last 24 hours (the quota is per rolling 24
    hours), calls on the local day and the backlog projection per destination."""
    now = now or dt.datetime.now(dt.UTC)
    day = planner.quota_day(now, settings.tz)
    view = StatusView(day=day)
    not_landed = undelivered(ledger)
    with ledger.session() as session:
        keys = sorted(session.scalars(select(Batch.destination_key).distinct()))
        for key in keys:
            by_state = ledger_mod.counts_by_state(session, destination_key=key)
            calls = session.scalar(
                select(QuotaUse.calls).where(QuotaUse.destination_key == key, QuotaUse.day == day)
            )
            used = quota_used_24h(session, key, now)
            largest = session.scalar(
                select(func.max(Batch.row_count)).where(
                    Batch.destination_key == key, Batch.state == QUEUED
                )
            )
            queued_rows = by_state.get(QUEUED, {}).get("rows", 0)
            view.destinations.append(
                DestinationStatus(
                    destination_key=key,
                    by_state=by_state,
                    quota_used=used,
                    quota_left=max(settings.daily_quota - used, 0),
                    calls_today=int(calls or 0),
                    queued_rows=queued_rows,
                    projected_drain_date=planner.project_drain_date(
                        queued_rows,
                        daily_quota=settings.daily_quota,
                        used_today=used,
                        today=day,
                        largest_batch=int(largest or 0),
                    ),
                    undelivered=not_landed.get(key, Undelivered({})),
                )
            )
        view.open_batches = list(
            session.scalars(
                select(Batch)
                .where(Batch.state.in_((CLAIMED, SUBMITTED)))
                .order_by(Batch.submitted_at, Batch.id)
            )
        )
    return view


def batch_detail(
    ledger: Ledger, batch_id: int
) -> tuple[Batch | None, dict[str, int], list[RowOutcome]]:
    """One batch, its row-outcome counts by status and its first outcomes."""
    with ledger.session() as session:
        batch = session.get(Batch, batch_id)
        counts = dict(
            session.execute(
                select(RowOutcome.status, func.count())
                .where(RowOutcome.batch_id == batch_id)
                .group_by(RowOutcome.status)
            ).all()
        )
        outcomes = list(
            session.scalars(
                select(RowOutcome)
                .where(RowOutcome.batch_id == batch_id)
                .order_by(RowOutcome.id)
                .limit(50)
            )
        )
    return batch, {str(k): int(v) for k, v in counts.items()}, outcomes


def batch_exit_code(batch: Batch, counts: dict[str, int]) -> ExitCode:
    """One batch's code: ``NOT_FINAL`` while its rows are queued, on their way or being
    re-queued; ``ROWS_FAILED`` when it died or some of its rows did not land; else ``OK``
    (a superseded batch's rows went out again: their retry tells their fate)."""
    if batch.state not in FINAL_STATES:
        return ExitCode.NOT_FINAL
    if batch.state == DEAD or any(counts.get(s) for s in NOT_LANDED):
        return ExitCode.ROWS_FAILED
    return ExitCode.OK
