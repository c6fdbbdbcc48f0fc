"""A database value as the exact text delivered downstream, from either reader.

The rule is ``value_text``, on the Python value a DB-API driver returns (the SQLAlchemy
reader): NULL stays null, text as is, integers in decimal, ``Decimal`` in plain notation,
floats by their shortest repr, booleans ``true``/``false``, dates and times ISO 8601 as
``isoformat`` writes them (``2026-11-19T08:00:00``, ``.123000`` when there are
microseconds, ``+01:00`` for an aware value), bytes as UTF-8 (undecodable bytes as
``\\xNN``). The Arrow reader (ADBC) gets the same values as Arrow columns; the functions
below write them as the same text, without a Python object per value where Arrow can:

- PostgreSQL (``postgres_text``): each column by its PostgreSQL type (the ADBC driver names
  it in the field's metadata). A ``timestamptz`` is written in the session's TimeZone, as
  psycopg2 returns it. ``infinity`` values are written as psycopg2 returns them
  (``datetime.max`` / ``min``, ``date.max`` / ``min``).
- SQLite (``sqlite_text``): the Arrow reader selects every value as text (``sql_arrow``):
  text as stored, integers by SQLite in decimal, REALs by SQLite's exact text, which is
  rewritten here as Python's ``repr`` (a mask says which), bytes as stored.

A column of a type ``postgres_text`` has no rule for (``jsonb``, ``interval`` ...) is read
with SQLAlchemy (``sql_paths``), whose text for it stays as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TextRule = Callable[[pa.Array], pa.Array]


class ArrowUnavailable(Exception):
    """The source's columns cannot all be read exactly as Arrow; the message says why."""


def value_text(value: Any) -> str | None:
    """A database value as the exact text delivered downstream."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    return str(value)


def float_text(value: float) -> str:
    """A float's text: its shortest repr, but a zero is ``0.0`` whatever its sign (SQLite
    cannot report the sign of a zero, so no reader could keep it alike)."""
    return "0.0" if value == 0 else repr(value)


def column_array(values: Sequence[Any]) -> pa.Array:
    """A string array of database values (fast when they already are text or integers)."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    if all(type(v) is int or v is None for v in values):  # not bool, not float
        # integers (keys, counts): Arrow's cast writes them as str(int) does
        try:
            return pa.array(values, pa.int64()).cast(pa.string())
        except (pa.ArrowInvalid, OverflowError):  # beyond 64 bits
            pass
    return pa.array([value_text(v) for v in values], pa.string())


class OutOfRange(ValueError):
    """A date or time psycopg2 cannot return either (before year 1 or after 9999)."""


# -- PostgreSQL (ADBC) --------------------------------------------------------------------

POSTGRES_TYPE_KEY = b"POSTGRESQL:type"
# PostgreSQL counts from 2000-01-01; the driver moves its infinities by the difference to
# 1970 as it does any value, so they arrive as these (wrapped) numbers
_PG_EPOCH_US = 946_684_800_000_000
_PG_EPOCH_DAYS = 10_957
_TS_INFINITY = -(2**63) + _PG_EPOCH_US - 1
_TS_MINUS_INFINITY = -(2**63) + _PG_EPOCH_US
_DATE_INFINITY = -(2**31) + _PG_EPOCH_DAYS - 1
_DATE_MINUS_INFINITY = -(2**31) + _PG_EPOCH_DAYS
_MAX = dt.datetime.max.isoformat()  # psycopg2's 'infinity'
_MIN = dt.datetime.min.isoformat()
_EPOCH, _US = dt.datetime(1970, 1, 1), dt.timedelta(microseconds=1)
_YEAR_1 = (dt.datetime.min - _EPOCH) // _US  # microseconds since 1970
_YEAR_10000 = (dt.datetime.max - _EPOCH) // _US + 1
_DAY_US = 86_400 * 10**6


def postgres_text(type_name: str, zone: str) -> TextRule | None:
    """How a column of PostgreSQL type ``type_name`` becomes text (``zone``: the session's
    TimeZone, for ``timestamptz``), or None: no exact rule."""
    if type_name in ("text", "varchar", "bpchar", "name", "char"):
        return _string
    if type_name in ("int2", "int4", "int8", "bool"):
        return _cast_text
    if type_name == "numeric":
        return _numeric_text
    if type_name == "float8":  # the server's shortest exact text (PostgreSQL 12+), as repr
        return _float_text
    if type_name == "date":
        return _date_text
    if type_name == "time":
        return _time_text
    if type_name == "timestamp":
        return _timestamp_text
    if type_name == "timestamptz" and zone_known(zone):
        return lambda arr: _timestamptz_text(arr, zone)
    if type_name == "uuid":
        return _uuid_text
    return None


