"""Raw source rows -> profile updates: identity checked, params typed and formatted.

``map_chunk`` is stateless per chunk and works column by column, never value by value
in Python: ``pyarrow.compute`` kernels, and numpy over the columns' bytes where that is
cheaper (ISO datetimes read as a fixed-width byte matrix, the identity rules as one table
lookup over its data buffer). What those fast paths are not sure of is typed by
``value_typer`` (the single definition of the output), once per distinct value.

Nothing is guessed: a value is the source's text unless its param gives a type. An
empty value (``""`` or SQL NULL) is null (empty) and never typed; a param's
``default`` replaces it. A value that cannot be typed rejects **the whole row** (one
reject line per bad param, so every problem shows at once): a profile is never
half-updated by surprise.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache, partial
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.buffers import one_array, value_offsets
from connector.columns import IDENTITY, REJECT_COLUMNS, SEQ, SOURCE_REF
from connector.settings import MAX_PROFILE_BYTES

if TYPE_CHECKING:
    from connector.mapping import ParamSpec, SourceMapping

RAW_LIMIT = 200  # characters of a rejected value kept in the rejects table
MAX_THIRD_PARTY_ID = 256  # characters [LIM]
MAX_PCID = 128
PCID_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
CONTROL_RE = r"[\x00-\x1f\x7f]"
# URL-encoding (quote(v, safe="")) leaves these bytes as they are, escapes every other byte to %XX
UNRESERVED_RE = r"[A-Za-z0-9_.~-]"
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
INT_RE = re.compile(r"[+-]?\d+")


class ColumnMissing(KeyError):
    """A mapping names a column the source does not have."""

    def __init__(self, mapping: str, field: str, column: str, have: Sequence[str]) -> None:
        self.message = (
            f"{mapping}: {field}: column {column!r} not in source "
            f"(have: {', '.join(c for c in have if not c.startswith('_'))})"
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


# -- typing one value (also used to check a param's default when a mapping loads) ----------


@lru_cache(maxsize=64)
def _zone(name: str | None) -> dt.tzinfo:
    return ZoneInfo(name) if name else dt.UTC


def _parse_moment(spec: ParamSpec, text: str) -> dt.datetime | dt.date:
    if spec.input_format:
        try:
            return dt.datetime.strptime(text, spec.input_format)
        except ValueError as exc:
            raise ValueError(f"{text!r} does not match {spec.input_format!r}") from exc
    if len(text) == 10 and text[4:5] == "-":
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 {spec.type}") from exc


def _as_datetime(spec: ParamSpec, text: str) -> dt.datetime:
    value = _parse_moment(spec, text)
    zone = _zone(spec.timezone)
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(zone)
    except OverflowError as exc:  # 9999-12-31T23:00:00-05:00 is in year 10000 here
        raise ValueError(f"{text!r} is out of range in {zone}") from exc


def type_value(spec: ParamSpec, text: str) -> str:
    """The delivered text of one non-empty value of ``spec``'s type; ValueError says why not."""
    return value_typer(spec)(text)


