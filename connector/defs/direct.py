"""`connector sync` without Dagster: the nightly job's runs, their steps called directly.

The same runs ``connector.defs.runner.run_sync`` has Dagster execute: per partition day, one
run of the chosen mappings' stages; then one delivery run (each destination's outbox,
submissions and status report). The steps are ``connector.defs.steps``, in the job's order;
a step that raises fails its run and its downstream steps do not run (the other mappings'
do), and an outbox whose blocking checks fail is not submitted, as in a Dagster run. Each run
gets a Dagster run id and is written to a run log (``connector.defs.run_log``) that the
recorder (``connector.defs.recorder``) records in the Dagster instance afterwards, under that
id. Nothing here imports Dagster: a sync does not pay its import and run machinery.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from connector.defs import steps
from connector.defs.run_log import RunLog, StepFailure, new_run_id
from connector.ledger import Ledger, destination_key
from connector.mapping import MappingsInvalid, SourceMapping, load_mappings
from connector.partitions import check_in_range, expand_partitions
from connector.reporting.queries import next_batch_id, unfinished_batch_ids
from connector.reporting.sync_summary import SUMMARY_COLUMNS, SyncFailure, SyncSummary
from connector.settings import Settings

log = logging.getLogger(__name__)

NIGHTLY = "nightly_sync"  # the job the runs belong to (connector.defs.jobs.NIGHTLY)
DESTINATIONS = ("target", "copernica")
MAPPING_STEPS = ("source_rows", "profile_updates", "profile_changes")
DELIVERY_STEPS = ("outbox", "submissions", "status_report")
# the asset keys a mapping step materializes (profile_updates is a multi-asset)
MAPPING_ASSETS = {
    "source_rows": ("source_rows",),
    "profile_updates": ("profile_updates", "rejects"),
    "profile_changes": ("profile_changes",),
}


@cache
def open_ledger(url: str) -> Ledger:
    """The ledger at ``url``, upgraded to this release's schema (once per process)."""
    ledger = Ledger(url)
    ledger.upgrade()  # Alembic, so a later release's migrations apply to this ledger
    return ledger


