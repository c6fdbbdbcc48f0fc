"""What a delivery status report holds: row outcomes per partition day of one destination,
the rows that did not land, the rejected source rows and a sample of profiles as sent.

``collect`` reads them from the ledger (and the latest completed batch's files); writing the
report's HTML and CSV files is ``connector.reporting.report_files``."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from connector.ledger import (
    CLAIMED,
    COMPLETE,
    DEAD,
    EXPIRED,
    FAILED,
    QUEUED,
    STUCK,
    SUBMITTED,
    Batch,
    Ledger,
    Reject,
    RowOutcome,
)
from connector.outbox import build as outbox_build

PROFILE_SAMPLE = 20
OUTCOMES = ("delivered", "failed", "dead", "pending", "queued", "rejected")
# Row outcomes that mean "this row did not land" (requeued rows are counted in the retry batch).
NOT_LANDED = ("failed", "not_found", "error")


@dataclass
class StatusReport:
    """One destination's report; the paths are set once ``report_files`` wrote the files."""

    destination: str
    generated_at: dt.datetime
    per_day: dict[str, dict[str, int]] = field(default_factory=dict)
    failed_rows: list[dict[str, str]] = field(default_factory=list)
    queued_rows: int = 0
    daily_quota: int = 0
    rejected_rows: list[dict[str, str]] = field(default_factory=list)
    # the profile as sent: the first rows of the latest completed batch, every param
    profiles_from: str = ""  # that batch's key and the mappings that fed it
    profiles_sample: list[dict[str, str]] = field(default_factory=list)
    html_path: Path | None = None
    csv_path: Path | None = None
    rejects_csv_path: Path | None = None

    @property
    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(OUTCOMES, 0)
        for counts in self.per_day.values():
            for key, value in counts.items():
                totals[key] += value
        return totals

    @property
    def backlog_days(self) -> int:
        """Days needed to drain what is queued now at the daily quota."""
        return math.ceil(self.queued_rows / self.daily_quota) if self.daily_quota else 0


def collect(
    ledger: Ledger, destination: str, daily_quota: int, mappings: Sequence[str] = ()
) -> StatusReport:
    """Row outcomes per partition day for one destination kind; `mappings` feed it (their
    rejected source rows are counted too: a rejected row never reaches a batch)."""
    report = StatusReport(destination, dt.datetime.now(dt.UTC), daily_quota=daily_quota)
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    with ledger.session() as session:
        not_landed = dict(
            session.execute(
                select(RowOutcome.batch_id, func.count())
                .where(RowOutcome.status.in_((*NOT_LANDED, "dead", "requeued")))
                .group_by(RowOutcome.batch_id)
            ).all()
        )
        batches = session.scalars(select(Batch).where(Batch.destination == destination)).all()
        for batch in batches:
            day = batch.partition
            counts = per_day[day]
            if batch.state in (QUEUED, CLAIMED):
                counts["queued"] += batch.row_count
                report.queued_rows += batch.row_count
            elif batch.state == SUBMITTED:
                counts["pending"] += batch.row_count
            elif batch.state == COMPLETE:
                counts["delivered"] += batch.row_count - not_landed.get(batch.id, 0)
            elif batch.state == DEAD:
                counts["dead"] += batch.row_count
            elif batch.state in (FAILED, STUCK, EXPIRED):
                counts["failed"] += batch.row_count
        outcome_rows = session.execute(
            select(RowOutcome, Batch)
            .join(Batch, Batch.id == RowOutcome.batch_id)
            .where(Batch.destination == destination, RowOutcome.status.in_((*NOT_LANDED, "dead")))
            .order_by(RowOutcome.id)
        ).all()
        for outcome, batch in outcome_rows:
            per_day[batch.partition]["dead" if outcome.status == "dead" else "failed"] += (
                1 if batch.state == COMPLETE else 0
            )
            report.failed_rows.append(
                {
                    "identity": outcome.identity,
                    "status": outcome.status,
                    "reason": outcome.reason or "",
                    "source_ref": outcome.source_ref or "",
                    "mapping": batch.mapping,
                    "partition": batch.partition,
                    "batch": batch.batch_key,
                    "remote_batch_id": batch.remote_batch_id or "",
                    "attempt": str(batch.attempt),
                }
            )
        if mappings:
            rejects = session.scalars(
                select(Reject).where(Reject.mapping.in_(mappings)).order_by(Reject.id)
            ).all()
            seen: set[tuple[str, str, str]] = set()
            for reject in rejects:
                row_key = (reject.mapping, reject.partition, reject.source_ref)
                if row_key not in seen:  # one reject line per bad value; count rows once
                    seen.add(row_key)
                    per_day[reject.partition]["rejected"] += 1
                report.rejected_rows.append(
                    {
                        "mapping": reject.mapping,
                        "partition": reject.partition,
                        "source_ref": reject.source_ref,
                        "identity": reject.identity or "",
                        "param": reject.param or "",
                        "reason": reject.reason,
                        "raw": reject.raw or "",
                    }
                )
    report.per_day = dict(sorted(per_day.items()))
    _sample_profiles(report, [b for b in batches if b.state == COMPLETE])
    return report


def _sample_profiles(
    report: StatusReport, complete: Sequence[Batch], n: int = PROFILE_SAMPLE
) -> None:
    """One row per profile, as the latest completed batch carried it (whole: every param of
    every mapping that feeds the account)."""
    if not complete:
        return
    latest = max(complete, key=lambda b: b.id)
    try:
        rows = outbox_build.preview([latest], n * 10)
    except (OSError, ValueError) as exc:  # files cleaned up or unreadable: the counts still hold
        report.profiles_from = f"{latest.batch_key}: not readable ({exc})"
        return
    report.profiles_from = f"batch {latest.id} ({latest.batch_key}), mappings {latest.mapping}"
    cells = [
        {k: "" if v is None else str(v) for k, v in row.items() if k != "_digest"} for row in rows
    ]
    # the most complete profiles first: they show every mapping's params side by side
    cells.sort(key=lambda row: -sum(1 for v in row.values() if v))
    report.profiles_sample = cells[:n]