DECIMAL_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def value_typer(spec: ParamSpec) -> Callable[[str], str]:
    """A function typing one value of ``spec`` (options resolved once, not per value)."""
    kind = spec.type
    if kind == "string":
        return lambda text: text
    if kind == "int":

        def _int(text: str) -> str:
            if not INT_RE.fullmatch(text):
                raise ValueError(f"{text!r} is not an integer")
            return str(int(text))

        return _int
    if kind == "decimal":
        places = spec.decimal_places
        quantum = Decimal(1).scaleb(-places) if places is not None else None

        def _decimal(text: str) -> str:
            if not DECIMAL_RE.fullmatch(text):
                raise ValueError(f"{text!r} is not a decimal number")
            number = Decimal(text)
            if quantum is not None:
                number = number.quantize(quantum, rounding=ROUND_HALF_UP)
            return format(number, "f")

        return _decimal
    if kind == "bool":

        def _bool(text: str) -> str:
            word = text.lower()
            if word in TRUE_WORDS:
                return "true"
            if word in FALSE_WORDS:
                return "false"
            raise ValueError(f"{text!r} is not a boolean (true/false, yes/no, 1/0)")

        return _bool
    zone = _zone(spec.timezone)
    out_format = spec.format
    if kind == "date":

        def _date(text: str) -> str:
            value = _parse_moment(spec, text)
            if isinstance(value, dt.datetime):
                if value.tzinfo is not None:
                    value = value.astimezone(zone)
                value = value.date()
            # isoformat, not strftime("%Y-..."): glibc does not zero-pad years before 1000
            return value.strftime(out_format) if out_format else value.isoformat()

        return _date

    def _datetime(text: str) -> str:
        moment = _as_datetime(spec, text)
        if out_format:
            return moment.strftime(out_format)
        return moment.isoformat(timespec="seconds" if not moment.microsecond else "auto")

    return _datetime


# -- column work --------------------------------------------------------------------------


def _sha256_column(col: pa.Array) -> pa.Array:
    values = col.to_pylist()
    return pa.array(
        [v if not v else hashlib.sha256(v.encode("utf-8")).hexdigest() for v in values],
        pa.string(),
    )


def _is_ascii(col: pa.Array) -> bool:
    """Whether every value of a string array is ASCII: one scan of its bytes (numpy)."""
    if not isinstance(col, pa.Array) or col.type != pa.string():
        return False
    data = col.buffers()[2]
    if data is None:
        return True
    offsets = value_offsets(col)
    values = np.frombuffer(data, dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
    return not len(values) or int(values.max()) < 0x80


def apply_transforms(col: pa.Array, transforms: Sequence[str]) -> pa.Array:
    """lower / upper / strip / sha256, in order; nulls stay null.

    A column that is all ASCII changes case byte by byte (``ascii_lower``, the same text
    for ASCII): 0.012 CPU-s for 5M e-mail addresses, against 0.27 for ``utf8_lower``.
    """
    for name in transforms:
        if name == "lower":
            col = pc.ascii_lower(col) if _is_ascii(col) else pc.utf8_lower(col)
        elif name == "upper":
            col = pc.ascii_upper(col) if _is_ascii(col) else pc.utf8_upper(col)
        elif name == "strip":
            col = pc.utf8_trim_whitespace(col)
        elif name == "sha256":
            col = _sha256_column(col)
    return col


def _empty_to_null(col: pa.Array) -> pa.Array:
    """``""`` as null. For a plain string array only the validity bitmap is rebuilt (from
    the offsets: an empty value has equal ones); the values are not copied."""
    if not isinstance(col, pa.Array) or col.type != pa.string() or len(col) == 0:
        return pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
    data = col.buffers()[2]
    offsets = value_offsets(col)
    empty = offsets[1:] == offsets[:-1]
    if not empty.any():
        return col
    valid = ~empty
    if col.null_count:
        valid &= col.is_valid().to_numpy(zero_copy_only=False)
    if col.offset:
        data = data.slice(int(offsets[0]))  # rebased: the data buffer is sliced to match
        offsets = offsets - offsets[0]
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.string(), len(col), [bitmap, pa.py_buffer(offsets.astype(np.int32, copy=True)), data]
    )


def _type_column(spec: ParamSpec, col: pa.Array) -> tuple[pa.Array, np.ndarray, list[str | None]]:
    """Typed text of a column (null where empty or bad), a bad-row mask and per-row reasons.

    Common shapes (ISO datetimes, plain decimals) are typed by ``pyarrow.compute`` over the
    whole column; the rest (and every value the fast path is not sure of) goes through
    ``value_typer``, which stays the single definition of the output.
    """
    n = len(col)
    if spec.type == "string" or col.null_count == n:
        return col, np.zeros(n, dtype=bool), []
    fast = _fast_typed(spec, col)
    if fast is None:
        return _type_distinct(spec, col)
    rest = pc.and_(pc.is_valid(col), pc.is_null(fast))
    if not pc.any(rest).as_py():
        return fast, np.zeros(n, dtype=bool), []
    slow, bad, reasons = _type_distinct(spec, pc.if_else(rest, col, pa.scalar(None, pa.string())))
    return pc.coalesce(fast, slow), bad, reasons