def zone_known(zone: str) -> bool:
    """Whether Arrow can convert instants to ``zone`` (its time zone database has it)."""
    try:
        pc.local_timestamp(pa.array([0], pa.timestamp("us", tz=zone)))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _storage(arr: pa.Array) -> pa.Array:
    return arr.storage if isinstance(arr, pa.ExtensionArray) else arr


def _string(arr: pa.Array) -> pa.Array:
    arr = _storage(arr)
    return arr if arr.type == pa.string() else arr.cast(pa.string())


def _cast_text(arr: pa.Array) -> pa.Array:
    return arr.cast(pa.string())  # integers as str(int) writes them; "true"/"false"


def _numeric_text(arr: pa.Array) -> pa.Array:
    """PostgreSQL's own text of a numeric (plain notation), but ``Decimal``'s spelling of
    the special values."""
    text = _string(arr)
    for driver, decimal in (("nan", "NaN"), ("inf", "Infinity"), ("-inf", "-Infinity")):
        text = pc.if_else(pc.equal(text, driver), decimal, text)
    return text


def _float_text(arr: pa.Array) -> pa.Array:
    # Arrow writes 3.0 as "3" and 1e-05 as "1e-5": repr, value by value
    return pa.array([None if v is None else float_text(v) for v in arr.to_pylist()], pa.string())


def _date_text(arr: pa.Array) -> pa.Array:
    days = arr.cast(pa.int32())
    high, low = pc.equal(days, _DATE_INFINITY), pc.equal(days, _DATE_MINUS_INFINITY)
    special = pc.or_(high, low)
    finite = pc.if_else(special, pa.scalar(0, pa.int32()), days)
    as_us = pc.multiply(finite.cast(pa.int64()), _DAY_US)
    _check_range(as_us, "date")
    text = finite.cast(pa.date32()).cast(pa.string())
    text = pc.if_else(high, dt.date.max.isoformat(), text)
    return pc.if_else(low, dt.date.min.isoformat(), text)


def _time_text(arr: pa.Array) -> pa.Array:
    micros = arr.cast(pa.time64("us")).cast(pa.int64())
    micros = pc.subtract(micros, pc.multiply(pc.divide(micros, _DAY_US), _DAY_US))  # 24:00
    seconds = pc.divide(micros, 10**6)
    base = seconds.cast(pa.int32()).cast(pa.time32("s")).cast(pa.string())
    return _with_fraction(base, pc.subtract(micros, pc.multiply(seconds, 10**6)))


def _timestamp_text(arr: pa.Array) -> pa.Array:
    micros = arr.cast(pa.int64())
    high, low = pc.equal(micros, _TS_INFINITY), pc.equal(micros, _TS_MINUS_INFINITY)
    finite = pc.if_else(pc.or_(high, low), 0, micros)
    _check_range(finite, "timestamp")
    text = _iso(finite)
    return pc.if_else(low, _MIN, pc.if_else(high, _MAX, text))


def _timestamptz_text(arr: pa.Array, zone: str) -> pa.Array:
    micros = arr.cast(pa.int64())
    high, low = pc.equal(micros, _TS_INFINITY), pc.equal(micros, _TS_MINUS_INFINITY)
    finite = pc.if_else(pc.or_(high, low), 0, micros)
    _check_range(finite, "timestamptz")
    local = pc.local_timestamp(finite.cast(pa.timestamp("us", tz=zone))).cast(pa.int64())
    text = pc.binary_join_element_wise(_iso(local), _offset(pc.subtract(local, finite)), "")
    # psycopg2's infinities carry UTC whatever the session's zone
    return pc.if_else(low, _MIN + "+00:00", pc.if_else(high, _MAX + "+00:00", text))


def _check_range(micros: pa.Array, type_name: str) -> None:
    early = pc.any(pc.less(micros, _YEAR_1)).as_py()
    late = pc.any(pc.greater_equal(micros, _YEAR_10000)).as_py()
    if early or late:
        raise OutOfRange(f"a {type_name} outside the years 1-9999 (psycopg2 cannot read it either)")


