"""The partition window as a condition on a SQL source's cursor, in the database's own types.

A window is ``[start, end)`` of aware datetimes in CONNECTOR_TIMEZONE (``partitions``).
How a cursor value is compared with it depends on what the value is:

- An aware value (PostgreSQL ``timestamptz``, MySQL/MariaDB ``TIMESTAMP``, text with
  ``Z`` or ``+hh:mm``) is an instant: it is in the window when ``start <= value < end``
  as instants, whatever the session's time zone.
- A naive value (``timestamp``/``DATETIME`` without time zone, text without an offset,
  a date) is local time in CONNECTOR_TIMEZONE: it is in the window when its wall-clock
  time lies in ``[start, end)`` read as local wall-clock times. A day window is so
  ``D 00:00 <= value < D+1 00:00`` on 23 and 25 hour days alike; the repeated hour of
  the autumn change belongs to its day either way.

What the value is comes from the database's own type of the cursor (``CursorKind``):
reflection names it for a ``table``; for a ``query`` the database reports the type of
each result column, and the cursor's is read from that report (``kind_of_code``). The
bounds are then sent in that type:

- ``INSTANT`` (``timestamptz``): aware bounds, which the driver sends with their offset
  (``'2026-10-25 00:00:00+02:00'::timestamptz``), so the comparison is between instants.
  A naive cursor is never compared with an aware bound (PostgreSQL would read it in the
  session's TimeZone), nor an aware cursor with a naive one.
- ``LOCAL`` (``timestamp``, ``DATETIME``): the window's local wall-clock bounds.
- ``UTC_TIMESTAMP`` (MySQL/MariaDB ``TIMESTAMP``, stored in UTC, shown in the session's
  time zone): ``UNIX_TIMESTAMP(cursor)`` (the stored instant, not zoned) against the
  bounds' epoch seconds; a range on the column itself, a day wider on each side than
  any session offset, keeps an index on it usable.
- ``DATE``: the window's local dates. ``EPOCH`` (an integer column): seconds since 1970.
- ``TEXT`` (a text column outside SQLite) is compared as ISO text against the local
  bounds: store a timestamp type, or use SQLite, for text with offsets.
- A query cursor of a type not named above is compared with the local bounds.

SQLite has no datetime type: the value is text, and one column may hold both forms.
Its date functions read ``2026-11-18``, ``2026-11-18 10:00:00``, ``2026-11-18T10:00``,
fractions of a second and a ``Z``/``±hh:mm`` suffix; the cursor is compared as the UTC
text ``strftime('%Y-%m-%d %H:%M:%f', ...)`` gives (``sqlite_instant``): text with an
offset converted by SQLite, naive text shifted by CONNECTOR_TIMEZONE's offset at that
wall-clock time (in a repeated or skipped hour, the offset before the change, as Python's
``fold=0`` takes it). Text SQLite cannot read as a date is compared as text against the
local bounds. A range on the stored text two days wider than the window (more than any
two UTC offsets differ, ``sqlite_range``) keeps an index on the column usable. Rows are
read in the order of their instants (``sqlite_order``). The plan (``sql_plan``) computes
each row's instant once, in a subquery, and filters and orders on it.

That costs SQLite a date computation per row and a sort of the whole rows. Most columns
need neither: when every value of ``sqlite_range`` is naive text of one plain form (a date,
then optionally ``" "`` or ``T`` and ``hh:mm``, ``:ss``, ``.fff``, or ``.ffffff`` ending in
``000``; a real date and hour, ``sqlite_plain``) and the zone keeps one offset over that
range, the text sorts as the instants do and the window is the text range of its local
days (``sqlite_text_range``): the same rows in the same order, straight from an index on the
column. ``sqlite_text_order`` is the aggregate that tells (``sql_plan``); any other value
(an offset, a second form, ``24:00``, ``02-30``, microseconds below the millisecond, which
SQLite rounds) keeps the computation.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from typing import Any

from sqlalchemy import (
    TIMESTAMP,
    Date,
    DateTime,
    Integer,
    String,
    and_,
    case,
    func,
    or_,
    type_coerce,
)

# UTC text as SQLite's strftime writes it: sorts as the instants do
SQLITE_FORMAT = "%Y-%m-%d %H:%M:%f"
MYSQL_DIALECTS = ("mysql", "mariadb")
DAY = dt.timedelta(days=1)  # every UTC offset lies within a day of UTC (SQLite reads ±14:00)


class CursorKind(enum.Enum):
    """What a cursor value is, and so how it is compared with the window (module doc)."""

    INSTANT = "instant"
    UTC_TIMESTAMP = "utc_timestamp"
    LOCAL = "local"
    DATE = "date"
    EPOCH = "epoch"
    TEXT = "text"


# DBAPI type codes of a result column: PostgreSQL type OIDs, the MySQL protocol's field types
_CODES = {
    "postgresql": {1184: CursorKind.INSTANT, 1114: CursorKind.LOCAL, 1082: CursorKind.DATE},
    "mysql": {
        7: CursorKind.UTC_TIMESTAMP,
        12: CursorKind.LOCAL,
        10: CursorKind.DATE,
        14: CursorKind.DATE,
    },
}
_CODES["mariadb"] = _CODES["mysql"]


def kind_of_type(dialect: str, sqltype: Any) -> CursorKind:
    """The kind of a reflected column type."""
    if isinstance(sqltype, DateTime):
        if getattr(sqltype, "timezone", False):
            return CursorKind.INSTANT
        if dialect in MYSQL_DIALECTS and isinstance(sqltype, TIMESTAMP):
            return CursorKind.UTC_TIMESTAMP
        return CursorKind.LOCAL
    if isinstance(sqltype, Date):
        return CursorKind.DATE
    if isinstance(sqltype, Integer):
        return CursorKind.EPOCH
    if isinstance(sqltype, String):
        return CursorKind.TEXT
    return CursorKind.LOCAL


def kind_of_code(dialect: str, type_code: Any) -> CursorKind:
    """The kind of a query's result column, from the type code its DBAPI cursor reports."""
    return _CODES.get(dialect, {}).get(type_code, CursorKind.LOCAL)


