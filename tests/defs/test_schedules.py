"""Schedule timing derived from the off-peak window, and the nightly partition (D-1)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from connector.defs.schedules import drain_cron, nightly_time
from connector.planner import covers, parse_off_peak


@pytest.mark.parametrize(
    ("spec", "at", "inside"),
    [
        ("22:00-06:00", dt.time(23, 0), True),
        ("22:00-06:00", dt.time(5, 59), True),
        ("22:00-06:00", dt.time(6, 0), False),
        ("22:00-06:00", dt.time(12, 0), False),
        ("01:00-05:00", dt.time(0, 30), False),
        ("01:00-05:00", dt.time(1, 0), True),
        ("always", dt.time(12, 0), True),
    ],
)
def test_covers(spec: str, at: dt.time, inside: bool) -> None:
    assert covers(parse_off_peak(spec), at) is inside


def test_nightly_runs_after_midnight_inside_window() -> None:
    assert nightly_time(parse_off_peak("22:00-06:00")) == dt.time(0, 15)
    assert nightly_time(parse_off_peak("01:00-05:00")) == dt.time(1, 0)


def test_drain_cron_hours_inside_window() -> None:
    assert drain_cron(parse_off_peak("22:00-02:00")) == "30 0,1,22,23 * * *"
    assert drain_cron(parse_off_peak("always")) == "30 * * * *"


def test_nightly_schedule_requests_yesterday_in_configured_timezone(connector_defs) -> None:
    defs = connector_defs
    schedule = defs.resolve_schedule_def("nightly")
    # 00:15 on 22 Nov in Amsterdam is still 21 Nov in UTC: the partition must follow Amsterdam.
    when = dt.datetime(2026, 11, 22, 0, 15, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    # the context opens an instance of its own from the ref and sets Dagster's current
    # defs-state storage to it: closed here, or a later garbage collection of the context
    # restores the storage of the instance below, dead by then, and a later test's
    # Definitions fail with "Attempted to resolve undefined DagsterInstance weakref"
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as context,
    ):
        result = schedule.evaluate_tick(context)
    keys = [r.partition_key for r in result.run_requests or []]
    assert keys == ["2026-11-21"]
    assert schedule.execution_timezone == "Europe/Amsterdam"