def _type_distinct(spec: ParamSpec, col: pa.Array) -> tuple[pa.Array, np.ndarray, list[str | None]]:
    """``value_typer`` once per distinct value (nulls stay null)."""
    n = len(col)
    if col.null_count == n:
        return col, np.zeros(n, dtype=bool), []
    encoded = pc.dictionary_encode(col)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = one_array(encoded)
    distinct: list[str] = encoded.dictionary.to_pylist()
    typer = value_typer(spec)
    typed: list[str | None] = []
    reasons: list[str | None] = []
    for text in distinct:
        try:
            typed.append(typer(text))
            reasons.append(None)
        except ValueError as exc:
            typed.append(None)
            reasons.append(str(exc))
    indices = encoded.indices
    out = pc.take(pa.array(typed, pa.string()), indices)
    if not any(reasons):
        return out, np.zeros(n, dtype=bool), []
    bad_dict = pa.array([r is not None for r in reasons], pa.bool_())
    bad = pc.fill_null(pc.take(bad_dict, indices), False).to_numpy(zero_copy_only=False)
    row_reasons = pc.take(pa.array(reasons, pa.string()), indices).to_pylist()
    return out, bad, row_reasons


# -- vectorised typing of the common shapes ----------------------------------------------------
# Each fast path gives exactly value_typer's text or null ("not sure": typed in Python).

PLAIN_DECIMAL_RE = r"^\d{1,18}(\.\d{1,18})?$"
CANONICAL_DECIMAL_RE = r"^(0|[1-9]\d*)(\.\d+)?$"
DECIMAL_SCALE = 18  # 18 integer + 18 fraction digits fit decimal128's 38


def _fast_typed(spec: ParamSpec, col: pa.Array) -> pa.Array | None:
    if spec.type == "datetime" and not spec.input_format and not spec.format:
        return _fast_datetime(col, _zone(spec.timezone))
    if spec.type == "decimal":
        return _fast_decimal(col, spec.decimal_places)
    return None


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


