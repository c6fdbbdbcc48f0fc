"""What ``connector status`` shows: batches by state, the quota used and left in the rolling
24 hours, and the backlog projection per destination account; one batch in detail."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select

from connector import ledger as ledger_mod
from connector import planner
from connector.delivery.claims import quota_used_24h
from connector.ledger import (
    CLAIMED,
    QUEUED,
    SUBMITTED,
    Batch,
    Ledger,
    QuotaUse,
    RowOutcome,
)
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


@dataclass
class StatusView:
    day: dt.date
    destinations: list[DestinationStatus] = field(default_factory=list)
    open_batches: list[Batch] = field(default_factory=list)


def status_view(settings: Settings, ledger: Ledger, now: dt.datetime | None = None) -> StatusView:
    """Counts by state, quota used/left in the last 24 hours (the quota is per rolling 24
    hours), calls on the local day and the backlog projection per destination."""
    now = now or dt.datetime.now(dt.UTC)
    day = planner.quota_day(now, settings.tz)
    view = StatusView(day=day)
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