def window_filter(dialect: str, kind: CursorKind, col: Any, window: Any) -> list[Any]:
    """Conditions that hold for the rows whose cursor ``col`` lies in ``window``."""
    assert dialect != "sqlite", "SQLite: sqlite_range, sqlite_instant and sqlite_in_window"
    start, end = window.start, window.end
    local_start, local_end = _wall(start), _wall(end)
    if kind is CursorKind.INSTANT:
        aware = type_coerce(col, DateTime(timezone=True))
        return [aware >= start, aware < end]
    if kind is CursorKind.UTC_TIMESTAMP:
        seconds = func.unix_timestamp(col)
        return [
            # read in the session's time zone: a day either way holds every session offset
            col >= _utc(start) - DAY,
            col < _utc(end) + DAY,
            seconds >= int(start.timestamp()),
            seconds < int(end.timestamp()),
        ]
    if kind is CursorKind.DATE:
        return [col >= local_start.date(), col < local_end.date()]
    if kind is CursorKind.EPOCH:
        return [col >= int(start.timestamp()), col < int(end.timestamp())]
    if kind is CursorKind.TEXT:
        return [col >= _iso_text(local_start), col < _iso_text(local_end)]
    return [col >= local_start, col < local_end]


def order_key(dialect: str, col: Any, window: Any) -> list[Any]:
    """What to order the window's rows by, before their keys: their cursors' instants (the
    column's own order on a server; SQLite: ``sqlite_order``)."""
    assert dialect != "sqlite", "SQLite: sqlite_order"
    return [col]


def sqlite_range(raw: Any, window: Any) -> list[Any]:
    """A range on SQLite's stored cursor text that holds every row of ``window``, for an
    index on the column: text with an offset shows a wall-clock time at most 28 hours from
    the local one; whole days, so every form sorts in it."""
    return [
        raw >= (_wall(window.start) - 2 * DAY).date().isoformat(),
        raw < (_wall(window.end) + 3 * DAY).date().isoformat(),
    ]


def sqlite_in_window(instant: Any, raw: Any, window: Any) -> Any:
    """The condition that a row of ``sqlite_range`` lies in ``window``, given its cursor's
    ``instant`` (``sqlite_instant``, computed once) and stored text ``raw``: the instant in
    the window, or for text SQLite cannot read, the text in the local day."""
    exact = and_(
        instant >= _sqlite_text(_utc(window.start)), instant < _sqlite_text(_utc(window.end))
    )
    as_text = and_(raw >= _iso_text(_wall(window.start)), raw < _iso_text(_wall(window.end)))
    return case((instant.is_(None), as_text), else_=exact)


def sqlite_order(instant: Any, raw: Any) -> Any:
    """What to order SQLite's rows by, before their keys: their cursors' instants (to the
    millisecond, ``SQLITE_FORMAT``); text SQLite cannot read sorts as is."""
    return func.coalesce(instant, raw)


# the plain forms by length (``sqlite_plain``): after the date (10 characters, checked on
# its own), the time as GLOB patterns; .ffffff only as whole milliseconds (SQLite rounds)
_TIME = "??????????[ T][0-2][0-9]:[0-5][0-9]"
PLAIN_FORMS = {
    10: None,
    16: _TIME,
    19: _TIME + ":[0-5][0-9]",
    23: _TIME + ":[0-5][0-9].[0-9][0-9][0-9]",
    26: _TIME + ":[0-5][0-9].[0-9][0-9][0-9]000",
}


