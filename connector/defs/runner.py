"""In-process runs of the code location's jobs, recorded in a persistent Dagster instance.

`connector sync` and `make demo` go through here, so their runs show up in the UI afterwards.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from filelock import FileLock
from sqlalchemy import func, select

from connector.defs.assets import STAGES, mapping_key
from connector.defs.definitions import build_definitions
from connector.defs.jobs import NIGHTLY
from connector.defs.resources import ConnectorResource
from connector.ledger import COMPLETE, DEAD, Batch, RowOutcome
from connector.partitions import parse_day

log = logging.getLogger(__name__)

# per mapping: what became of the source rows of the synced days
SUMMARY_COLUMNS = ("read", "rejected", "merged", "unchanged", "superseded", "changed")
# per destination account: what became of the changed profiles (one row each, whole)
DELIVERY_COLUMNS = ("changed", "already_sent", "queued", "submitted", "confirmed", "failed")
# In-process runs print our own progress lines; Dagster's per-event console log would drown them.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class SyncSummary:
    partitions: list[str]
    per_mapping: dict[str, dict[str, int]] = field(default_factory=dict)
    per_account: dict[str, dict[str, int]] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def expand_partitions(values: Sequence[str], default: str) -> list[str]:
    """`D`, `A..B` (inclusive), repeatable; none means `default` (yesterday)."""
    days: list[str] = []
    for value in values or [default]:
        if ".." in value:
            first, last = (parse_day(v) for v in value.split("..", 1))
            if last < first:
                raise ValueError(f"partition range {value!r} ends before it starts")
            days += [
                (first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)
            ]
        else:
            days.append(parse_day(value).isoformat())
    return sorted(set(days))


INSTANCE_LOCK = ".connector-instance.lock"


def instance_for(state_dir: Path) -> dg.DagsterInstance:
    """The DAGSTER_HOME instance, or a persistent SQLite one under the state folder.

    Opened under a file lock in DAGSTER_HOME: Dagster creates its SQLite storages on first
    use, and two processes creating them at once (two syncs on a fresh install) leave its
    migration table with two heads, after which no run starts."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str((state_dir / "dagster_home").resolve())
        os.environ["DAGSTER_HOME"] = home
    Path(home).mkdir(parents=True, exist_ok=True)
    with FileLock(str(Path(home) / INSTANCE_LOCK)):
        instance = dg.DagsterInstance.get()
        # the storages are created when first touched: touch them inside the lock
        instance.run_storage.has_run("none")
        instance.event_log_storage.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.RUN_SUCCESS), limit=1
        )
        instance.schedule_storage  # noqa: B018
    return instance


def _metadata_int(event: Any, key: str) -> int:
    value = event.materialization.metadata.get(key)
    return int(value.value) if value is not None else 0


def run_sync(
    connector: ConnectorResource,
    *,
    mappings: Sequence[str] = (),
    partitions: Sequence[str] = (),
    dry_run: bool = False,
    deliver: bool = True,
    on_event: Callable[[str], None] | None = None,
    instance: dg.DagsterInstance | None = None,
    quiet: bool = True,
) -> SyncSummary:
    """Mapping assets for each partition (one run each), then one delivery run (submit + poll)."""
    settings = connector.settings()
    defs = build_definitions(settings, connector)
    job = defs.resolve_job_def(NIGHTLY)
    available = sorted(
        {key.path[0] for key in job.asset_layer.executable_asset_keys} - {"target", "copernica"}
    )
    chosen = list(mappings) or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise ValueError(f"unknown mapping(s) {', '.join(unknown)} (have: {', '.join(available)})")
    yesterday = (dt.datetime.now(settings.tz).date() - dt.timedelta(days=1)).isoformat()
    days = expand_partitions(partitions, yesterday)
    instance = instance or instance_for(settings.state_dir)
    summary = SyncSummary(days, {m: dict.fromkeys(SUMMARY_COLUMNS, 0) for m in chosen})
    stages = STAGES[:3] if dry_run else STAGES
    emit = on_event or (lambda message: log.info(message))
    with connector.ledger().session() as session:
        first_new_batch = (session.scalar(select(func.max(Batch.id))) or 0) + 1
    for day in days:
        selection = [mapping_key(m, s) for m in chosen for s in stages]
        emit(f"partition {day}: {', '.join(chosen)}")
        trigger = "sync dry-run" if dry_run else "sync"
        for key, event in _execute(job, day, selection, instance, trigger, quiet, summary):
            name, stage = key.path[0], key.path[-1]
            counts = summary.per_mapping.setdefault(name, dict.fromkeys(SUMMARY_COLUMNS, 0))
            if stage == "source_rows":
                # every source row either came out of extraction or was rejected there
                counts["read"] += _metadata_int(event, "rows_out") + _metadata_int(
                    event, "rejected"
                )
            elif stage == "profile_updates":
                counts["rejected"] += _metadata_int(event, "rejected")
                counts["merged"] += _metadata_int(event, "duplicates_merged")
                if dry_run:
                    counts["changed"] += _metadata_int(event, "dagster/row_count")
            elif stage == "profile_changes":
                counts["unchanged"] += _metadata_int(event, "unchanged")
                counts["superseded"] += _metadata_int(event, "superseded")
                counts["changed"] += _metadata_int(event, "dagster/row_count")
            emit(f"  {key.to_user_string()}: {_progress(event)}")
    if deliver and not dry_run:
        destinations = sorted(
            {k.path[0] for k in job.asset_layer.executable_asset_keys} & {"target", "copernica"}
        )
        selection = [
            dg.AssetKey([d, s])
            for d in destinations
            for s in ("outbox", "submissions", "status_report")
        ]
        emit(f"delivery: {', '.join(destinations)} (outbox, submit, then poll until final)")
        events = _execute(job, days[-1], selection, instance, "sync delivery", quiet, summary)
        for key, event in events:
            summary_text = event.materialization.metadata.get("summary")
            if summary_text is not None:
                emit(f"  {key.to_user_string()}: {summary_text.value}")
            if key.path[-1] == "outbox":
                account = summary.per_account.setdefault(
                    key.path[0], dict.fromkeys(DELIVERY_COLUMNS, 0)
                )
                account["changed"] += _metadata_int(event, "changed_profiles")
                account["already_sent"] += _metadata_int(event, "already_sent")
            if key.path[-1] == "status_report":
                path = event.materialization.metadata.get("report_html")
                if path is not None:
                    summary.reports[key.path[0]] = str(path.value)
        _delivery_counts(connector, summary, first_new_batch)
    return summary


