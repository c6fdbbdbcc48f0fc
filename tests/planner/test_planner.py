"""Off-peak windows (DST included), quota planning and the backlog projection."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from connector import planner

AMS = ZoneInfo("Europe/Amsterdam")


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=AMS)


@pytest.mark.parametrize(
    ("spec", "moment", "inside"),
    [
        ("22:00-06:00", local(2026, 6, 1, 23, 0), True),
        ("22:00-06:00", local(2026, 6, 1, 5, 59), True),
        ("22:00-06:00", local(2026, 6, 1, 6, 0), False),
        ("22:00-06:00", local(2026, 6, 1, 21, 59), False),
        ("22:00-06:00", local(2026, 6, 1, 22, 0), True),
        ("01:00-05:00", local(2026, 6, 1, 3, 0), True),
        ("01:00-05:00", local(2026, 6, 1, 5, 0), False),
        ("00:00-24:00", local(2026, 6, 1, 12, 0), True),
        ("always", local(2026, 6, 1, 12, 0), True),
        # spring forward 2026-03-29 02:00 -> 03:00
        ("22:00-06:00", local(2026, 3, 29, 1, 30), True),
        ("22:00-06:00", local(2026, 3, 29, 3, 30), True),
        ("22:00-06:00", local(2026, 3, 29, 6, 30), False),
        # fall back 2026-10-25 03:00 -> 02:00; both 02:30s are inside
        ("22:00-06:00", dt.datetime(2026, 10, 25, 2, 30, tzinfo=AMS, fold=0), True),
        ("22:00-06:00", dt.datetime(2026, 10, 25, 2, 30, tzinfo=AMS, fold=1), True),
        ("22:00-06:00", local(2026, 10, 25, 6, 0), False),
    ],
)
def test_in_window(spec: str, moment: dt.datetime, inside: bool) -> None:
    assert planner.in_window(spec, moment, AMS) is inside


@pytest.mark.parametrize(
    ("night", "hours"),
    [
        (dt.date(2026, 3, 28), 7),  # 22:00 CET -> 06:00 CEST
        (dt.date(2026, 10, 24), 9),  # 22:00 CEST -> 06:00 CET
        (dt.date(2026, 6, 1), 8),
    ],
)
def test_window_length_across_dst(night: dt.date, hours: int) -> None:
    start = dt.datetime.combine(night, dt.time(22), tzinfo=AMS)
    end = planner.window_end("22:00-06:00", start, AMS)
    assert end is not None
    assert (end.astimezone(dt.UTC) - start.astimezone(dt.UTC)) == dt.timedelta(hours=hours)


def test_utc_minute_scan_across_dst_days_matches_wall_clock() -> None:
    start = dt.datetime(2026, 3, 28, 0, 0, tzinfo=dt.UTC)
    for minutes in range(0, 3 * 24 * 60, 7):
        moment = start + dt.timedelta(minutes=minutes)
        wall = moment.astimezone(AMS).time()
        expected = wall >= dt.time(22) or wall < dt.time(6)
        assert planner.in_window("22:00-06:00", moment, AMS) is expected, moment


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (local(2026, 6, 1, 12, 0), local(2026, 6, 1, 22, 0)),
        (local(2026, 6, 1, 23, 0), local(2026, 6, 1, 23, 0)),
        (local(2026, 6, 1, 6, 0), local(2026, 6, 1, 22, 0)),
        (local(2026, 3, 29, 12, 0), local(2026, 3, 29, 22, 0)),
    ],
)
def test_next_window_start(moment: dt.datetime, expected: dt.datetime) -> None:
    assert planner.next_window_start("22:00-06:00", moment, AMS) == expected


def test_window_starting_in_the_dst_gap_starts_at_the_gap_end() -> None:
    nxt = planner.next_window_start("02:30-04:00", local(2026, 3, 29, 0, 0), AMS)
    assert nxt.astimezone(dt.UTC) == dt.datetime(2026, 3, 29, 1, 0, tzinfo=dt.UTC)  # 03:00 CEST


@pytest.mark.parametrize("bad", ["22-06", "25:00-06:00", "22:00-06:61", ""])
def test_bad_specs_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="off_peak"):
        planner.parse_off_peak(bad)


def test_quota_day_is_local() -> None:
    moment = dt.datetime(2026, 6, 1, 22, 30, tzinfo=dt.UTC)  # 00:30 on June 2nd in Amsterdam
    assert planner.quota_day(moment, AMS) == dt.date(2026, 6, 2)


def test_plan_submissions_oldest_first_never_over_quota() -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    queued = [
        planner.QueuedBatch(3, 400, t0 + dt.timedelta(minutes=2)),
        planner.QueuedBatch(1, 500, t0),
        planner.QueuedBatch(2, 300, t0 + dt.timedelta(minutes=1)),
        planner.QueuedBatch(4, 10, t0 + dt.timedelta(minutes=3)),
    ]
    now, later = planner.plan_submissions(queued, 1000)
    assert now == [1, 2]
    assert later == [3, 4]


@pytest.mark.parametrize(
    ("backlog", "used", "expected"),
    [
        (0, 0, None),
        (500, 0, dt.date(2026, 6, 1)),
        (1_200_000, 0, dt.date(2026, 6, 2)),
        (200_000, 1_000_000, dt.date(2026, 6, 2)),
        (2_500_000, 500_000, dt.date(2026, 6, 3)),
    ],
)
def test_project_drain_date(backlog: int, used: int, expected: dt.date | None) -> None:
    got = planner.project_drain_date(
        backlog, daily_quota=1_000_000, used_today=used, today=dt.date(2026, 6, 1)
    )
    assert got == expected
