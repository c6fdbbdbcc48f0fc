"""Daily partitions: a partition key is a day ``YYYY-MM-DD`` in the configured timezone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Window:
    """The half-open time window [start, end) of one or more partition days, timezone-aware."""

    start: dt.datetime
    end: dt.datetime

    def contains(self, moment: dt.datetime) -> bool:
        return self.start <= moment < self.end


def parse_day(key: str) -> dt.date:
    """The day of a partition key; a clear error for anything else."""
    try:
        return dt.date.fromisoformat(key)
    except ValueError as exc:
        raise ValueError(f"partition {key!r} is not a day in the form YYYY-MM-DD") from exc


def day_window(key: str, tz: ZoneInfo) -> Window:
    """[D 00:00, D+1 00:00) in ``tz``; 23 or 25 hours long on DST change days."""
    day = parse_day(key)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return Window(start, end)


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


def check_in_range(days: Sequence[str], first: dt.date, last: dt.date, tz_name: str) -> None:
    """Every day is a partition that exists: from ``first`` to ``last`` (the last day that
    has ended in ``tz_name``); else a ``ValueError`` naming the range."""
    outside = [d for d in days if not first <= parse_day(d) <= last]
    if outside:
        raise ValueError(
            f"partition {', '.join(outside)} does not exist: the partitions are "
            f"{first.isoformat()}..{last.isoformat()} (a day is a partition once it has "
            f"ended in {tz_name}; the first is CONNECTOR_PARTITION_START)"
        )
