"""Sensors: poll statuses while batches are open; launch a partition when a POS file lands.

What to launch is decided by plain functions (``reporting.queries.open_batch_count``,
``sources.arrivals.new_source_files``); the sensors keep the cursor and build the requests.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from typing import Any

import dagster as dg

from connector.defs.assets import STAGES, mapping_key
from connector.defs.jobs import POLL
from connector.defs.resources import ConnectorResource
from connector.mapping import SourceMapping
from connector.reporting.queries import open_batch_count
from connector.sources.arrivals import new_source_files


def build_status_sensor(job: Any, connector: ConnectorResource) -> dg.SensorDefinition:
    """Requests a poll run while batches are open, at most every ``target.poll_interval_s``
    (the longest wait between polls; a run that waits for its batches backs off up to it)."""

    @dg.sensor(
        name="status_poll",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches a status poll while submitted batches are open.",
    )
    def status_poll(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        settings = connector.settings()
        open_batches = open_batch_count(connector.ledger())
        if not open_batches:
            return dg.SkipReason("no open batches")
        last = float(context.cursor or 0)
        current = time.time()
        if current - last < settings.target.poll_interval_s:
            return dg.SkipReason(f"{open_batches} open batches; polled {current - last:.0f}s ago")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"{POLL}-{int(current)}")],
            cursor=str(current),
        )

    return status_poll


def build_pos_sensor(
    mappings: Sequence[SourceMapping], connector: ConnectorResource
) -> dg.SensorDefinition | None:
    """A run per (mapping, partition day) when a CSV file appears or changes; run keys are
    checksums. Files the ledger's file registry already holds with their checksum launch
    nothing (``new_source_files``): starting the sensor on a state that has run re-runs no day."""
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
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        found = new_source_files(
            csv_mappings, connector.settings(), seen, dt.datetime.now(dt.UTC), connector.ledger()
        )
        for path, day in found.not_yet:
            context.log.info("%s: day %s is not a partition (yet); not launched", path, day)
        cursor = json.dumps(found.seen, sort_keys=True)
        if not found.runs:  # the cursor may still learn files the ledger had ingested
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