def _iso(micros: pa.Array) -> pa.Array:
    """``datetime.isoformat`` of naive microseconds since 1970: ``T``, and the fraction
    only when there is one. (Arrow's cast writes ``2026-11-19 08:00:00``, some ten times
    faster than its ``strftime``.)"""
    seconds = pc.floor_temporal(micros.cast(pa.timestamp("us")), unit="second")
    text = pc.utf8_replace_slice(seconds.cast(pa.timestamp("s")).cast(pa.string()), 10, 11, "T")
    return _with_fraction(text, pc.subtract(micros, seconds.cast(pa.int64())))


def _with_fraction(base: pa.Array, micros: pa.Array) -> pa.Array:
    fraction = pc.utf8_lpad(micros.cast(pa.string()), width=6, padding="0")
    return pc.if_else(pc.equal(micros, 0), base, pc.binary_join_element_wise(base, fraction, "."))


def _offset(micros: pa.Array) -> pa.Array:
    """A UTC offset as ``isoformat`` writes it: ``+01:00``, ``-05:00``, ``+00:19:32``."""
    seconds = pc.divide(micros, 10**6)
    sign = pc.if_else(pc.less(seconds, 0), "-", "+")
    size = pc.abs(seconds)
    hours = pc.divide(size, 3600)
    minutes = pc.divide(pc.subtract(size, pc.multiply(hours, 3600)), 60)
    rest = pc.subtract(size, pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)))

    def two(n: pa.Array) -> pa.Array:
        return pc.utf8_lpad(n.cast(pa.string()), width=2, padding="0")

    text = pc.binary_join_element_wise(sign, two(hours), ":", two(minutes), "")
    with_seconds = pc.binary_join_element_wise(text, two(rest), ":")
    return pc.if_else(pc.equal(rest, 0), text, with_seconds)


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
# where each of a UUID's 16 bytes goes in its 36 characters (dashes at 8, 13, 18 and 23)
_UUID_AT = np.array([i for i in range(36) if i not in (8, 13, 18, 23)][::2])


def _uuid_text(arr: pa.Array) -> pa.Array:
    """The canonical lowercase spelling (psycopg2 returns a uuid as that text)."""
    raw = _storage(arr)
    n = len(raw)
    data = np.frombuffer(raw.buffers()[1], np.uint8)[raw.offset * 16 : (raw.offset + n) * 16]
    data = data.reshape(n, 16)
    chars = np.full((n, 36), ord("-"), np.uint8)
    chars[:, _UUID_AT] = _HEX[data >> 4]
    chars[:, _UUID_AT + 1] = _HEX[data & 15]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    text = pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())]
    )
    return pc.if_else(raw.is_valid(), text, pa.scalar(None, pa.string()))


# -- SQLite (ADBC) ------------------------------------------------------------------------


def sqlite_text(text: pa.Array, reals: pa.Array | None, *, boolean: bool = False) -> pa.Array:
    """A column the SQLite reader selected as text (``sql_arrow``) as ``value_text`` writes
    it: ``reals`` (bool per row, or None: no REAL can be stored) marks the values SQLite
    wrote from a REAL; ``boolean``: the column is read as SQLAlchemy's Boolean, whose values
    SQLite wrote as ``1``/``0``."""
    text = _utf8(_storage(text))
    if boolean:
        return pc.if_else(
            pc.equal(text, "1"), "true", pc.if_else(pc.equal(text, "0"), "false", text)
        )
    if reals is None or not pc.any(reals).as_py():
        return text
    values = text.to_pylist()
    for i in np.flatnonzero(reals.fill_null(False).to_numpy(zero_copy_only=False)):
        values[i] = float_text(float(values[i]))
    return pa.array(values, pa.string())


def _utf8(arr: pa.Array) -> pa.Array:
    """Text or bytes as a valid UTF-8 string array: bytes SQLite stored as a BLOB come as
    they are, and the ones that are no UTF-8 are written as ``value_text`` writes bytes."""
    binary = pa.binary() if arr.type in (pa.string(), pa.binary()) else pa.large_binary()
    try:
        text = arr.cast(pa.string()) if arr.type != pa.string() else arr
        text.validate(full=True)
    except pa.ArrowInvalid:
        raw = arr.view(binary) if arr.type in (pa.string(), pa.large_string()) else arr
        return pa.array([value_text(v) for v in raw.to_pylist()], pa.string())
    return text
