"""The fast path for ISO datetimes: a column typed as ``value_typer`` types a datetime.

``fast_datetime(col, zone)`` gives, for each value of the shape
``YYYY-MM-DD[THH:MM:SS[Z|±HH:MM]]``, exactly the text ``value_typer`` gives for a
``datetime`` param without ``input_format`` or ``format`` in ``zone``; and null for every
value it is not sure of (other shapes, DST gaps and folds, years outside 1000..9999),
which the caller types in Python. The values' bytes are read as a fixed-width matrix
(numpy), so no value becomes a Python object.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import lru_cache, partial

import numpy as np
import pyarrow as pa

from connector.buffers import value_offsets


def _offset_seconds(offset: dt.timedelta | None) -> int | None:
    """An offset in whole minutes as seconds; None for offsets with seconds (not sure)."""
    if offset is None:
        return None
    seconds = int(offset.total_seconds())
    return None if seconds % 60 else seconds


def _day_instants(day: dt.date) -> list[dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day)
    return [start + dt.timedelta(minutes=15 * i) for i in range(96)] + [
        start + dt.timedelta(hours=23, minutes=59, seconds=59)
    ]


@lru_cache(maxsize=65536)
def _local_day_offset(zone: dt.tzinfo, ordinal: int) -> int | None:
    """The zone's offset (seconds) on a local day (a proleptic ordinal) when one offset
    holds all day: no gap, no overlap."""
    try:
        instants = _day_instants(dt.date.fromordinal(ordinal))
        offsets = {
            t.replace(tzinfo=zone, fold=fold).utcoffset() for t in instants for fold in (0, 1)
        }
    except (ValueError, OverflowError):
        return None
    return _offset_seconds(offsets.pop()) if len(offsets) == 1 else None


@lru_cache(maxsize=65536)
def _utc_day_offset(zone: dt.tzinfo, ordinal: int) -> int | None:
    """The zone's offset (seconds) all through a UTC day, when it does not change that day."""
    try:
        instants = _day_instants(dt.date.fromordinal(ordinal))
        offsets = {t.replace(tzinfo=dt.UTC).astimezone(zone).utcoffset() for t in instants}
    except (ValueError, OverflowError):
        return None
    return _offset_seconds(offsets.pop()) if len(offsets) == 1 else None


# ISO text: YYYY-MM-DDTHH:MM:SS then Z or ±HH:MM. Per byte position ("d" = a digit, else
# the byte that must stand there); the suffix sign may be "+" or "-" (checked apart).
_ISO_TEMPLATE = "dddd-dd-ddTdd:dd:dd+dd:dd"
_ISO_WINDOW = 32  # bytes read per value: the template padded to four 64-bit words


def _iso_words(per_byte: Callable[[int, str], int]) -> np.ndarray:
    """Four little-endian 64-bit words, byte ``i`` = ``per_byte(i, template char)``
    (positions past the template: 0)."""
    raw = bytes(
        per_byte(i, _ISO_TEMPLATE[i]) if i < len(_ISO_TEMPLATE) else 0 for i in range(_ISO_WINDOW)
    )
    return np.frombuffer(raw, dtype="<u8")


