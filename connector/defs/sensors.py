"""Sensors: poll statuses while batches are open; launch a partition when a POS file lands."""

import datetime as dt
import json
import time
from collections.abc import Sequence
from typing import Any

import dagster as dg
from sqlalchemy import func, select

from connector.defs.assets import STAGES, mapping_key
from connector.defs.jobs import POLL
from connector.defs.resources import ConnectorResource
from connector.ledger import OPEN_STATES, Batch
from connector.mapping import SourceMapping
from connector.sources.csv import list_source_files
from connector.sources.registry import file_sha256


def build_status_sensor(job: Any, connector: ConnectorResource) -> dg.SensorDefinition:
    @dg.sensor(
        name="status_poll",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches a status poll while submitted batches are open.",
    )
    def status_poll(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        settings = connector.settings()
        with connector.ledger().session() as session:
            open_batches = session.scalar(
                select(func.count()).select_from(Batch).where(Batch.state.in_(OPEN_STATES))
            )
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
    """A run per (mapping, partition day) when a CSV file appears or changes; run keys are checksums."""
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
    def pos_files(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        settings = connector.settings()
        # the newest partition is yesterday; a file of today waits (unrecorded) until its day is over
        newest = (dt.datetime.now(settings.tz).date() - dt.timedelta(days=1)).isoformat()
        oldest = settings.partition_start.isoformat()
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        requests: dict[tuple[str, str], list[str]] = {}
        for mapping in csv_mappings:
            for path, day in list_source_files(mapping, settings):
                if not oldest <= day <= newest:
                    context.log.info("%s: day %s is not a partition (yet); not launched", path, day)
                    continue
                sha, _size = file_sha256(path)
                key = f"{mapping.name}:{path}"
                if seen.get(key) == sha:
                    continue
                seen[key] = sha
                requests.setdefault((mapping.name, day), []).append(f"{path.name}@{sha[:16]}")
        if not requests:
            return dg.SkipReason("no new or changed files")
        runs = [
            dg.RunRequest(
                run_key=f"{name}:{day}:" + ",".join(sorted(files)),
                partition_key=day,
                asset_selection=[mapping_key(name, stage) for stage in STAGES],
                tags={"connector/files": ",".join(sorted(files))[:200]},
            )
            for (name, day), files in sorted(requests.items())
        ]
        return dg.SensorResult(run_requests=runs, cursor=json.dumps(seen, sort_keys=True))

    return pos_files
