"""What one ``connector sync`` did: per mapping, what became of the source rows of the synced
days; per destination account, what became of the changed profiles; the reports it wrote and
its failures. Filled from the stages' metadata and, for deliveries, from the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from connector.ledger import COMPLETE, DEAD, Ledger
from connector.reporting.queries import batches_since

# per mapping: what became of the source rows of the synced days
SUMMARY_COLUMNS = ("read", "rejected", "merged", "unchanged", "superseded", "changed")
# per destination account: what became of the changed profiles (one row each, whole)
DELIVERY_COLUMNS = ("changed", "already_sent", "queued", "submitted", "confirmed", "failed")
# row outcomes of a settled batch whose rows did not land
NOT_LANDED = ("failed", "not_found", "error", "dead")

Metadata = Mapping[str, object]


def count(metadata: Metadata, key: str) -> int:
    """An integer figure of a stage's metadata; 0 when the stage did not report it."""
    value = metadata.get(key)
    return int(value) if isinstance(value, int | float | str) else 0


def progress(metadata: Metadata) -> str:
    """`N rows` and, when the stage timed itself, its rate."""
    rows = count(metadata, "rows_out")
    seconds = metadata.get("seconds")
    if not isinstance(seconds, int | float) or not seconds:
        return f"{rows:,} rows"
    rows_in = count(metadata, "rows_in") or rows
    return f"{rows:,} rows in {seconds:.1f}s ({rows_in / seconds:,.0f} rows/s)"


@dataclass
class SyncSummary:
    """The figures of one sync over ``partitions``; ``ok`` when no run failed."""

    partitions: list[str]
    per_mapping: dict[str, dict[str, int]] = field(default_factory=dict)
    per_account: dict[str, dict[str, int]] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # a failure that no retry mends: the destination refused the account's settings (a
    # database it does not have, credentials it refuses)
    bad_configuration: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    def _mapping(self, name: str) -> dict[str, int]:
        return self.per_mapping.setdefault(name, dict.fromkeys(SUMMARY_COLUMNS, 0))

    def _account(self, destination: str) -> dict[str, int]:
        return self.per_account.setdefault(destination, dict.fromkeys(DELIVERY_COLUMNS, 0))

    def add_stage(self, mapping: str, stage: str, metadata: Metadata, *, dry_run: bool) -> None:
        """Count one stage materialization of ``mapping``; a dry run stops before the profile
        store, so its changed rows are the profile updates."""
        counts = self._mapping(mapping)
        if stage == "source_rows":
            # every source row either came out of extraction or was rejected there
            counts["read"] += count(metadata, "rows_out") + count(metadata, "rejected")
        elif stage == "profile_updates":
            counts["rejected"] += count(metadata, "rejected")
            counts["merged"] += count(metadata, "duplicates_merged")
            if dry_run:
                counts["changed"] += count(metadata, "rows_out")
        elif stage == "profile_changes":
            counts["unchanged"] += count(metadata, "unchanged")
            counts["superseded"] += count(metadata, "superseded")
            counts["changed"] += count(metadata, "rows_out")

    def add_delivery_asset(self, destination: str, asset: str, metadata: Metadata) -> None:
        """Count the outbox's changed profiles; note the status report's HTML file."""
        if asset == "outbox":
            account = self._account(destination)
            account["changed"] += count(metadata, "changed_profiles")
            account["already_sent"] += count(metadata, "already_sent")
        elif asset == "status_report" and metadata.get("report_html") is not None:
            self.reports[destination] = str(metadata["report_html"])

    def add_deliveries(self, ledger: Ledger, first_new_batch: int) -> None:
        """Queued / submitted / confirmed / failed rows per destination of the batches this
        sync wrote (one row per profile: the account's outbox writes them whole).

        A row re-queued into a retry batch is counted once, in the batch that settled it; a
        row not re-sent because a newer batch carries its profile counts as neither confirmed
        nor failed here (the newer batch does), so queued = confirmed + failed + superseded +
        pending. A retry this sync wrote of an earlier sync's batch is left out with its own
        retries: that sync queued and counted those rows (else they would count as queued
        without a change).
        """
        written = batches_since(ledger, first_new_batch)
        by_id = {b.id: b for b in written.batches}
        for batch in written.batches:
            counts = self._account(batch.destination)
            bad = sum(written.outcomes.get((batch.id, s), 0) for s in NOT_LANDED)
            requeued = written.outcomes.get((batch.id, "requeued"), 0)
            superseded = written.outcomes.get((batch.id, "superseded"), 0)
            parent = by_id.get(batch.parent_id) if batch.parent_id else None
            first_send = parent is None or parent.submitted_at is None
            if parent is None:
                counts["queued"] += batch.row_count
            if batch.submitted_at is not None and first_send:
                counts["submitted"] += batch.row_count
            counts["failed"] += bad
            if batch.state == COMPLETE:
                counts["confirmed"] += batch.row_count - bad - requeued - superseded
            elif batch.state == DEAD and not bad:
                counts["failed"] += batch.row_count - requeued - superseded
