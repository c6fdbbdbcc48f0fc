"""Sensors: poll statuses while batches await them; launch a partition when a POS file lands.

What to launch is decided by plain functions (``delivery.poll.pollable_batch_count``,
``sources.arrivals.new_source_files``); the sensors keep the cursor and build the requests.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

import dagster as dg

from connector.defs.assets import STAGES, mapping_key
from connector.defs.jobs import DRAIN, NIGHTLY, POLL
from connector.defs.resources import ConnectorResource
from connector.delivery.poll import pollable_batch_count
from connector.mapping import SourceMapping
from connector.sources.arrival_cursor import ArrivalCursor
from connector.sources.arrivals import new_source_files

# The accounts' status_report assets poll every batch awaiting a status (then record the run
# and write the report): while a run that materializes one is on its way, another poll run
# would find nothing left to ask, or wait for the same destination pool.
REPORT_ASSET = "status_report"
# The jobs whose whole selection holds the status_report assets (jobs.build_jobs).
POLLING_JOBS = (POLL, NIGHTLY, DRAIN)
# A run on its way: created, waiting in the run queue, being launched, or running.
ON_ITS_WAY = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def polls(run: dg.DagsterRun) -> bool:
    """Whether ``run`` materializes a status_report: a run of a polling job (``POLLING_JOBS``)
    on its whole selection, or any run whose asset selection holds one (a backfill or a
    *Materialize* that took the delivery assets along)."""
    if run.asset_selection is None:
        return run.job_name in POLLING_JOBS
    return any(key.path[-1] == REPORT_ASSET for key in run.asset_selection)


def polling_run_on_its_way(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """A run that polls (``polls``) and is queued, starting or running, if any. The instance
    is asked for the runs on their way (a few: the queue and the runs in progress); which of
    them poll depends on their asset selection, so that is looked at here."""
    on_its_way = instance.get_runs(filters=dg.RunsFilter(statuses=ON_ITS_WAY))
    return next((run for run in on_its_way if polls(run)), None)


def build_status_sensor(job: Any, connector: ConnectorResource) -> dg.SensorDefinition:
    """Requests a poll run when batches await a status (``pollable_batch_count``: submitted,
    not claimed nor queued) and no run that polls is on its way (``polling_run_on_its_way``),
    at most every ``target.poll_interval_s`` (the longest wait between polls; a run that
    waits for its batches backs off up to it)."""

    @dg.sensor(
        name="status_poll",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches a status poll while submitted batches await their status and "
        "no run that polls is queued or running.",
    )
    def status_poll(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        settings = connector.settings()
        # runs first: a run that polled and ended before this read has committed what it
        # settled, so the count below cannot see batches it already took care of
        busy = polling_run_on_its_way(context.instance)
        pollable = pollable_batch_count(connector.ledger())
        if not pollable:
            return dg.SkipReason("no batch awaits a status")
        if busy is not None:
            return dg.SkipReason(
                f"{pollable} batches await a status; run {busy.run_id} of {busy.job_name} "
                f"({busy.status.value}) polls them"
            )
        last = float(context.cursor or 0)
        current = time.time()
        if current - last < settings.target.poll_interval_s:
            return dg.SkipReason(
                f"{pollable} batches await a status; polled {current - last:.0f}s ago"
            )
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"{POLL}-{int(current)}")],
            cursor=str(current),
        )

    return status_poll


def build_pos_sensor(
    mappings: Sequence[SourceMapping], connector: ConnectorResource
) -> dg.SensorDefinition | None:
    """A run per (mapping, partition day) when a CSV file appears or changes; run keys are
    checksums (an object's ETag when it is launched unread). A tick reads the files'
    metadata and hashes only new or changed ones; files the ledger's file registry already
    holds with their checksum launch nothing (``new_source_files``): starting the sensor on
    a state that has run re-runs no day. The cursor holds per mapping a digest of its
    listing and the files launched but not yet ingested
    (``connector.sources.arrival_cursor``), not every file ever seen."""
    csv_mappings = [m for m in mappings if m.source.kind == "csv"]
    if not csv_mappings:
        return None
    selection = dg.AssetSelection.assets(
        *[mapping_key(m, stage) for m in csv_mappings for stage in STAGES]
    )

    @dg.sensor(
        name="pos_files",
        target=selection,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="New or changed POS export files launch their mapping's partition.",
    )
    def pos_files(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        ledger = connector.ledger()
        try:
            found = new_source_files(
                csv_mappings,
                connector.settings(),
                ArrivalCursor.parse(context.cursor),
                dt.datetime.now(dt.UTC),
                ledger,
            )
        finally:
            ledger.dispose()
        if found.not_yet:
            examples = ", ".join(f"{path} ({day})" for path, day in found.not_yet[:3])
            context.log.info(
                "%d files not launched: their day is not a partition (yet), e.g. %s",
                len(found.not_yet),
                examples,
            )
        context.log.info(
            "%d files listed, %d hashed (new or changed)",
            found.listed,
            len(found.hashed),
        )
        cursor = found.cursor.to_json()
        if not found.runs:  # the cursor may still have learnt a listing or a touched file
            return dg.SensorResult(skip_reason="no new or changed files", cursor=cursor)
        runs = [
            dg.RunRequest(
                run_key=f"{name}:{day}:" + ",".join(files),
                partition_key=day,
                asset_selection=[mapping_key(name, stage) for stage in STAGES],
                tags={"connector/files": ",".join(files)[:200]},
            )
            for (name, day), files in sorted(found.runs.items())
        ]
        return dg.SensorResult(run_requests=runs, cursor=cursor)

    return pos_files