def plan_sync(
    settings: Settings, available: Sequence[str], mappings: Sequence[str], partitions: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The mappings chosen among ``available`` (all when none is named) and the days of
    ``partitions`` (default: yesterday); ``ValueError`` names an unknown mapping or a day
    outside the partitions."""
    chosen = list(mappings) or sorted(available)
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise ValueError(
            f"unknown mapping(s) {', '.join(unknown)} (have: {', '.join(sorted(available))})"
        )
    yesterday = dt.datetime.now(settings.tz).date() - dt.timedelta(days=1)
    days = expand_partitions(partitions, yesterday.isoformat())
    check_in_range(days, settings.partition_start, yesterday, settings.timezone)
    return chosen, days


@dataclass(frozen=True)
class _Step:
    key: str  # the Dagster step key
    assets: tuple[tuple[str, ...], ...]  # the asset keys it materializes
    after: str | None  # the step it waits for
    compute: Callable[[steps.StepContext], Any]


def run_sync_direct(
    settings: Settings,
    ledger: Ledger,
    *,
    mappings: Sequence[str] = (),
    partitions: Sequence[str] = (),
    dry_run: bool = False,
    force_window: bool = False,
    poll_timeout_s: float = 0.0,
    on_event: Callable[[str], None] | None = None,
) -> tuple[SyncSummary, list[RunLog]]:
    """The sync's summary and the log of each of its runs (for the recorder)."""
    loaded, errors = load_mappings(settings.mappings_dir)
    if errors:
        raise MappingsInvalid(errors)
    by_name = {m.name: m for m in loaded}
    chosen, days = plan_sync(settings, list(by_name), mappings, partitions)
    summary = SyncSummary(
        days, {m: dict.fromkeys(SUMMARY_COLUMNS, 0) for m in chosen}, dry_run=dry_run
    )
    emit = on_event or (lambda message: log.info(message))
    fields = {"force_window": force_window, "poll_timeout_s": poll_timeout_s}
    first_new_batch = next_batch_id(ledger)
    earlier = unfinished_batch_ids(ledger)  # what the delivery submits or polls besides
    runs: list[RunLog] = []
    stages = MAPPING_STEPS[:2] if dry_run else MAPPING_STEPS
    trigger = "sync dry-run" if dry_run else "sync"
    for day in days:
        emit(f"partition {day}: {', '.join(chosen)}")
        planned = [_mapping_step(by_name[m], stage) for m in chosen for stage in stages]
        run = _execute(settings, ledger, day, planned, trigger, fields, summary)
        runs.append(run)
        for step in planned:
            out = run.steps.get(step.key)
            if out is not None and not isinstance(out, StepFailure):
                mapping, stage = step.assets[0]
                summary.add_stage(mapping, stage, out.figures(), dry_run=dry_run)
    if not dry_run:
        destinations = sorted({by_name[m].destination for m in by_name})
        feeds = {d: sorted(m.name for m in loaded if m.destination == d) for d in destinations}
        summary.accounts.update({d: destination_key(d, settings) for d in destinations})
        emit(f"delivery: {', '.join(destinations)} (outbox, submit, then poll until final)")
        planned = [
            _delivery_step(d, stage, feeds[d]) for d in destinations for stage in DELIVERY_STEPS
        ]
        run = _execute(settings, ledger, days[-1], planned, "sync delivery", fields, summary)
        runs.append(run)
        for step in planned:
            out = run.steps.get(step.key)
            if out is not None and not isinstance(out, StepFailure):
                destination, asset = step.assets[0]
                summary.add_delivery_asset(destination, asset, out.figures())
        summary.add_deliveries(ledger, first_new_batch, earlier)
    return summary, runs


def _mapping_step(mapping: SourceMapping, stage: str) -> _Step:
    compute = getattr(steps, stage)
    index = MAPPING_STEPS.index(stage)
    return _Step(
        key=steps.step_key(mapping.name, stage),
        assets=tuple((mapping.name, asset) for asset in MAPPING_ASSETS[stage]),
        after=steps.step_key(mapping.name, MAPPING_STEPS[index - 1]) if index else None,
        compute=lambda ctx: compute(ctx, mapping),
    )


def _delivery_step(destination: str, stage: str, feeds: list[str]) -> _Step:
    index = DELIVERY_STEPS.index(stage)
    compute: Callable[[steps.StepContext], Any]
    if stage == "outbox":
        compute = lambda ctx: steps.outbox(ctx, destination, feeds)  # noqa: E731
    elif stage == "submissions":
        compute = lambda ctx: steps.submissions(ctx, destination)  # noqa: E731
    else:
        compute = lambda ctx: steps.status_report(ctx, destination, feeds)  # noqa: E731
    return _Step(
        key=steps.step_key(destination, stage),
        assets=((destination, stage),),
        after=steps.step_key(destination, DELIVERY_STEPS[index - 1]) if index else None,
        compute=compute,
    )


def _execute(
    settings: Settings,
    ledger: Ledger,
    partition: str,
    planned: list[_Step],
    trigger: str,
    fields: dict[str, Any],
    summary: SyncSummary,
) -> RunLog:
    """One run: its steps in order, each after the step it waits for succeeded. The first
    failed step is noted in the summary as the run's failure."""
    run = RunLog(
        run_id=new_run_id(),
        job=NIGHTLY,
        partition=partition,
        selection=[asset for step in planned for asset in step.assets],
        tags={"connector/trigger": trigger},
        resource_fields=fields,
        started_at=time.time(),
    )
    ctx = steps.StepContext(
        settings=settings,
        ledger=ledger,
        run_id=run.run_id,
        partition=partition,
        force_window=bool(fields["force_window"]),
        poll_timeout_s=float(fields["poll_timeout_s"]),
        started_at=dt.datetime.fromtimestamp(run.started_at, dt.UTC),
    )
    summary.run_ids.append(run.run_id)
    first_failure: tuple[str, StepFailure] | None = None
    done: set[str] = set()  # steps that succeeded
    for step in planned:
        if step.after is not None and step.after not in done:
            continue  # its upstream failed or was blocked: it does not run
        try:
            out = step.compute(ctx)
        except Exception as exc:
            log.error("run %s: step %s failed", run.run_id, step.key, exc_info=True)
            failure = StepFailure(
                type(exc).__name__, "".join(traceback.format_exception_only(exc)).strip()
            )
            run.steps[step.key] = failure
            first_failure = first_failure or (step.key, failure)
            continue
        run.steps[step.key] = out
        blocked = getattr(out, "blocked", [])
        if blocked:
            failure = StepFailure(
                "AssetCheckFailed", f"blocking check(s) failed: {', '.join(blocked)}"
            )
            first_failure = first_failure or (step.key, failure)
            continue
        done.add(step.key)
    run.ended_at = time.time()
    if first_failure is not None:
        step_key, failure = first_failure
        summary.failures.append(
            SyncFailure(
                f"{trigger} {partition}", run.run_id, step_key, failure.error, failure.message
            )
        )
    return run
