"""The Arrow reader of a SQL source: the window's rows as record batches from ADBC, streamed.

The same rows, in the same order, as the SQLAlchemy reader (both select what ``SqlPlan``
plans), written as the same text (``sql_text``); only the way there differs:

- PostgreSQL: the driver streams a statement without parameters through binary
  ``COPY (...) TO STDOUT``, in batches of about 16 MB; a statement with parameters it reads
  whole into memory. So the window's bounds are bound in a statement of their own,
  ``SELECT set_config($1, $2, false), ...`` (session settings ``connector.p1``, ...), and the
  streamed query reads them back typed, ``CAST(current_setting('connector.p1') AS
  timestamptz)``: the values never enter the SQL text, and an index on the cursor column
  is used as with parameters (the planner sees a stable expression).
- SQLite: the driver guesses each column's Arrow type from its first batch, which SQLite's
  typing defeats (a column NULL in the first rows becomes ``int64`` and the first text
  after them fails the read; integers and reals in a text column are written as
  ``2.990000e+03``). So every value is selected as text: text-affinity columns as they
  are (they hold no numbers), the others through ``CAST(... AS TEXT)``, with a mask of
  the values that were REALs (``sql_text.sqlite_text`` writes those as ``repr``), and a
  first row of empty strings, ordered before all others and dropped here, makes every
  column ``string`` from the first batch on. Where ``SqlPlan.text_order`` holds (the
  cursor's stored text sorts as its instants), the window is read as a range of that text,
  ordered by result columns of the ``UNION ALL`` with that row (``text_order_statement``),
  which an index on the cursor gives without a sort; else by the computed instants.

``ArrowUnavailable`` is raised before any row is read when a column has no exact text rule
(a PostgreSQL ``jsonb``, a SQLite column SQLAlchemy converts, a session time zone Arrow does
not know): ``sql.py`` then reads the source with SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import operator
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    BIGINT,
    DATE,
    NUMERIC,
    TEXT,
    TIMESTAMP,
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
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import replacement_traverse

from connector.buffers import one_array
from connector.partitions import Window
from connector.sources.chunks import SourceError
from connector.sources.sql_paths import ArrowDriver
from connector.sources.sql_plan import SqlPlan
from connector.sources.sql_text import (
    POSTGRES_TYPE_KEY,
    OutOfRange,
    TextRule,
    postgres_text,
    sqlite_text,
)
from connector.threads import prefetched

SETTING = "connector.p{}"  # the session settings that carry a PostgreSQL read's bounds
ORDER = "_connector_order"  # SQLite: the rows' order key (the sentinel's is NULL: first)
REALS = "_connector_reals_{}"  # SQLite: bit i set = the row's i-th maskable value is a REAL
MASK_BITS = 62  # values per mask column (a signed 64-bit integer)
SQLITE_BATCH_ROWS = 65_536


class ArrowUnavailable(Exception):
    """The source's columns cannot all be read exactly as Arrow; the message says why."""


class StreamError(RuntimeError):
    """The driver failed while streaming the rows (the database's error, as its text)."""


@dataclass(frozen=True)
class ArrowRead:
    """An open read: the driver's record batches, and how a table of them becomes the
    columns' text (in ``SqlPlan.names`` order)."""

    batches: Iterator[pa.RecordBatch]
    texts: Callable[[pa.Table], list[pa.Array]]


def iter_arrow_tables(
    driver: ArrowDriver,
    url: str,
    plan: SqlPlan,
    window: Window,
    *,
    chunk_rows: int,
) -> Generator[pa.Table, None, None]:
    """The window's rows as raw chunk tables (``SqlPlan.chunk``) of ``chunk_rows`` rows
    (the last fewer), read through ``driver``; never more than one chunk and a few batches
    held. Raises ``ArrowUnavailable`` before reading when the columns do not allow it.

    The driver fills its batches on a thread of its own (``prefetched``; it releases the
    GIL), while this one writes the previous ones as text."""
    with (
        contextlib.closing(driver.connect(url)) as conn,
        open_read(driver, conn, plan, window) as read,
        # closed (its thread joined) before the driver's reader is
        contextlib.closing(prefetched(read.batches, name="sql-read")) as batches,
    ):
        seq = 0
        for table in rechunk(batches, chunk_rows):
            try:
                arrays = read.texts(table)
            except OutOfRange as exc:
                raise SourceError(f"{plan.label}: {exc}") from exc
            yield plan.chunk(arrays, seq)
            seq += table.num_rows


