"""In-process runs of the code location's jobs, recorded in a persistent Dagster instance.

`make demo` and the tests go through here; `connector sync` runs the same steps without
Dagster (``connector.defs.direct``) and has its runs recorded by ``connector.defs.recorder``,
which executes them here, replaying the steps' outputs. Their runs carry the code location's origin
(``origin.job_origin``), so the UI lists them under their job and can re-execute them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import dagster as dg

# `execute_in_process`'s own parts, to create the run with an origin (see `_run_in_process`)
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import execute_run
from dagster._core.execution.execute_in_process import merge_run_tags
from dagster._core.remote_origin import RemoteJobOrigin

from connector.defs.assets import STAGES, mapping_key
from connector.defs.definitions import build_definitions
from connector.defs.direct import DELIVERY_STEPS, DESTINATIONS, plan_sync
from connector.defs.instance import instance_for
from connector.defs.jobs import NIGHTLY
from connector.defs.origin import job_origin
from connector.defs.resources import ConnectorResource
from connector.ledger import destination_key
from connector.reporting.queries import next_batch_id, unfinished_batch_ids
from connector.reporting.sync_summary import SUMMARY_COLUMNS, SyncFailure, SyncSummary

log = logging.getLogger(__name__)

# In-process runs report their own progress (connector.progress); Dagster's per-event console
# log would drown it.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _metadata(event: dg.DagsterEvent) -> dict[str, object]:
    """The plain values of a materialization event's metadata."""
    return {key: value.value for key, value in event.materialization.metadata.items()}


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
    """Mapping assets for each partition (one run each), then one delivery run (submit + poll).

    ``on_event`` gets a line as each run begins; the stages report their own progress as they
    go (``connector.progress``: install a reporter to see it)."""
    settings = connector.settings()
    defs = build_definitions(settings, connector)
    job = defs.resolve_job_def(NIGHTLY)
    available = sorted(
        {key.path[0] for key in job.asset_layer.executable_asset_keys} - set(DESTINATIONS)
    )
    chosen, days = plan_sync(settings, available, mappings, partitions)
    instance = instance or instance_for(settings.state_dir)
    origin = job_origin(NIGHTLY)
    summary = SyncSummary(
        days, {m: dict.fromkeys(SUMMARY_COLUMNS, 0) for m in chosen}, dry_run=dry_run
    )
    stages = STAGES[:3] if dry_run else STAGES
    emit = on_event or (lambda message: log.info(message))
    first_new_batch = next_batch_id(connector.ledger())
    # what the delivery will submit or poll besides this sync's own batches
    earlier = unfinished_batch_ids(connector.ledger())
    for day in days:
        selection = [mapping_key(m, s) for m in chosen for s in stages]
        emit(f"partition {day}: {', '.join(chosen)}")
        trigger = "sync dry-run" if dry_run else "sync"
        runs = _execute(job, day, selection, instance, origin, trigger, quiet, summary)
        for key, metadata in runs:
            summary.add_stage(key.path[0], key.path[-1], metadata, dry_run=dry_run)
    if deliver and not dry_run:
        destinations = sorted(
            {k.path[0] for k in job.asset_layer.executable_asset_keys} & set(DESTINATIONS)
        )
        selection = [dg.AssetKey([d, s]) for d in destinations for s in DELIVERY_STEPS]
        summary.accounts.update({d: destination_key(d, settings) for d in destinations})
        emit(f"delivery: {', '.join(destinations)} (outbox, submit, then poll until final)")
        events = _execute(
            job, days[-1], selection, instance, origin, "sync delivery", quiet, summary
        )
        for key, metadata in events:
            summary.add_delivery_asset(key.path[0], key.path[-1], metadata)
        summary.add_deliveries(connector.ledger(), first_new_batch, earlier)
    return summary


def _execute(
    job: dg.JobDefinition,
    partition: str,
    selection: list[dg.AssetKey],
    instance: dg.DagsterInstance,
    origin: RemoteJobOrigin | None,
    trigger: str,
    quiet: bool,
    summary: SyncSummary,
) -> list[tuple[dg.AssetKey, dict[str, object]]]:
    """One in-process run; a failure is noted in the summary. Returns its materializations."""
    result = _run_in_process(
        job,
        partition=partition,
        selection=selection,
        instance=instance,
        origin=origin,
        run_config=QUIET if quiet else {},
        tags={"connector/trigger": trigger},
    )
    summary.run_ids.append(result.run_id)
    if not result.success:
        step, error_class, message = _failure(result)
        summary.failures.append(
            SyncFailure(f"{trigger} {partition}", result.run_id, step, error_class, message)
        )
    return [
        (event.asset_key, _metadata(event))
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    ]


def _run_in_process(
    job: dg.JobDefinition,
    *,
    partition: str,
    selection: Sequence[dg.AssetKey],
    instance: dg.DagsterInstance,
    origin: RemoteJobOrigin | None,
    run_config: Mapping[str, object],
    tags: Mapping[str, str],
    run_id: str | None = None,
) -> dg.JobExecutionResult:
    """``job.execute_in_process(partition_key=..., asset_selection=..., raise_on_error=False)``,
    with the run created under ``origin``: `execute_in_process` creates its run without one.

    The same steps as `execute_in_process`: the job with the in-process executor and an
    in-memory IO manager, the partition's tags, then the run executed in this process."""
    ephemeral = job.as_ephemeral_job(resource_defs={}, input_values={}, asset_selection=selection)
    if not run_config and ephemeral.partitioned_config:
        run_config = ephemeral.partitioned_config.get_run_config_for_partition_key(partition)
    run = instance.create_run_for_job(
        job_def=ephemeral,
        run_id=run_id,
        run_config=run_config,
        tags=merge_run_tags(
            job_def=job,
            partition_key=partition,
            tags=tags,
            asset_selection=selection,
            instance=instance,
            run_config=run_config,
        ),
        asset_selection=frozenset(selection),
        remote_job_origin=origin,
    )
    return execute_run(InMemoryJob(ephemeral), run, instance, raise_on_error=False)


def _failure(result: dg.JobExecutionResult) -> tuple[str, str, str]:
    """The first failed step: its key, the class name of its own error and the message."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            # Dagster wraps the step's own exception: name that one, not the wrapper
            while (
                error is not None and (error.cls_name or "").startswith("Dagster") and error.cause
            ):
                error = error.cause
            if error is None:
                return str(event.step_key), "", "no error recorded"
            return str(event.step_key), error.cls_name or "", error.message.strip()
    return "run", "", "see the run in the Dagster UI"
