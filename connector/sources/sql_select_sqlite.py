"""The SQLite statements of the Arrow reader (``sql_arrow``): every value selected as text.

SQLite's ADBC driver guesses each column's Arrow type from its first batch, which SQLite's
typing defeats, so the statements select every value as text: text-affinity columns as
stored, the table's rowid as the integer it is, booleans as SQLAlchemy reads them (written
1/0), the others through ``CAST(... AS TEXT)`` with a mask of the values that were REALs;
and a first row of empty strings (the sentinel, dropped by the reader) makes every column
``string`` from the first batch on. ``sqlite_statement`` orders the window's rows by their
computed instants; ``text_order_statement`` by the cursor's stored text, where
``SqlPlan.text_order`` holds (``in_text_order`` says whether the columns allow it).
"""

from __future__ import annotations

import functools
import operator
from typing import Any

from sqlalchemy import (
    TEXT,
    Boolean,
    LargeBinary,
    Select,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects import sqlite

from connector.partitions import Window
from connector.sources.sql_plan import SqlPlan
from connector.sources.sql_text import ArrowUnavailable

ORDER = "_connector_order"  # SQLite: the rows' order key (the sentinel's is NULL: first)
REALS = "_connector_reals_{}"  # SQLite: bit i set = the row's i-th maskable value is a REAL
MASK_BITS = 62  # values per mask column (a signed 64-bit integer)

TEXT_AFFINITY, ROWID, ANY_VALUE, BOOLEAN = "text", "rowid", "any", "boolean"


def sqlite_affinity(declared: str) -> str:
    """SQLite's type affinity of a declared column type (sqlite.org/datatype3.html 3.1)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(part in upper for part in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in upper or not upper:
        return "BLOB"
    if any(part in upper for part in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def sqlite_kinds(plan: SqlPlan) -> list[str]:
    """How each column is selected: ``TEXT_AFFINITY`` (as stored: text, NULL or bytes),
    ``ROWID`` (the table's rowid: an integer, as stored), ``BOOLEAN`` (SQLAlchemy reads it
    as a bool) or ``ANY_VALUE`` (any storage class)."""
    dialect = sqlite.dialect()
    kinds = []
    for name, expr in zip(
        plan.names, plan.selected({c.name: c for c in plan.columns}), strict=True
    ):
        impl = expr.type.dialect_impl(dialect)
        if isinstance(impl, Boolean):
            kinds.append(BOOLEAN)
            continue
        if impl.result_processor(dialect, None) is not None and not isinstance(impl, LargeBinary):
            raise ArrowUnavailable(
                f"column {name!r} ({expr.type}) is converted by SQLAlchemy on reading"
            )
        declared = (plan.declared or {}).get(name)
        if name == plan.rowid:
            kinds.append(ROWID)
        elif declared is not None and sqlite_affinity(declared) == "TEXT":
            kinds.append(TEXT_AFFINITY)
        else:
            kinds.append(ANY_VALUE)
    return kinds


def sqlite_statement(plan: SqlPlan, window: Window, kinds: list[str]) -> Select[Any]:
    """The window's rows with every value as text, a sentinel row of empty strings first,
    and the REAL masks (the module doc says why), in the order of their instants."""
    rows = plan.window_rows(window)
    body = (
        select(*(c.label(n) for n, c in rows.columns.items()), rows.order_by[0].label(ORDER))
        .select_from(rows.from_)
        .where(*rows.where)
    )
    sentinel: Any = select(*_sentinel(plan, kinds), null().label(ORDER))
    # the body first: a compound's columns take their collation from its first SELECT
    both = union_all(body, sentinel).subquery("u")
    values, masks = _as_text({n: both.c[n] for n in plan.names}, kinds)
    order = [both.c[ORDER], *(both.c[k.name] for k in plan.keys)]
    return select(*values, *masks).order_by(*order)


def in_text_order(plan: SqlPlan, kinds: list[str]) -> list[str] | None:
    """The kinds of the statement ``text_order_statement`` selects with (the cursor's text
    as stored), or None when it cannot: its order is that of result columns (a compound
    ``SELECT``), so each key must be selected as it is stored, as text or the rowid."""
    cursor_at = plan.names.index(plan.cursor.name)
    keys = [kinds[plan.names.index(k.name)] for k in plan.keys]
    if kinds[cursor_at] in (BOOLEAN, ROWID) or any(k not in (TEXT_AFFINITY, ROWID) for k in keys):
        return None
    return [TEXT_AFFINITY if i == cursor_at else kind for i, kind in enumerate(kinds)]


def text_order_statement(plan: SqlPlan, window: Window, kinds: list[str]) -> Any:
    """The window's rows as ``sqlite_statement`` gives them, where ``plan.text_order`` holds:
    the range of their cursor text (``plan.text_range``), in the order of that text, then
    of the keys, as selected (``in_text_order``); an index on the cursor gives the order."""
    values, masks = _as_text({c.name: c for c in plan.columns}, kinds)
    body = select(*values, *masks).select_from(plan.from_).where(*plan.text_range(window))
    sentinel = select(*_sentinel(plan, kinds), *(literal_column("0") for _ in masks))
    order = [plan.names.index(c.name) + 1 for c in (plan.cursor, *plan.keys)]
    return union_all(sentinel, body).order_by(*(literal_column(str(i)) for i in order))


def _sentinel(plan: SqlPlan, kinds: list[str]) -> list[Any]:
    """The first row's values: empty strings, which make the driver type the columns as
    text; NULL for the rowid (an integer)."""
    return [
        (null() if kind == ROWID else literal_column("''")).label(name)
        for name, kind in zip(plan.names, kinds, strict=True)
    ]


def _as_text(columns: dict[str, Any], kinds: list[str]) -> tuple[list[Any], list[Any]]:
    """The columns selected as ``kinds`` say (text, but the rowid), and the REAL masks."""
    values: list[Any] = []
    masks: list[list[Any]] = []
    maskable = 0
    for (name, value), kind in zip(columns.items(), kinds, strict=True):
        if kind in (TEXT_AFFINITY, ROWID):
            values.append(value.label(name))
            continue
        if kind == BOOLEAN:  # as Python's bool() reads the stored value, written 1/0
            truth = case(
                (value.is_(None), null()),
                (or_(func.typeof(value) == "integer", func.typeof(value) == "real"), value != 0),
                else_=func.length(value) > 0,
            )
            values.append(cast(truth, TEXT).label(name))
            continue
        values.append(cast(value, TEXT).label(name))
        mask, bit = divmod(maskable, MASK_BITS)
        maskable += 1
        if mask == len(masks):
            masks.append([])
        masks[mask].append(case((func.typeof(value) == "real", 1 << bit), else_=0))
    mask_columns = [
        functools.reduce(operator.add, terms).label(REALS.format(m))
        for m, terms in enumerate(masks)
    ]
    return values, mask_columns