def open_read(
    driver: ArrowDriver, conn: Any, plan: SqlPlan, window: Window
) -> contextlib.AbstractContextManager[ArrowRead]:
    """The window's rows opened on ``conn`` (a connection of ``driver``), batches as the
    driver streams them."""
    return (
        _postgres(conn, plan, window)
        if driver.dialect == "postgresql"
        else _sqlite(conn, plan, window)
    )


def _streamed(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """The reader's batches; an error of the database mid-stream as a ``StreamError`` (Arrow
    raises it as an ``OSError``, like a file's)."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (OSError, pa.ArrowException) as exc:
            raise StreamError(str(exc)) from exc
        yield batch


def rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows from a stream of batches (the last one fewer);
    holds no more than ``rows`` rows besides the batch being read."""
    pending: list[pa.RecordBatch] = []
    have = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - have, batch.num_rows)
            pending.append(batch.slice(0, take))
            have += take
            batch = batch.slice(take)
            if have == rows:
                yield pa.Table.from_batches(pending)
                pending, have = [], 0
    if have:
        yield pa.Table.from_batches(pending)


# -- PostgreSQL ----------------------------------------------------------------------------


@contextlib.contextmanager
def _postgres(conn: Any, plan: SqlPlan, window: Window) -> Iterator[ArrowRead]:
    with contextlib.closing(conn.cursor()) as cur:
        cur.execute("SELECT current_setting('TimeZone')")
        zone = str(cur.fetchone()[0])
        sql, settings = postgres_query(plan, window)
        if settings:
            calls = ", ".join(
                f"set_config(${2 * i + 1}, ${2 * i + 2}, false)" for i in range(len(settings))
            )
            cur.execute(f"SELECT {calls}", [part for pair in settings for part in pair])
            cur.fetchall()
        rules: list[TextRule] = []
        for field in cur.adbc_execute_schema(sql):
            type_name = (field.metadata or {}).get(POSTGRES_TYPE_KEY, b"").decode()
            rule = postgres_text(type_name, zone)
            if rule is None:
                where = f" in TimeZone {zone!r}" if type_name == "timestamptz" else ""
                raise ArrowUnavailable(
                    f"column {field.name!r} is a PostgreSQL {type_name or field.type}{where}, "
                    f"which has no exact Arrow text rule"
                )
            rules.append(rule)
        cur.execute(sql)

        def texts(table: pa.Table) -> list[pa.Array]:
            return [
                _text(rule, name, table.column(name))
                for name, rule in zip(plan.names, rules, strict=True)
            ]

        with contextlib.closing(cur.fetch_record_batch()) as reader:
            yield ArrowRead(_streamed(reader), texts)


def _text(rule: TextRule, name: str, column: pa.ChunkedArray) -> pa.Array:
    try:
        return rule(one_array(column))
    except OutOfRange as exc:
        raise OutOfRange(f"column {name!r} holds {exc}") from exc


def postgres_query(plan: SqlPlan, window: Window) -> tuple[str, list[tuple[str, str]]]:
    """The window's statement as the PostgreSQL reader streams it (no parameters), and the
    session settings it reads its bounds from (name, value)."""
    statement, settings = bound_to_settings(plan.statement(window))
    compiled = statement.compile(dialect=PGDialect(paramstyle="numeric_dollar"))
    if compiled.params:
        raise ArrowUnavailable(f"parameters left in the statement: {sorted(compiled.params)}")
    return str(compiled), settings