def _fast_datetime(col: pa.Array, zone: dt.tzinfo) -> pa.Array:
    """ISO ``YYYY-MM-DD[THH:MM:SS[Z|±HH:MM]]`` in ``zone``, as ``_datetime`` writes it.

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


def _fast_decimal(col: pa.Array, places: int | None) -> pa.Array:
    """Unsigned plain decimals, rounded half up to ``places`` as ``_decimal`` does."""
    null = pa.scalar(None, pa.string())
    if places is None:
        # format(Decimal(text), "f") gives back a text already in that form
        return pc.if_else(pc.match_substring_regex(col, CANONICAL_DECIMAL_RE), col, null)
    if places > 0:
        # values already as _decimal writes them (no leading zero, exactly `places` decimals)
        # stay as they are; only the others take the decimal128 round trip
        ready = _decimal_ready(col, places)
        if ready.all():
            return col
        rest = pa.array(~ready)
        return pc.replace_with_mask(col, rest, _rounded_decimal(pc.filter(col, rest), places))
    return _rounded_decimal(col, places)


def _decimal_ready(col: pa.Array, places: int) -> np.ndarray:
    """Per value: null, or already in ``_decimal``'s form for ``places`` > 0 decimals, i.e.
    matching ``^(0|[1-9][0-9]{0,17})[.][0-9]{places}$``: read from the offsets and a scan of
    the bytes (numpy), where RE2 matched value by value (0.22 CPU-s per 5M values)."""
    col = one_array(col)
    if col.type != pa.string():
        col = col.cast(pa.string())
    offsets = value_offsets(col).astype(np.int64)
    starts, ends = offsets[:-1], offsets[1:]
    lengths = ends - starts
    data = col.buffers()[2]
    ready = (lengths >= places + 2) & (lengths <= DECIMAL_SCALE + 1 + places)
    if data is not None and ready.any():
        buf = np.frombuffer(data, dtype=np.uint8)
        lo, hi = int(offsets[0]), int(offsets[-1])
        # non-digit bytes up to each offset: a value in form holds exactly one, its '.'
        nondigit = np.zeros(hi - lo + 1, dtype=np.int64)
        np.cumsum((buf[lo:hi] - np.uint8(ord("0"))) > 9, out=nondigit[1:])
        ready &= nondigit[ends - lo] - nondigit[starts - lo] == 1
        last = max(hi - 1, lo)  # indices of values too short to be ready are never used
        dot = np.clip(ends - places - 1, lo, last)
        first = np.clip(starts, lo, last)
        ready &= buf[dot] == ord(".")
        ready &= (buf[first] != ord("0")) | (lengths == places + 2)
    else:
        ready[:] = False
    if col.null_count:
        ready |= ~col.is_valid().to_numpy(zero_copy_only=False)
    return ready


def _rounded_decimal(col: pa.Array, places: int) -> pa.Array:
    null = pa.scalar(None, pa.string())
    plain = pc.match_substring_regex(col, PLAIN_DECIMAL_RE)
    safe = pc.if_else(plain, col, "0")
    number = safe.cast(pa.decimal128(38, DECIMAL_SCALE))
    # non-negative only, so half towards infinity is ROUND_HALF_UP (half away from zero)
    rounded = pc.round(number, ndigits=places, round_mode="half_towards_infinity")
    text = rounded.cast(pa.decimal128(38, places)).cast(pa.string())
    return pc.if_else(plain, text, null)


def _encoded_len(col: pa.Array) -> np.ndarray:
    """Bytes of ``quote(value, safe="")`` per value (0 for null)."""
    raw = pc.binary_length(col)
    plain = pc.count_substring_regex(col, UNRESERVED_RE)
    enc = pc.subtract(pc.multiply(raw, 3), pc.multiply(plain, 2))
    return pc.fill_null(enc, 0).to_numpy(zero_copy_only=False).astype(np.int64)


def _url_len(text: str) -> int:
    from urllib.parse import quote

    return len(quote(text, safe=""))


# identity bytes that break a rule: a control character (UTF-8 has bytes below 0x20 and
# 0x7f only as those characters), and for thirdPartyId "+" and "/"
_CONTROL, _PLUS, _SLASH = 1, 2, 3
_IDENTITY_BYTES = np.zeros(256, dtype=np.uint8)
_IDENTITY_BYTES[:32] = _CONTROL
_IDENTITY_BYTES[127] = _CONTROL
_IDENTITY_BYTES[ord("+")] = _PLUS
_IDENTITY_BYTES[ord("/")] = _SLASH


def _byte_rules(ident: pa.Array) -> dict[int, np.ndarray] | None:
    """Rows holding each kind of byte in ``_IDENTITY_BYTES``: one table lookup over the
    data buffer (the rows are found from the few hits). None for other than plain strings."""
    if not isinstance(ident, pa.Array) or ident.type != pa.string():
        return None
    n = len(ident)
    found = {kind: np.zeros(n, dtype=bool) for kind in (_CONTROL, _PLUS, _SLASH)}
    data = ident.buffers()[2]
    if data is None or not n:
        return found
    offsets = value_offsets(ident)
    kinds = _IDENTITY_BYTES[np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]]
    hits = np.flatnonzero(kinds)
    if len(hits):
        rows = np.searchsorted(offsets, hits + offsets[0], side="right") - 1
        for kind, mask in found.items():
            mask[rows[kinds[hits] == kind]] = True
    return found


def _identity_problems(mapping: SourceMapping, ident: pa.Array) -> list[tuple[np.ndarray, str]]:
    """(mask, reason) for each identity rule; a row may break several, the first is reported."""
    missing = pc.fill_null(pc.equal(ident, ""), True)
    problems: list[tuple[pa.Array | np.ndarray, str]] = [(missing, "identity is empty")]
    filled = pc.fill_null(ident, "")
    by_byte = _byte_rules(ident)
    control = "identity contains a control character"
    if by_byte is None:
        problems.append((pc.match_substring_regex(filled, CONTROL_RE), control))
    else:
        problems.append((by_byte[_CONTROL], control))
    id_type = mapping.identity.type
    if mapping.destination == "target" and id_type == "thirdPartyId":
        plus = "thirdPartyId contains '+' (not allowed)"
        slash = "thirdPartyId contains '/' (not allowed)"
        if by_byte is None:
            problems.append((pc.match_substring(filled, "+"), plus))
            problems.append((pc.match_substring(filled, "/"), slash))
        else:
            problems += [(by_byte[_PLUS], plus), (by_byte[_SLASH], slash)]
        problems.append(
            (
                _longer_than(filled, MAX_THIRD_PARTY_ID),
                f"thirdPartyId is longer than {MAX_THIRD_PARTY_ID} characters",
            )
        )
    elif mapping.destination == "target":
        bad_form = pc.and_(pc.invert(missing), pc.invert(pc.match_substring_regex(filled, PCID_RE)))
        problems.append((bad_form, "pcId may hold only letters, digits, '.', '_' and '-'"))
        problems.append(
            (_longer_than(filled, MAX_PCID), f"pcId is longer than {MAX_PCID} characters")
        )
    else:
        problems.append((_longer_than(filled, 255), "identity is longer than 255 characters"))
    return [
        (m if isinstance(m, np.ndarray) else m.to_numpy(zero_copy_only=False), reason)
        for m, reason in problems
    ]


def _longer_than(text: pa.Array, limit: int) -> np.ndarray:
    """Values of more than ``limit`` characters (counted only when some has more bytes)."""
    size = pc.binary_length(text)
    if not pc.any(pc.greater(size, limit)).as_py():
        return np.zeros(len(text), dtype=bool)
    return pc.greater(pc.utf8_length(text), limit).to_numpy(zero_copy_only=False)


def _truncate(value: str | None) -> str | None:
    if value is None or len(value) <= RAW_LIMIT:
        return value
    return value[:RAW_LIMIT] + "..."


def _check_columns(mapping: SourceMapping, raw: pa.Table) -> None:
    have = raw.column_names
    if mapping.identity.column not in have:
        raise ColumnMissing(mapping.name, "identity.column", mapping.identity.column, have)
    for name, spec in mapping.param_specs.items():
        if spec.column not in have:
            raise ColumnMissing(mapping.name, f"params.{name}", spec.column, have)


def empty_rejects() -> pa.Table:
    return pa.table({name: pa.array([], pa.string()) for name in REJECT_COLUMNS})


def rejects_table(rows: Sequence[dict[str, str | None]]) -> pa.Table:
    """A rejects table (``columns.REJECT_COLUMNS``) from dict rows."""
    return pa.table(
        {name: pa.array([r.get(name) for r in rows], pa.string()) for name in REJECT_COLUMNS}
    )


def _column(raw: pa.Table, name: str) -> pa.Array:
    col = one_array(raw.column(name))
    if not pa.types.is_string(col.type):
        col = col.cast(pa.string())
    return col


def map_chunk(
    mapping: SourceMapping,
    raw: pa.Table,
    *,
    max_profile_bytes: int = MAX_PROFILE_BYTES,
) -> tuple[pa.Table, pa.Table]:
    """(mapped, rejects) of one raw chunk, as ``docs/architecture.md`` stage 2 describes.

    ``mapped``: ``_identity``, ``_source_ref``, ``_seq``, then one string column per param
    in ``mapping.param_names`` order, null when empty. ``rejects``: ``source_ref, identity,
    param, reason, raw``. Raises ColumnMissing when the source lacks a mapped column.
    """
    _check_columns(mapping, raw)
    n = raw.num_rows
    refs = _column(raw, SOURCE_REF)
    raw_ident = _column(raw, mapping.identity.column)
    ident = apply_transforms(raw_ident, mapping.identity.transforms)

    bad = np.zeros(n, dtype=bool)
    reject_rows: list[tuple[int, str | None, str, str | None]] = []  # row, param, reason, raw

    # identity: the first rule a row breaks is its reason
    for mask, reason in _identity_problems(mapping, ident):
        new = mask & ~bad
        if new.any():
            for i in np.flatnonzero(new):
                reject_rows.append((int(i), None, reason, None))
            bad |= new

    columns: dict[str, pa.Array] = {}
    for name, spec in mapping.param_specs.items():
        source_col = _column(raw, spec.column)
        col = _empty_to_null(apply_transforms(source_col, spec.transforms))
        if spec.default is not None:
            col = pc.fill_null(col, spec.default)
        typed, col_bad, reasons = _type_column(spec, col)
        if col_bad.any():
            for i in np.flatnonzero(col_bad):
                reject_rows.append((int(i), name, reasons[i] or "invalid value", "value"))
            bad |= col_bad
        columns[name] = typed

    # profile size: sum of URL-encoded name + value bytes over non-empty params
    if columns:
        upper = np.zeros(n, dtype=np.int64)
        for name, col in columns.items():
            blen = pc.fill_null(pc.binary_length(col), -1).to_numpy(zero_copy_only=False)
            upper += np.where(blen >= 0, blen * 3 + _url_len(name), 0)
        if (upper > max_profile_bytes).any():
            size = np.zeros(n, dtype=np.int64)
            for name, col in columns.items():
                valid = pc.is_valid(col).to_numpy(zero_copy_only=False)
                size += _encoded_len(col) + np.where(valid, _url_len(name), 0)
            too_big = (size > max_profile_bytes) & ~bad
            for i in np.flatnonzero(too_big):
                reject_rows.append(
                    (
                        int(i),
                        None,
                        f"profile attributes are {int(size[i])} bytes URL-encoded "
                        f"(limit {max_profile_bytes})",
                        None,
                    )
                )
            bad |= too_big

    mapped = pa.table(
        {
            IDENTITY: ident,
            SOURCE_REF: refs,
            SEQ: one_array(raw.column(SEQ)).cast(pa.int64()),
            **columns,
        }
    )
    if bad.any():  # most chunks have no bad row: no copy then
        mapped = mapped.filter(pa.array(~bad))
    return mapped, _rejects(mapping, raw, refs, raw_ident, reject_rows)


def _rejects(
    mapping: SourceMapping,
    raw: pa.Table,
    refs: pa.Array,
    raw_ident: pa.Array,
    reject_rows: list[tuple[int, str | None, str, str | None]],
) -> pa.Table:
    if not reject_rows:
        return empty_rejects()
    reject_rows.sort(key=lambda r: r[0])
    specs = mapping.param_specs
    rows: list[dict[str, str | None]] = []
    value_of: Callable[[str, int], str | None] = lambda column, i: raw.column(column)[i].as_py()  # noqa: E731
    for i, param, reason, what in reject_rows:
        ident = raw_ident[i].as_py()
        if param is not None and what == "value":
            raw_value = value_of(specs[param].column, i)
        else:
            raw_value = ident
        rows.append(
            {
                "source_ref": refs[i].as_py(),
                "identity": _truncate(ident),
                "param": param,
                "reason": reason,
                "raw": _truncate(raw_value),
            }
        )
    return rejects_table(rows)