def _execute(
    job: Any,
    partition: str,
    selection: list[dg.AssetKey],
    instance: dg.DagsterInstance,
    trigger: str,
    quiet: bool,
    summary: SyncSummary,
) -> list[tuple[dg.AssetKey, Any]]:
    """One in-process run; a failure is noted in the summary. Returns its materializations."""
    result = job.execute_in_process(
        partition_key=partition,
        instance=instance,
        asset_selection=selection,
        run_config=QUIET if quiet else None,
        raise_on_error=False,
        tags={"connector/trigger": trigger},
    )
    summary.run_ids.append(result.run_id)
    if not result.success:
        summary.failures.append(
            f"{trigger} {partition}: run {result.run_id} failed: {_failure(result)}"
        )
    return [
        (event.asset_key, event)
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    ]


def _progress(event: Any) -> str:
    """`N rows` and, when the stage timed itself, its rate."""
    rows = _metadata_int(event, "dagster/row_count")
    seconds = event.materialization.metadata.get("seconds")
    if seconds is None or not seconds.value:
        return f"{rows:,} rows"
    rows_in = _metadata_int(event, "rows_in") or rows
    return f"{rows:,} rows in {seconds.value:.1f}s ({rows_in / seconds.value:,.0f} rows/s)"


def _failure(result: Any) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            return f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
    return "see the run in the Dagster UI"


NOT_LANDED = ("failed", "not_found", "error", "dead")


def _delivery_counts(
    connector: ConnectorResource, summary: SyncSummary, first_new_batch: int
) -> None:
    """Queued / submitted / confirmed / failed rows per destination of the batches this sync
    wrote (one row per profile: the account's outbox writes them whole).

    A row re-queued into a retry batch is counted once, in the batch that settled it; a row
    not re-sent because a newer batch carries its profile counts as neither confirmed nor
    failed here (the newer batch does), so queued = confirmed + failed + superseded + pending.
    A retry this sync wrote of an earlier sync's batch is left out with its own retries: that
    sync queued and counted those rows (else they would count as queued without a change).
    """
    with connector.ledger().session() as session:
        batches: dict[int, Batch] = {}
        for b in session.scalars(
            select(Batch).where(Batch.id >= first_new_batch).order_by(Batch.id)
        ):
            if b.parent_id is None or b.parent_id in batches:  # parents come first
                batches[b.id] = b
        outcomes: dict[tuple[int, str], int] = {
            (batch_id, status): n
            for batch_id, status, n in session.execute(
                select(RowOutcome.batch_id, RowOutcome.status, func.count())
                .where(RowOutcome.batch_id.in_(list(batches)))
                .group_by(RowOutcome.batch_id, RowOutcome.status)
            ).all()
        }
    for batch in batches.values():
        counts = summary.per_account.setdefault(
            batch.destination, dict.fromkeys(DELIVERY_COLUMNS, 0)
        )
        bad = sum(outcomes.get((batch.id, s), 0) for s in NOT_LANDED)
        requeued = outcomes.get((batch.id, "requeued"), 0)
        superseded = outcomes.get((batch.id, "superseded"), 0)
        parent = batches.get(batch.parent_id) if batch.parent_id else None
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