def bound_to_settings(statement: Select[Any]) -> tuple[Select[Any], list[tuple[str, str]]]:
    """``statement`` with each bound value replaced by a typed read of a session setting,
    and the settings' names and values (``SETTING``; the module doc says why)."""
    settings: list[tuple[str, str]] = []
    done: dict[int, Any] = {}

    def replace(element: Any, **_: Any) -> Any:
        if not isinstance(element, BindParameter):
            return None
        if id(element) not in done:
            name = SETTING.format(len(settings) + 1)
            value, sqltype = _setting(element)
            settings.append((name, value))
            done[id(element)] = cast(func.current_setting(literal_column(f"'{name}'")), sqltype)
        return done[id(element)]

    traversable: Any = statement  # its overloads know Select as a traversible only
    options: dict[str, Any] = {}
    return replacement_traverse(traversable, options, replace), settings


def _setting(bind: BindParameter[Any]) -> tuple[str, Any]:
    """A bound value as setting text PostgreSQL reads back exactly, and its type."""
    value = bind.effective_value
    if isinstance(value, dt.datetime):
        aware = value.tzinfo is not None and value.utcoffset() is not None
        return value.isoformat(), TIMESTAMP(timezone=aware)
    if isinstance(value, dt.date):
        return value.isoformat(), DATE()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), BIGINT()
    if isinstance(value, Decimal):
        return format(value, "f"), NUMERIC()
    if isinstance(value, str):
        return value, TEXT()
    raise ArrowUnavailable(f"a bound value of type {type(value).__name__} ({bind.key})")


# -- SQLite --------------------------------------------------------------------------------

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


@contextlib.contextmanager
def _sqlite(conn: Any, plan: SqlPlan, window: Window) -> Iterator[ArrowRead]:
    kinds = sqlite_kinds(plan)
    ordered_kinds = in_text_order(plan, kinds)
    check = plan.text_order(window) if ordered_kinds is not None else None
    with contextlib.closing(conn.cursor()) as cur, _read_transaction(cur):
        if check is not None and ordered_kinds is not None and _holds(cur, check):
            kinds, statement = ordered_kinds, text_order_statement(plan, window, ordered_kinds)
        else:
            statement = sqlite_statement(plan, window, kinds)
        masked = [i for i, kind in enumerate(kinds) if kind == ANY_VALUE]
        width = len(plan.names)

        def texts(table: pa.Table) -> list[pa.Array]:
            arrays = [one_array(table.column(i)) for i in range(table.num_columns)]
            reals: dict[int, pa.Array] = {}
            for n, i in enumerate(masked):
                mask, bit = divmod(n, MASK_BITS)
                reals[i] = pc.not_equal(pc.bit_wise_and(arrays[width + mask], 1 << bit), 0)
            return [
                arrays[i].cast(pa.string())
                if kinds[i] == ROWID
                else sqlite_text(arrays[i], reals.get(i), boolean=kinds[i] == BOOLEAN)
                for i in range(width)
            ]

        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(SQLITE_BATCH_ROWS)})
        cur.execute(*_compiled(statement))
        with contextlib.closing(cur.fetch_record_batch()) as reader:
            yield ArrowRead(_after_first_row(_streamed(reader)), texts)


@contextlib.contextmanager
def _read_transaction(cur: Any) -> Iterator[None]:
    """One snapshot of the database for the statements on ``cur``: the check of
    ``plan.text_order`` and the read it chose (the connection is in autocommit mode)."""
    cur.execute("BEGIN")
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # the read's own error, if any, is the one raised
            cur.execute("ROLLBACK")


def _holds(cur: Any, check: Any) -> bool:
    cur.execute(*_compiled(check))
    row = cur.fetchone()
    return bool(row and row[0])


def _compiled(statement: Any) -> tuple[str, list[Any]]:
    """SQLite's text of a statement, and its parameters in order."""
    compiled = statement.compile(
        dialect=sqlite.dialect(), compile_kwargs={"render_postcompile": True}
    )
    return str(compiled), [compiled.params[key] for key in compiled.positiontup or ()]


def _after_first_row(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The batches without the stream's first row (the sentinel)."""
    first = True
    for batch in batches:
        if first and batch.num_rows:
            batch, first = batch.slice(1), False
        yield batch
