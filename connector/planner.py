"""When to submit and how much: the off-peak window and the daily quota. Pure functions.

Every function takes ``now`` (timezone-aware) explicitly; local times are computed with
``zoneinfo`` so a window is right on DST change days: ``22:00-06:00`` on the night the clocks
go back lasts 9 hours, on the night they go forward 7 hours; a wall-clock time that does not
exist (02:30 on the spring-forward day) starts the window at the first existing instant after it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

_ALWAYS = {"always", "00:00-24:00", "0:00-24:00", "*"}
_SPEC = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class OffPeak:
    """A daily local-time window ``[start, end)``; ``end <= start`` crosses midnight."""

    start: dt.time | None  # None = always open
    end: dt.time | None

    @property
    def always(self) -> bool:
        return self.start is None


def parse_off_peak(spec: str) -> OffPeak:
    """``"22:00-06:00"``, ``"01:00-05:30"``, ``"00:00-24:00"`` or ``"always"``."""
    text = spec.strip().lower()
    if text in _ALWAYS:
        return OffPeak(None, None)
    match = _SPEC.match(text)
    if not match:
        raise ValueError(f"off_peak {spec!r}: expected HH:MM-HH:MM or 'always'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if (h2, m2) == (24, 0):
        h2 = 0
        if (h1, m1) == (0, 0):
            return OffPeak(None, None)
    if not (0 <= h1 < 24 and 0 <= h2 < 24 and m1 < 60 and m2 < 60):
        raise ValueError(f"off_peak {spec!r}: hours 00-23 (or end 24:00), minutes 00-59")
    start, end = dt.time(h1, m1), dt.time(h2, m2)
    if start == end:
        return OffPeak(None, None)
    return OffPeak(start, end)


def _local_instant(day: dt.date, at: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The instant of wall-clock ``day at`` in ``tz``; a skipped time moves to the gap's end."""
    naive = dt.datetime.combine(day, at)
    for _ in range(24 * 60):
        aware = naive.replace(tzinfo=tz, fold=0)
        # a wall time inside a spring-forward gap does not round-trip through UTC
        if aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) == naive:
            return aware
        naive = naive.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    raise ValueError(f"no valid local time near {day} {at} in {tz}")


def _windows_around(
    window: OffPeak, now: dt.datetime, tz: ZoneInfo
) -> list[tuple[dt.datetime, dt.datetime]]:
    assert window.start is not None and window.end is not None
    local_day = now.astimezone(tz).date()
    spans = []
    for offset in (-1, 0, 1, 2):
        day = local_day + dt.timedelta(days=offset)
        end_day = day + dt.timedelta(days=1) if window.end <= window.start else day
        spans.append(
            (_local_instant(day, window.start, tz), _local_instant(end_day, window.end, tz))
        )
    return spans


def covers(window: OffPeak, at: dt.time) -> bool:
    """Whether the local wall-clock time ``at`` falls inside the daily window ``[start, end)``."""
    if window.start is None or window.end is None:
        return True
    if window.start < window.end:
        return window.start <= at < window.end
    return at >= window.start or at < window.end


def _unique_wall_time(local: dt.datetime) -> bool:
    """False for a wall-clock time the clocks pass twice (they went back) or never (skipped)."""
    other = local.replace(fold=1 - local.fold)
    naive = local.replace(tzinfo=None)
    return (
        other.utcoffset() == local.utcoffset()
        and local.astimezone(dt.UTC).astimezone(local.tzinfo).replace(tzinfo=None) == naive
    )


def in_window(window: OffPeak | str, now: dt.datetime, tz: ZoneInfo | str) -> bool:
    """True when ``now`` lies in the off-peak window: its local wall-clock time is ``covers``ed,
    or, when that wall-clock time occurs twice or not at all, it lies in a window's instants."""
    window, tz = _coerce(window, tz)
    local = now.astimezone(tz)
    if window.always or _unique_wall_time(local):
        return covers(window, local.time())
    return any(start <= now < end for start, end in _windows_around(window, now, tz))


def next_window_start(window: OffPeak | str, now: dt.datetime, tz: ZoneInfo | str) -> dt.datetime:
    """``now`` when inside the window, else the start of the next one (aware, in ``tz``)."""
    window, tz = _coerce(window, tz)
    if window.always:
        return now.astimezone(tz)
    spans = _windows_around(window, now, tz)
    for start, end in spans:
        if start <= now < end:
            return now.astimezone(tz)
    return min(start for start, _ in spans if start > now).astimezone(tz)


def window_end(window: OffPeak | str, now: dt.datetime, tz: ZoneInfo | str) -> dt.datetime | None:
    """The end of the window ``now`` is in; None when always open or outside."""
    window, tz = _coerce(window, tz)
    if window.always:
        return None
    for start, end in _windows_around(window, now, tz):
        if start <= now < end:
            return end.astimezone(tz)
    return None


def _coerce(window: OffPeak | str, tz: ZoneInfo | str) -> tuple[OffPeak, ZoneInfo]:
    return (
        parse_off_peak(window) if isinstance(window, str) else window,
        ZoneInfo(tz) if isinstance(tz, str) else tz,
    )


def quota_day(now: dt.datetime, tz: ZoneInfo | str) -> dt.date:
    """The day a submission at ``now`` counts against (local date in the configured timezone)."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return now.astimezone(zone).date()


@dataclass(frozen=True)
class QueuedBatch:
    """What the planner needs to know about a queued batch."""

    id: int
    rows: int
    created_at: dt.datetime


def plan_submissions(queued: list[QueuedBatch], remaining: int) -> tuple[list[int], list[int]]:
    """(ids to submit now, ids that wait): oldest first; stop at the first batch that does not fit.

    Stopping (rather than skipping to smaller, younger batches) keeps the order oldest first, so
    an old large batch cannot starve behind a stream of small ones.
    """
    submit: list[int] = []
    left = remaining
    ordered = sorted(queued, key=lambda b: (b.created_at, b.id))
    for i, batch in enumerate(ordered):
        if batch.rows > left:
            return submit, [b.id for b in ordered[i:]]
        submit.append(batch.id)
        left -= batch.rows
    return submit, []


def project_drain_date(
    backlog_rows: int,
    *,
    daily_quota: int,
    used_today: int,
    today: dt.date,
    largest_batch: int = 0,
) -> dt.date | None:
    """The local day the backlog is expected to be fully submitted at ``daily_quota`` rows a day.

    Today's remaining quota is used first; whole batches only (a day holds at most
    ``daily_quota`` rows, less when the largest batch does not fit the remainder, which the
    projection approximates by losing up to one largest batch per day). None when nothing waits.
    """
    if backlog_rows <= 0:
        return None
    per_day = max(daily_quota - max(min(largest_batch, daily_quota) - 1, 0), 1)
    left_today = max(daily_quota - used_today, 0)
    if backlog_rows <= left_today:
        return today
    rest = backlog_rows - left_today
    return today + dt.timedelta(days=math.ceil(rest / per_day))
