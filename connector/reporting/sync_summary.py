"""What one ``connector sync`` did: per mapping, what became of the source rows of the synced
days; per destination account, what became of the changed profiles; the reports it wrote and
its failures. Filled from the stages' metadata and, for deliveries, from the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from connector.ledger import Ledger
from connector.reporting import counts as figures
from connector.reporting.counts import MAPPING_COUNTS, STAGE_OF_ASSET, figure
from connector.reporting.queries import batches_since

# per mapping: what became of the source rows of the synced days (``counts`` defines each)
SUMMARY_COLUMNS = MAPPING_COUNTS
# per destination account: what became of the changed profiles (one row each, whole)
DELIVERY_COLUMNS = ("changed", "already_sent", "queued", "submitted", "confirmed", "failed")

Metadata = Mapping[str, object]


def progress(metadata: Metadata) -> str:
    """`N rows` and, when the stage timed itself, its rate."""
    rows = figure(metadata, "rows_out")
    seconds = metadata.get("seconds")
    if not isinstance(seconds, int | float) or not seconds:
        return f"{rows:,} rows"
    rows_in = figure(metadata, "rows_in") or rows
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
        """Count one stage materialization (``stage``: the asset's last name) of ``mapping``
        (``counts.add_stage``)."""
        stage = STAGE_OF_ASSET.get(stage, stage)  # `rejects` counts nothing of its own
        figures.add_stage(self._mapping(mapping), stage, metadata, dry_run=dry_run)

    def add_delivery_asset(self, destination: str, asset: str, metadata: Metadata) -> None:
        """Count the outbox's changed profiles; note the status report's HTML file."""
        if asset == "outbox":
            account = self._account(destination)
            account["changed"] += figure(metadata, "changed_profiles")
            account["already_sent"] += figure(metadata, "already_sent")
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
        for destination in sorted({b.destination for b in written.batches}):
            mine = [b for b in written.batches if b.destination == destination]
            tally = figures.delivery_counts(mine, written.outcomes, known=by_id)
            account = self._account(destination)
            for column in DELIVERY_COLUMNS[2:]:
                account[column] += tally[column]
