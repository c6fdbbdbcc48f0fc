"""Typing a param's column: the delivered text of every value, or why a value is bad.

``type_column`` gives the typed column and the rows that cannot be typed, with reasons.
Common shapes go through a vectorised fast path (``fast_datetime``, ``fast_decimal``),
each of which gives exactly ``value_typer``'s text or null ("not sure"); the rest is typed
by ``value_typer`` (``connector.mapping.values``, the single definition of the output),
once per distinct value.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.buffers import one_array
from connector.mapping import ParamSpec
from connector.mapping.values import value_typer, zone_of
from connector.transform.fast_datetime import fast_datetime
from connector.transform.fast_decimal import fast_decimal


def type_column(spec: ParamSpec, col: pa.Array) -> tuple[pa.Array, np.ndarray, list[str | None]]:
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


def _fast_typed(spec: ParamSpec, col: pa.Array) -> pa.Array | None:
    """The fast path's typing of ``col`` (null where not sure), or None when there is none."""
    if spec.type == "datetime" and not spec.input_format and not spec.format:
        return fast_datetime(col, zone_of(spec.timezone))
    if spec.type == "decimal":
        return fast_decimal(col, spec.decimal_places)
    return None
