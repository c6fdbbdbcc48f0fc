"""The nightly job's steps as plain functions, without Dagster: what each asset computes.

The assets (``connector.defs.assets``) call them inside Dagster runs and turn their outputs
into materializations and check results; `connector sync` calls them directly
(``connector.defs.direct``) and has its runs recorded in the Dagster instance afterwards
(``connector.defs.recorder``), which replays these outputs through the same assets. So what a
step does, and what its asset records, is defined once.

An output is plain data (it is pickled for the recorder); ``figures()`` gives the plain
metadata values a sync's summary counts (``connector.reporting.SyncSummary``), the same keys
the asset's materialization carries. This module imports no Dagster.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connector import pipeline
from connector.reporting.queries import rejected_rows
from connector.source_deletions import deleted_at_source

# the delivery's modules (HTTP clients, DuckDB, the reports) are imported by the steps that
# use them: a dry run stops before them
if TYPE_CHECKING:
    from connector import quality
    from connector.delivery.results import DrainResult, PollResult
    from connector.ledger import Ledger
    from connector.mapping import SourceMapping
    from connector.pipeline import StageResult
    from connector.reporting import RunRecord, StatusReport
    from connector.settings import Settings
    from connector.source_deletions import Deletions


@dataclass(frozen=True)
class StepContext:
    """What a step of one run needs: the settings, the ledger, the run and its partition."""

    settings: Settings
    ledger: Ledger
    run_id: str
    partition: str = ""
    force_window: bool = False  # submit outside the off-peak window
    poll_timeout_s: float = 0.0  # how long the status report waits for open batches
    started_at: dt.datetime | None = None  # when the run started (None: not known)


def step_key(*path: str) -> str:
    """The Dagster step key of the asset (or multi-asset) named by ``path``."""
    return "__".join(path)


@dataclass(frozen=True)
class SourceRows:
    result: StageResult

    def figures(self) -> dict[str, Any]:
        return dict(self.result.counts)


@dataclass(frozen=True)
class ProfileUpdates:
    result: StageResult
    accepted: int  # rows the transform took in
    rejected: int  # rows of the mapping partition rejected (extract and transform)

    def figures(self) -> dict[str, Any]:
        return dict(self.result.counts)


@dataclass(frozen=True)
class ProfileChanges:
    result: StageResult
    deletions: Deletions | None  # None: the source cannot tell (not SQL)

    def figures(self) -> dict[str, Any]:
        return dict(self.result.counts)


@dataclass(frozen=True)
class Outbox:
    rows: int
    candidates: int
    unchanged: int
    batch_ids: list[int]
    mappings: list[str]
    param_names: list[str]
    summary: str
    files: list[dict[str, Any]]
    preview: list[dict[str, Any]]
    caps: quality.CapsFindings
    identities: quality.IdentityFindings

    @property
    def blocked(self) -> list[str]:
        """The blocking checks that failed: the batches must not be submitted."""
        return [
            name
            for name, passed in (
                ("within_caps", self.caps.passed),
                ("identities_valid", self.identities.passed),
            )
            if not passed
        ]

    def figures(self) -> dict[str, Any]:
        return {
            "dagster/row_count": self.rows,
            "changed_profiles": self.candidates,
            "already_sent": self.unchanged,
            "batches": len(self.batch_ids),
            # the ledger ids of the batches written: a sync counts what became of its own
            "batch_ids": list(self.batch_ids),
            "mappings": ", ".join(self.mappings),
            "params": ", ".join(self.param_names),
            "summary": self.summary,
        }


@dataclass(frozen=True)
class Submissions:
    drain: DrainResult

    def figures(self) -> dict[str, Any]:
        return {**self.drain.metadata(), "summary": self.drain.summary()}


@dataclass(frozen=True)
class Reported:
    polled: PollResult
    run: RunRecord
    report: StatusReport

    def figures(self) -> dict[str, Any]:
        html = self.report.html_path
        return {"report_html": html} if html is not None else {}


@dataclass(frozen=True)
class Outputs:
    """The outputs of one run's steps by step key, in the order they ran."""

    by_step: dict[str, Any] = field(default_factory=dict)