# A byte fits when (byte ^ EXPECT) & HIGH is 0 (a digit's high nibble is 3, other bytes are
# the template's) and, for digits, ((byte & LOW) + SIX) & CARRY is 0 (low nibble <= 9; the
# sum stays inside its byte). The sign at 19 is checked apart (HIGH 0 there).
_ISO_EXPECT = _iso_words(lambda i, c: 0x30 if c == "d" else ord(c))
_ISO_HIGH = _iso_words(lambda i, c: 0xF0 if c == "d" else (0 if i == 19 else 0xFF))
_ISO_LOW = _iso_words(lambda i, c: 0x0F if c == "d" else 0)
_ISO_SIX = _iso_words(lambda i, c: 0x06 if c == "d" else 0)
_ISO_CARRY = _iso_words(lambda i, c: 0x10 if c == "d" else 0)
# per value length: the bytes that count (the first `length`)
_ISO_LENGTH = np.stack(
    [np.frombuffer(bytes([0xFF] * k + [0] * (_ISO_WINDOW - k)), dtype="<u8") for k in range(26)]
)
# (first byte, width) of year, month, day, hour, minute, second, offset hours, minutes
_ISO_FIELDS = [(0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2), (20, 2), (23, 2)]
# "00".."99" as two-byte values, written into the output rows field by field
_PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), dtype="V2")
_ISO_OUT_FIELDS = [  # (name, numpy format, byte offset) of an output row
    ("century", "V2", 0),
    ("year", "V2", 2),
    ("d1", "u1", 4),
    ("month", "V2", 5),
    ("d2", "u1", 7),
    ("day", "V2", 8),
    ("t", "u1", 10),
    ("hour", "V2", 11),
    ("c1", "u1", 13),
    ("minute", "V2", 14),
    ("c2", "u1", 16),
    ("second", "V2", 17),
    ("sign", "u1", 19),
    ("offset_hour", "V2", 20),
    ("c3", "u1", 22),
    ("offset_minute", "V2", 23),
]
_ISO_OUT = np.dtype(
    {
        "names": [f[0] for f in _ISO_OUT_FIELDS],
        "formats": [f[1] for f in _ISO_OUT_FIELDS],
        "offsets": [f[2] for f in _ISO_OUT_FIELDS],
        "itemsize": 25,
    }
)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_MIDNIGHT = np.frombuffer(b"T00:00:00", dtype=np.uint8)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _digits_value(by_position: np.ndarray, first: int, width: int) -> np.ndarray:
    """The number written by ``width`` digits from ``first`` (rows of byte values 0..9;
    other bytes give garbage, on rows not ok anyway), as int64."""
    value = by_position[first].astype(np.int64)
    for k in range(1, width):
        value = value * 10 + by_position[first + k]
    return value


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(m > 2, m - 3, m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (m <= 2), m, d


def _per_day(days: np.ndarray, fn: Callable[[int], int | None]) -> tuple[np.ndarray, np.ndarray]:
    """(offset seconds, known mask) of ``fn`` per row's day, called once per distinct day."""
    low = int(days.min())
    span = int(days.max()) - low + 1
    if span > 4 * len(days) + 1024:  # scattered days: sort them
        distinct, at = np.unique(days, return_inverse=True)
    else:  # a table over the days' range: no sort
        present = np.zeros(span, dtype=bool)
        present[days - low] = True
        distinct = np.flatnonzero(present) + low
        index = np.zeros(span, dtype=np.int64)
        index[distinct - low] = np.arange(len(distinct))
        at = index[days - low]
    found = [fn(int(day) + _EPOCH_ORDINAL) for day in distinct]
    known = np.array([f is not None for f in found], dtype=bool)
    seconds = np.array([f or 0 for f in found], dtype=np.int64)
    return seconds[at], known[at]


def fast_datetime(col: pa.Array, zone: dt.tzinfo) -> pa.Array:
    """ISO ``YYYY-MM-DD[THH:MM:SS[Z|±HH:MM]]`` in ``zone``, as ``value_typer`` writes a datetime.

    The bytes are read as a fixed-width matrix (numpy, no value is a Python object): a
    value is taken only when every byte is in its place and the date and time exist (02-30
    is refused, as ``fromisoformat`` refuses it), its year and its converted year lie in
    1000..9999, and its day's offset in ``zone`` is the same all day (else it is typed in
    Python, where DST gaps and folds are resolved).
    """
    n = len(col)
    if col.type != pa.string():
        col = col.cast(pa.string())
    data_buf = col.buffers()[2]
    offsets = value_offsets(col)
    lengths = np.diff(offsets)
    shaped = (lengths == 19) | (lengths == 10) | (lengths == 25) | (lengths == 20)
    if col.null_count:
        shaped &= col.is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(shaped)
    if not len(rows) or data_buf is None:
        return pa.nulls(n, pa.string())
    data = np.frombuffer(data_buf, dtype=np.uint8)
    starts = offsets[rows]
    if int(starts[-1]) + _ISO_WINDOW > len(data):  # room for a window after the last start
        data = np.concatenate((data[: int(offsets[-1])], np.zeros(_ISO_WINDOW, dtype=np.uint8)))
    # one row of 32 bytes per candidate value (the bytes past its end are not used)
    m = np.lib.stride_tricks.sliding_window_view(data, _ISO_WINDOW)[starts]
    size = lengths[rows]
    # every byte of the first `size` in its place (a digit where the template has one,
    # else the template's byte), tested eight bytes at a time
    words = m.view("<u8")
    wrong = (words ^ _ISO_EXPECT) & _ISO_HIGH
    wrong |= ((words & _ISO_LOW) + _ISO_SIX) & _ISO_CARRY
    wrong &= _ISO_LENGTH[size]
    ok = (wrong[:, 0] | wrong[:, 1] | wrong[:, 2] | wrong[:, 3]) == 0
    sign = m[:, 19]
    # an offset's sign (+ -) opens a 25-byte value, a Z closes a 20-byte one: "…:00+" is
    # no ISO datetime (value_typer refuses it)
    ok &= (
        (size < 20) | (((sign == 43) | (sign == 45)) & (size == 25)) | ((sign == 90) & (size == 20))
    )
    # digit values by position, one contiguous row each (not a matrix product: numpy would
    # hand it to OpenBLAS, whose threads then spin)
    by_position = np.ascontiguousarray(m[:, :25].T) - np.uint8(48)
    year, month, day, hour, minute, second, given_h, given_m = (
        _digits_value(by_position, first, width) for first, width in _ISO_FIELDS
    )
    full = size >= 19
    hour, minute, second = hour * full, minute * full, second * full
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    ok &= (month >= 1) & (month <= 12)
    month = np.clip(month, 1, 12)  # the others are not ok already: kept in the tables' range
    month_days = _MONTH_DAYS[month] + (leap & (month == 2))
    ok &= (day >= 1) & (day <= month_days)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    with_offset = size == 25
    ok &= ~with_offset | ((given_h <= 23) & (given_m <= 59))
    given = np.where(with_offset, (given_h * 3600 + given_m * 60) * np.where(sign == 45, -1, 1), 0)

    days = _days_from_civil(year, month, day)
    local = days * 86400 + hour * 3600 + minute * 60 + second
    aware = size >= 20
    # naive values: their local day's offset; aware ones: the zone's offset on their UTC day
    utc = local - given
    day_of = np.where(aware, utc // 86400, days)
    offset = np.zeros(len(rows), dtype=np.int64)
    known = np.zeros(len(rows), dtype=bool)
    for kind, fn in ((~aware, _local_day_offset), (aware, _utc_day_offset)):
        pick = ok & kind
        if pick.any():
            offset[pick], known[pick] = _per_day(day_of[pick], partial(fn, zone))
    ok &= known
    # naive values of a 4-digit year from 1000 are written back as they came (a date alone
    # at T00:00:00), only their offset added; aware ones are converted into the zone
    ok &= aware | (year >= 1000)
    keep = np.flatnonzero(ok)
    converted = aware[keep]
    out = np.empty((len(keep), 25), dtype=np.uint8)
    text = out.view(_ISO_OUT).ravel()
    if not converted.all():
        at = np.flatnonzero(~converted)
        source = keep[at]
        out[at, :19] = m[source, :19]
        out[at[size[source] == 10], 10:19] = _MIDNIGHT
    if converted.any():
        at = np.flatnonzero(converted)
        source = keep[at]
        moment = utc[source] + offset[source]
        out_days = moment // 86400
        y, mo, d = _civil_from_days(out_days)
        clock = moment - out_days * 86400
        for name, values in (
            ("century", y // 100),
            ("year", y % 100),
            ("month", mo),
            ("day", d),
            ("hour", clock // 3600),
            ("minute", clock // 60 % 60),
            ("second", clock % 60),
        ):
            text[name][at] = _PAIRS[values]
        for name, byte in (("d1", 45), ("d2", 45), ("t", 84), ("c1", 58), ("c2", 58)):
            text[name][at] = byte
        sure_year = (y >= 1000) & (y <= 9999)
        if not sure_year.all():
            mine = np.ones(len(keep), dtype=bool)
            mine[at[~sure_year]] = False
            keep, out = keep[mine], out[mine]
            text = out.view(_ISO_OUT).ravel()
    if not len(keep):
        return pa.nulls(n, pa.string())
    shift = np.abs(offset[keep]) // 60
    text["offset_hour"] = _PAIRS[shift // 60]
    text["offset_minute"] = _PAIRS[shift % 60]
    text["c3"] = 58
    text["sign"] = np.where(offset[keep] < 0, 45, 43)
    sure = np.zeros(n, dtype=bool)
    sure[rows[keep]] = True
    out_offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(sure * np.int32(25), out=out_offsets[1:])
    return pa.Array.from_buffers(
        pa.string(),
        n,
        [
            pa.py_buffer(np.packbits(sure, bitorder="little")),
            pa.py_buffer(out_offsets),
            pa.py_buffer(out),
        ],
        null_count=n - len(keep),
    )
