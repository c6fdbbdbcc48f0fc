"""What one ``drain`` or ``poll`` did: counts for logs, the CLI and Dagster metadata."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DrainResult:
    """What one ``drain`` did and what still waits."""

    destination: str
    destination_key: str
    submitted: list[int] = field(default_factory=list)
    rows_submitted: int = 0
    returned_to_queue: list[int] = field(default_factory=list)
    ambiguous: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    recovered: int = 0
    # rows of batches settled as they were submitted (Copernica answers at once): ``poll``
    # has nothing left to follow for them, so the drain reports their outcomes
    rows_confirmed: int = 0
    rows_failed: int = 0
    rows_not_found: int = 0
    rows_requeued: int = 0
    rows_dead: int = 0
    verified: int = 0
    verified_ok: int = 0
    notes: list[str] = field(default_factory=list)  # what a destination warned of
    in_window: bool = True
    next_window: dt.datetime | None = None
    stopped_because: str = "empty"  # empty|window|quota|in_flight|unavailable|auth|overlap
    stop_message: str = ""  # what the destination said when it stopped the drain (no secret)
    quota_used_today: int = 0
    quota_left_today: int = 0
    queued_batches: int = 0
    queued_rows: int = 0
    projected_drain_date: dt.date | None = None

    @property
    def settled_on_submit(self) -> bool:
        """Whether some submitted batch was settled at once (no status to poll)."""
        return bool(self.rows_confirmed or self.rows_failed or self.rows_not_found)

    def summary(self) -> str:
        text = f"submitted {len(self.submitted)} batch(es), {self.rows_submitted} rows"
        if self.settled_on_submit:
            text += f" (settled on submit: {_rows_settled(self)})"
        text += (
            f"; stopped: {self.stopped_because}; {self.queued_batches} batch(es) / "
            f"{self.queued_rows} rows still queued; quota left today {self.quota_left_today}"
        )
        if self.projected_drain_date:
            text += f"; backlog drained by {self.projected_drain_date.isoformat()}"
        if not self.in_window and self.next_window:
            text += f"; next window {self.next_window.isoformat()}"
        return text

    def metadata(self) -> dict[str, Any]:
        return {
            "batches_submitted": len(self.submitted),
            "rows_submitted": self.rows_submitted,
            "batches_ambiguous": len(self.ambiguous),
            "batches_rejected": len(self.rejected),
            "batches_returned_to_queue": len(self.returned_to_queue),
            "stale_claims_recovered": self.recovered,
            "rows_confirmed_on_submit": self.rows_confirmed,
            "rows_failed_on_submit": self.rows_failed,
            "stopped_because": self.stopped_because,
            "stop_message": self.stop_message[:500],
            "in_window": self.in_window,
            "next_window": self.next_window.isoformat() if self.next_window else "",
            "quota_used_today": self.quota_used_today,
            "quota_left_today": self.quota_left_today,
            "queued_batches": self.queued_batches,
            "queued_rows": self.queued_rows,
            "projected_drain_date": (
                self.projected_drain_date.isoformat() if self.projected_drain_date else ""
            ),
            "notes": "; ".join(self.notes),
        }


@dataclass
class PollResult:
    """What one ``poll`` found and recorded."""

    destination: str
    destination_key: str
    polled: int = 0
    completed: list[int] = field(default_factory=list)
    stuck: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    still_open: int = 0
    errors: list[str] = field(default_factory=list)
    rows_confirmed: int = 0
    rows_failed: int = 0
    rows_not_found: int = 0
    rows_requeued: int = 0
    rows_dead: int = 0
    verified: int = 0
    verified_ok: int = 0

    @property
    def landing_rate(self) -> float | None:
        """Share of the read-back sample whose stored values equal the manifest."""
        return self.verified_ok / self.verified if self.verified else None

    def summary(self) -> str:
        if not self.polled:
            # not "rows confirmed 0": a batch settled on submit (Copernica) was counted then
            return "no batch open to poll"
        return (
            f"polled {self.polled}, completed {len(self.completed)}, stuck {len(self.stuck)}, "
            f"expired {len(self.expired)}, still open {self.still_open}; {_rows_settled(self)}"
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "batches_polled": self.polled,
            "batches_completed": len(self.completed),
            "batches_stuck": len(self.stuck),
            "batches_expired": len(self.expired),
            "batches_still_open": self.still_open,
            "rows_confirmed": self.rows_confirmed,
            "rows_failed": self.rows_failed,
            "rows_not_found": self.rows_not_found,
            "rows_requeued": self.rows_requeued,
            "rows_dead": self.rows_dead,
            "verified": self.verified,
            "verified_ok": self.verified_ok,
            "landing_rate": -1.0 if self.landing_rate is None else float(self.landing_rate),
            "poll_errors": len(self.errors),
        }


def _rows_settled(result: DrainResult | PollResult) -> str:
    """The rows settled by a drain or a poll, and the read-back of their sample."""
    verified = result.verified
    rate = f"{result.verified_ok / verified:.2%}" if verified else "n/a"
    return (
        f"rows confirmed {result.rows_confirmed}, failed {result.rows_failed}, not found "
        f"{result.rows_not_found}, requeued {result.rows_requeued}, dead {result.rows_dead}; "
        f"landing rate {rate} ({result.verified_ok}/{verified})"
    )