def source_rows(ctx: StepContext, mapping: SourceMapping) -> SourceRows:
    """Read the partition's rows and map them (``pipeline.extract_stage``)."""
    return SourceRows(
        pipeline.extract_stage(mapping, ctx.partition, ctx.settings, ctx.ledger, ctx.run_id)
    )


def profile_updates(ctx: StepContext, mapping: SourceMapping) -> ProfileUpdates:
    """One row per identity of the day (``pipeline.transform_stage``), and the rejects."""
    result = pipeline.transform_stage(mapping, ctx.partition, ctx.settings, ctx.ledger, ctx.run_id)
    return ProfileUpdates(
        result,
        accepted=int(result.counts.get("rows_in", 0)),
        rejected=rejected_rows(ctx.ledger, mapping.name, ctx.partition),
    )


def profile_changes(ctx: StepContext, mapping: SourceMapping) -> ProfileChanges:
    """The day merged into the mapping's profile store (``pipeline.profile_stage``), and the
    identities its SQL source no longer holds."""
    result = pipeline.profile_stage(mapping, ctx.partition, ctx.settings, ctx.ledger, ctx.run_id)
    return ProfileChanges(result, deleted_at_source(mapping, ctx.settings, ctx.ledger))


def outbox(ctx: StepContext, destination: str, mappings: list[str]) -> Outbox:
    """The account's changed profiles, whole, as batch files (``outbox.build``), with the
    findings of the blocking checks on them."""
    from connector import quality
    from connector.outbox import build as outbox_build

    settings, ledger = ctx.settings, ctx.ledger
    built = outbox_build.build(settings, ledger, destination, mappings=mappings)
    acct = outbox_build.account(settings, ledger, destination, mappings=mappings)
    identity_type = acct.identity_type if acct is not None else ""
    return Outbox(
        rows=built.rows,
        candidates=built.candidates,
        unchanged=built.unchanged,
        batch_ids=[b.id for b in built.batches],
        mappings=list(built.mappings),
        param_names=list(built.param_names),
        summary=built.summary(),
        files=[
            {
                "batch": b.batch_key,
                "rows": b.row_count,
                "bytes": b.byte_size,
                "sha256": b.sha256[:12],
            }
            for b in built.batches
        ],
        preview=outbox_build.preview(built.batches, cache_dir=settings.cache_dir),
        caps=quality.within_caps(built.batches, settings, destination),
        identities=quality.identities_valid(
            built.batches, destination, identity_type, settings.cache_dir
        ),
    )


def submissions(ctx: StepContext, destination: str) -> Submissions:
    """Queued batches submitted inside the window and quota (``delivery.drain``)."""
    from connector import delivery

    return Submissions(
        delivery.drain(ctx.settings, ctx.ledger, destination=destination, force=ctx.force_window)
    )


def status_report(ctx: StepContext, destination: str, mappings: list[str]) -> Reported:
    """Open batches polled (``delivery.poll``), the run recorded, the report written."""
    from connector import delivery
    from connector.ledger import destination_key
    from connector.reporting import record_run, write_report

    settings, ledger = ctx.settings, ctx.ledger
    polled = delivery.poll(
        settings,
        ledger,
        destination=destination,
        wait=ctx.poll_timeout_s > 0,
        timeout_s=ctx.poll_timeout_s or None,
    )
    run = record_run(
        ledger,
        destination=destination,
        destination_key=destination_key(destination, settings),
        mappings=mappings,
        run_id=ctx.run_id,
        started_at=ctx.started_at,
    )
    report = write_report(
        ledger,
        destination,
        settings.reports,
        settings.daily_quota,
        mappings,
        dagster_url=settings.dagster_url,
        work_dir=settings.work_dir,
    )
    return Reported(polled, run, report)
