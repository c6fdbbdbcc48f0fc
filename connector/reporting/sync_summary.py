"""What one ``connector sync`` did: per mapping, what became of the source rows of the synced
days; per destination account, what became of the changed profiles; what became of the rows
of earlier syncs' batches that it submitted or polled; the reports it wrote, its failures and
its exit code. Filled from the stages' metadata and, for deliveries, from the ledger.

The words of the columns are defined once, in ``connector.reporting.glossary``; the counts
once, in ``connector.reporting.counts`` (the status report's run records count with it too)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from connector.exit_codes import ExitCode, worst
from connector.ledger import Ledger
from connector.reporting import counts as figures
from connector.reporting.counts import MAPPING_COUNTS, STAGE_OF_ASSET, figure
from connector.reporting.queries import WrittenBatches, lineage

# per mapping: what became of the source rows of the synced days (``counts`` defines each)
SUMMARY_COLUMNS = MAPPING_COUNTS
# per destination account: what became of the changed profiles (one row each, whole);
# queued = confirmed + failed + superseded + not_final
DELIVERY_COLUMNS = (
    "changed",
    "already_sent",
    "queued",
    "submitted",
    "confirmed",
    "failed",
    "superseded",
    "not_final",
)
# per destination account: the rows of earlier syncs' batches this sync submitted or polled
# (their backlog and retries); rows = confirmed + failed + superseded + not_final
EARLIER_COLUMNS = ("rows", "confirmed", "failed", "superseded", "not_final")
# errors no retry mends: settings that do not validate, or that a destination refused
CONFIGURATION_ERRORS = frozenset({"ConfigurationError", "AuthError", "SettingsError"})

Metadata = Mapping[str, object]


@dataclass(frozen=True)
class SyncFailure:
    """Why a sync did not do all it should: a failed run's step, or a destination's refusal.

    ``run_id`` is empty when no run failed (a drain that stopped on refused credentials)."""

    what: str  # "sync 2026-11-20", "sync delivery 2026-11-20", "target/submissions"
    run_id: str
    step: str
    error: str  # the class name of the step's own error
    message: str

    @property
    def bad_configuration(self) -> bool:
        """No retry mends it: a person must fix the settings."""
        return self.error in CONFIGURATION_ERRORS

    def __str__(self) -> str:
        if not self.run_id:
            return f"{self.what}: {self.message}"
        return f"{self.what}: run {self.run_id} failed: {self.step}: {self.message}"


@dataclass
class SyncSummary:
    """The figures of one sync over ``partitions``; ``ok`` when no run failed."""

    partitions: list[str]
    per_mapping: dict[str, dict[str, int]] = field(default_factory=dict)
    per_account: dict[str, dict[str, int]] = field(default_factory=dict)
    # rows of earlier syncs' batches (queued or open when this sync began) it submitted/polled
    earlier: dict[str, dict[str, int]] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # destination -> its account key
    # destination -> why its drain stopped and what it left queued (the submissions' figures)
    drains: dict[str, dict[str, object]] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    # the batches this sync's outbox builds wrote (another sync's at the same time are not)
    own_batches: list[int] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    failures: list[SyncFailure] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def bad_configuration(self) -> bool:
        """A failure that no retry mends: settings that do not validate, or that a destination
        refused (a database it does not have, credentials it refuses)."""
        return any(f.bad_configuration for f in self.failures)

    @property
    def exit_code(self) -> ExitCode:
        """The code of ``connector.exit_codes`` for what this sync did (the most serious)."""
        found = [ExitCode.OK]
        if self.bad_configuration:
            found.append(ExitCode.BAD_CONFIGURATION)
        if any(not f.bad_configuration for f in self.failures):
            found.append(ExitCode.RUN_FAILED)
        figures = [*self.per_account.values(), *self.earlier.values()]
        if any(c["not_final"] for c in figures):
            found.append(ExitCode.NOT_FINAL)
        if any(c["failed"] for c in figures):
            found.append(ExitCode.ROWS_FAILED)
        return worst(*found)

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
        """Count the outbox's changed profiles; note a drain stopped by refused credentials
        and the status report's HTML file."""
        if asset == "outbox":
            account = self._account(destination)
            account["changed"] += figure(metadata, "changed_profiles")
            account["already_sent"] += figure(metadata, "already_sent")
            ids = metadata.get("batch_ids")
            self.own_batches += [int(i) for i in ids] if isinstance(ids, list) else []
        elif asset == "submissions":
            self._add_drain(destination, metadata)
        elif asset == "status_report" and metadata.get("report_html") is not None:
            self.reports[destination] = str(metadata["report_html"])

    def _add_drain(self, destination: str, metadata: Metadata) -> None:
        """Why the destination's drain stopped and what it left queued; a refusal of the
        account's setup (credentials, a database without the match field) is a failure no
        retry mends."""
        stopped = str(metadata.get("stopped_because", ""))
        said = str(metadata.get("stop_message", ""))
        queued = (figure(metadata, "queued_batches"), figure(metadata, "queued_rows"))
        self.drains[destination] = {
            "stopped_because": stopped,
            "message": said,
            "submitted_batches": figure(metadata, "batches_submitted"),
            "queued_batches": queued[0],
            "queued_rows": queued[1],
        }
        if stopped == "auth":
            self.failures.append(
                SyncFailure(
                    what=f"{destination}/submissions",
                    run_id="",
                    step=f"{destination}__submissions",
                    error="AuthError",
                    message=(
                        f"the destination refused the account's setup: {said or 'see the log'}; "
                        f"{queued[0]} batch(es) / {queued[1]} rows left queued (fix the "
                        "settings, then sync again)"
                    ),
                )
            )

    def add_deliveries(
        self, ledger: Ledger, first_new_batch: int, earlier: Collection[int] = ()
    ) -> None:
        """What became of the rows of the batches this sync wrote (``own_batches``, from its
        outbox builds, with their retries) and of ``earlier`` (the batches not final when it
        began, which it submitted or polled), per destination. Batches another sync wrote
        meanwhile are neither.

        A row re-queued into a retry batch is counted once, in the batch that settled it; a
        row not re-sent because a newer batch carries its profile is superseded. So, per
        account, queued = confirmed + failed + superseded + not_final for this sync's rows,
        and rows = confirmed + failed + superseded + not_final for the earlier ones. A retry
        this sync wrote of an earlier batch counts with that batch (not as queued: it is no
        change of this sync).
        """
        own = lineage(ledger, self.own_batches, first_new_batch)
        by_id = {b.id: b for b in own.batches}
        for batch in own.batches:
            counts = self._account(batch.destination)
            self.accounts.setdefault(batch.destination, batch.destination_key)
            parent = by_id.get(batch.parent_id) if batch.parent_id else None
            first_send = parent is None or parent.submitted_at is None
            figures.add_batch(counts, batch, own.outcomes, first_send=first_send)
        if not earlier:
            return
        older = lineage(ledger, earlier, first_new_batch)
        for batch in older.batches:
            self.accounts.setdefault(batch.destination, batch.destination_key)
            counts = self.earlier.setdefault(batch.destination, dict.fromkeys(EARLIER_COLUMNS, 0))
            if batch.id in earlier:
                counts["rows"] += batch.row_count
        _add_fates(older, self.earlier)


def _add_fates(written: WrittenBatches, into: dict[str, dict[str, int]]) -> None:
    """Add what became of the rows of ``written`` (``counts.fates``) per destination (``into``
    holds a dict of counts for each destination of the batches)."""
    for batch in written.batches:
        figures.add_fates(into[batch.destination], batch, written.outcomes)