def sqlite_plain(raw: Any, dates: list[str]) -> Any:
    """Whether SQLite cursor text is naive text of a plain form (``PLAIN_FORMS``) on one of
    ``dates``: whose text order is its wall-clock order, to the millisecond."""
    length = func.length(raw)
    forms = [
        length == size if pattern is None else and_(length == size, raw.op("GLOB")(pattern))
        for size, pattern in PLAIN_FORMS.items()
    ]
    return and_(
        func.typeof(raw) == "text",
        func.substr(raw, 1, 10).in_(dates),
        func.substr(raw, 12, 2) < "24",  # '' for a date
        or_(*forms),
    )


def sqlite_text_order(raw: Any, window: Any) -> Any | None:
    """An aggregate over the rows of ``sqlite_range``: true when they can be read as the
    text range ``sqlite_text_range`` in the order of their text (the module doc says why):
    every value plain (``sqlite_plain``), all of one form (length and separator). None
    when no data can: a window that does not start and end at local midnight, or a zone
    whose offset changes within three days of it."""
    low, high = _wall(window.start), _wall(window.end)
    if low.time() != dt.time(0) or high.time() != dt.time(0):
        return None
    if (
        len(_offsets(window.start.tzinfo, _utc(window.start) - 3 * DAY, _utc(window.end) + 3 * DAY))
        > 1
    ):
        return None
    first, stop = (low - 2 * DAY).date(), (high + 3 * DAY).date()  # as ``sqlite_range``
    dates = [(first + i * DAY).isoformat() for i in range((stop - first).days)]
    plain = func.total(case((sqlite_plain(raw, dates), 1), else_=0))
    length, separator = func.length(raw), func.substr(raw, 11, 1)
    return and_(
        plain == func.count(),
        or_(
            func.count() == 0,
            and_(func.min(length) == func.max(length), func.min(separator) == func.max(separator)),
        ),
    )


def sqlite_text_range(raw: Any, window: Any) -> list[Any]:
    """The window as a range of SQLite cursor text of a plain form: its local days (where
    ``sqlite_text_order`` holds)."""
    return [
        raw >= _wall(window.start).date().isoformat(),
        raw < _wall(window.end).date().isoformat(),
    ]


def sqlite_instant(raw: Any, start: dt.datetime, end: dt.datetime) -> Any:
    """The UTC text (``SQLITE_FORMAT``) of SQLite cursor text; NULL if SQLite cannot read it.

    Naive text is shifted by the offset of the window's zone (CONNECTOR_TIMEZONE) at its
    wall-clock time; the zone's changes are looked up from three days before the window
    to three days after it (the stored-text range ``sqlite_range`` reads lies within).
    """
    wall = func.strftime(SQLITE_FORMAT, raw)
    has_offset = func.substr(raw, 11).op("GLOB")("*[Zz+-]*")
    segments = _offsets(start.tzinfo, _utc(start) - 3 * DAY, _utc(end) + 3 * DAY)
    whens: list[tuple[Any, Any]] = [(has_offset, wall)]
    for (_, offset), (change, after) in itertools.pairwise(segments):
        shifted = func.strftime(SQLITE_FORMAT, raw, _shift(offset))
        # up to the change's wall-clock time, and through the repeated or skipped hour
        whens.append((wall < _sqlite_text(change + max(offset, after)), shifted))
    last = func.strftime(SQLITE_FORMAT, raw, _shift(segments[-1][1]))
    return case(*whens, else_=last)


def _offsets(
    tz: Any, low: dt.datetime, high: dt.datetime
) -> list[tuple[dt.datetime, dt.timedelta]]:
    """The zone's UTC offsets between naive UTC ``low`` and ``high``: (UTC from, offset)."""
    step = dt.timedelta(hours=1)

    def offset(moment: dt.datetime) -> dt.timedelta:
        return moment.replace(tzinfo=dt.UTC).astimezone(tz).utcoffset() or dt.timedelta(0)

    found = [(low, offset(low))]
    moment = low
    while moment < high:
        ahead = moment + step
        if offset(ahead) != found[-1][1]:
            before, after = moment, ahead  # the change is in (before, after]
            while after - before > dt.timedelta(seconds=1):
                middle = before + (after - before) / 2
                middle = middle.replace(microsecond=0)
                if offset(middle) == found[-1][1]:
                    before = middle
                else:
                    after = middle
            found.append((after, offset(after)))
        moment = ahead
    return found


def _wall(moment: dt.datetime) -> dt.datetime:
    """A window bound as local wall-clock time (naive)."""
    return moment.replace(tzinfo=None)


def _utc(moment: dt.datetime) -> dt.datetime:
    """A window bound as UTC wall-clock time (naive)."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def _shift(offset: dt.timedelta) -> str:
    """SQLite's modifier that turns local wall-clock time at ``offset`` into UTC."""
    return f"{-int(offset.total_seconds()):+d} seconds"


def _sqlite_text(moment: dt.datetime) -> str:
    """Naive ``moment`` as ``SQLITE_FORMAT`` text (milliseconds)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _iso_text(moment: dt.datetime) -> str:
    """ISO text that sorts correctly against stored ISO date/datetime text."""
    if moment.time() == dt.time(0):
        return moment.date().isoformat()
    return moment.isoformat(sep=" ")
