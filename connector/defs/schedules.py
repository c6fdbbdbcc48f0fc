"""Schedules: nightly (partition D-1) and an hourly drain inside the off-peak window.

Whether a time of day is inside the window is ``planner.covers``, the rule the drain applies."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg

from connector.defs.jobs import DRAIN, NIGHTLY
from connector.planner import OffPeak, covers


def nightly_time(window: OffPeak) -> dt.time:
    """00:15 when the window covers it (D-1 is complete by then), else the window's start."""
    candidate = dt.time(0, 15)
    return candidate if covers(window, candidate) or window.start is None else window.start


def drain_cron(window: OffPeak) -> str:
    """Minute 30 of every hour whose half-past falls inside the window."""
    hours = [h for h in range(24) if covers(window, dt.time(h, 30))]
    if len(hours) == 24:
        return "30 * * * *"
    return f"30 {','.join(map(str, hours)) or '*'} * * *"


def build_schedules(jobs: dict[str, Any], window: OffPeak, timezone: str) -> list[Any]:
    """The nightly schedule of the partitioned job and the off-peak drain (jobs by name)."""
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
