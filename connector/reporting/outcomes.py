"""What a delivery status report holds besides its run records: the account's rows that did
not land, the rejected source rows of its mappings, the backlog and a sample of profiles as
sent.

``collect`` reads them from the ledger (and the latest completed batch's files); the run
records are ``connector.reporting.runs``; writing the report's files is
``connector.reporting.report_files``."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select

from connector.ledger import CLAIMED, COMPLETE, QUEUED, Batch, Ledger, Reject, RowOutcome
from connector.outbox import build as outbox_build
from connector.reporting.counts import NOT_LANDED
from connector.reporting.runs import RunRecord
from connector.storage import StorageError

PROFILE_SAMPLE = 20


@dataclass
class StatusReport:
    """One destination's report; the paths are set once ``report_files`` wrote the files
    (each a local path or an object URL, as ``storage`` names it).
    ``runs``: its delivery run records, newest first (``runs[0]`` is the latest run)."""

    destination: str
    generated_at: dt.datetime
    runs: list[RunRecord] = field(default_factory=list)
    failed_rows: list[dict[str, str]] = field(default_factory=list)
    queued_rows: int = 0
    daily_quota: int = 0
    rejected_rows: list[dict[str, str]] = field(default_factory=list)
    # the profile as sent: the first rows of the latest completed batch, every param
    profiles_from: str = ""  # that batch's key and the mappings that fed it
    profiles_sample: list[dict[str, str]] = field(default_factory=list)
    html_path: str | None = None
    csv_path: str | None = None
    rejects_csv_path: str | None = None

    @property
    def latest(self) -> RunRecord | None:
        return self.runs[0] if self.runs else None

    @property
    def backlog_days(self) -> int:
        """Days needed to drain what is queued now at the daily quota."""
        return math.ceil(self.queued_rows / self.daily_quota) if self.daily_quota else 0


def collect(
    ledger: Ledger,
    destination: str,
    daily_quota: int,
    mappings: Sequence[str] = (),
    runs: Sequence[RunRecord] = (),
) -> StatusReport:
    """The rows of one destination kind that did not land (every one, oldest first), the
    rejected source rows of ``mappings`` (the mappings that feed it), the rows queued now
    and a sample of profiles as sent; ``runs``: its run records, newest first."""
    report = StatusReport(
        destination, dt.datetime.now(dt.UTC), runs=list(runs), daily_quota=daily_quota
    )
    with ledger.session() as session:
        report.queued_rows = int(
            session.scalar(
                select(func.coalesce(func.sum(Batch.row_count), 0)).where(
                    Batch.destination == destination, Batch.state.in_((QUEUED, CLAIMED))
                )
            )
            or 0
        )
        outcome_rows = session.execute(
            select(RowOutcome, Batch)
            .join(Batch, Batch.id == RowOutcome.batch_id)
            .where(Batch.destination == destination, RowOutcome.status.in_(NOT_LANDED))
            .order_by(RowOutcome.id)
        ).all()
        for outcome, batch in outcome_rows:
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
            report.rejected_rows = [
                {
                    "mapping": reject.mapping,
                    "partition": reject.partition,
                    "source_ref": reject.source_ref,
                    "identity": reject.identity or "",
                    "param": reject.param or "",
                    "reason": reject.reason,
                    "raw": reject.raw or "",
                }
                for reject in rejects
            ]
        latest = session.scalars(
            select(Batch)
            .where(Batch.destination == destination, Batch.state == COMPLETE)
            .order_by(Batch.id.desc())
            .limit(1)
        ).first()
    _sample_profiles(report, latest)
    return report


def _sample_profiles(report: StatusReport, latest: Batch | None, n: int = PROFILE_SAMPLE) -> None:
    """One row per profile, as the latest completed batch carried it (whole: every param of
    every mapping that feeds the account)."""
    if latest is None:
        return
    try:
        rows = outbox_build.preview([latest], n * 10)
    except (OSError, ValueError, StorageError) as exc:  # files gone: the counts still hold
        report.profiles_from = f"{latest.batch_key}: not readable ({exc})"
        return
    report.profiles_from = f"batch {latest.id} ({latest.batch_key}), mappings {latest.mapping}"
    cells = [
        {k: "" if v is None else str(v) for k, v in row.items() if k != "_digest"} for row in rows
    ]
    # the most complete profiles first: they show every mapping's params side by side
    cells.sort(key=lambda row: -sum(1 for v in row.values() if v))
    report.profiles_sample = cells[:n]
