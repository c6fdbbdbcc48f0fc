"""The fast path for decimals: a column typed as ``value_typer`` types a decimal.

``fast_decimal(col, places)`` gives, for each unsigned plain decimal (at most 18 integer
and 18 fraction digits), exactly the text ``value_typer`` gives for a ``decimal`` param
rounding half up to ``places`` (None: not rounded); null for every other value, which the
caller types in Python.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.buffers import one_array, value_offsets

PLAIN_DECIMAL_RE = r"^\d{1,18}(\.\d{1,18})?$"
CANONICAL_DECIMAL_RE = r"^(0|[1-9]\d*)(\.\d+)?$"
DECIMAL_SCALE = 18  # 18 integer + 18 fraction digits fit decimal128's 38


def fast_decimal(col: pa.Array, places: int | None) -> pa.Array:
    """Unsigned plain decimals, rounded half up to ``places`` as ``value_typer`` does."""
    null = pa.scalar(None, pa.string())
    if places is None:
        # format(Decimal(text), "f") gives back a text already in that form
        return pc.if_else(pc.match_substring_regex(col, CANONICAL_DECIMAL_RE), col, null)
    if places > 0:
        # values already as value_typer writes them (no leading zero, exactly `places` decimals)
        # stay as they are; only the others take the decimal128 round trip
        ready = _decimal_ready(col, places)
        if ready.all():
            return col
        rest = pa.array(~ready)
        return pc.replace_with_mask(col, rest, _rounded_decimal(pc.filter(col, rest), places))
    return _rounded_decimal(col, places)


def _decimal_ready(col: pa.Array, places: int) -> np.ndarray:
    """Per value: null, or already in ``value_typer``'s form for ``places`` > 0 decimals, i.e.
    matching ``^(0|[1-9][0-9]{0,17})[.][0-9]{places}$``: read from the offsets and a scan of
    the bytes (numpy), rather than a regex matched value by value."""
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
