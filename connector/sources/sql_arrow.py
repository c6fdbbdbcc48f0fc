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
  which an index on the cursor gives without a sort; else by the computed instants. The
  statements are built in ``sql_select_sqlite``; the masks are read and the sentinel
  dropped here.

``ArrowUnavailable`` (``sql_text``) is raised before any row is read when a column has no exact text rule
(a PostgreSQL ``jsonb``, a SQLite column SQLAlchemy converts, a session time zone Arrow does
not know): ``sql.py`` then reads the source with SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
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
    Select,
    cast,
    func,
    literal_column,
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
from connector.sources.sql_select_sqlite import (
    ANY_VALUE,
    BOOLEAN,
    MASK_BITS,
    ROWID,
    in_text_order,
    sqlite_kinds,
    sqlite_statement,
    text_order_statement,
)
from connector.sources.sql_text import (
    POSTGRES_TYPE_KEY,
    ArrowUnavailable,
    OutOfRange,
    TextRule,
    postgres_text,
    sqlite_text,
)
from connector.threads import prefetched

SETTING = "connector.p{}"  # the session settings that carry a PostgreSQL read's bounds
SQLITE_BATCH_ROWS = 65_536


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
