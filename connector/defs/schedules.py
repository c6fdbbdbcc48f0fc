"""Schedules: nightly (partition D-1) and an hourly drain inside the off-peak window."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from connector.defs.jobs import DRAIN, NIGHTLY
from connector.planner import OffPeakWindow


def nightly_time(window: OffPeakWindow) -> dt.time:
    """00:15 when the window covers it (D-1 is complete by then), else the window's start."""
    candidate = dt.time(0, 15)
    return candidate if window.contains_time(candidate) else window.start


def drain_cron(window: OffPeakWindow) -> str:
    """Minute 30 of every hour that starts inside the window."""
    hours = [h for h in range(24) if window.contains_time(dt.time(h, 30))]
    return f"30 {','.join(map(str, hours)) or '*'} * * *"


def build_schedules(jobs: dict[str, dg.UnresolvedAssetJobDefinition], window: OffPeakWindow,
                    timezone: str) -> list[dg.ScheduleDefinition | dg.UnresolvedPartitionedAssetScheduleDefinition]:
    at = nightly_time(window)
    nightly = dg.build_schedule_from_partitioned_job(
        jobs[NIGHTLY],
        name="nightly",
        hour_of_day=at.hour,
        minute_of_hour=at.minute,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Partition D-1 of every mapping, delivered in the off-peak window.",
    )
    drain = dg.ScheduleDefinition(
        name="off_peak_drain",
        job=jobs[DRAIN],
        cron_schedule=drain_cron(window),
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Drains batches queued by daytime backfills, inside the off-peak window.",
    )
    return [nightly, drain]
