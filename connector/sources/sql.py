"""SQL sources: a table or query behind any SQLAlchemy URL, read incrementally and streamed.

- ``table`` is reflected (identifiers quoted by SQLAlchemy); ``query`` is wrapped as a
  subquery. Rows with the ``cursor`` column in the partition window ``[start, end)``
  are read in ``cursor`` (then key) order, so later updates get a later ``_seq``.
- Cursor time zones (``sql_window``, ``docs/sources.md``): an aware cursor
  (``timestamptz``, MySQL/MariaDB ``TIMESTAMP``, text with ``Z`` or ``+hh:mm``) is
  compared as an instant; a naive one (``timestamp``/``DATETIME``, text without an
  offset, a date) as local time in CONNECTOR_TIMEZONE, the window's zone. Which one a
  cursor is comes from its type in the database: reflected for a ``table``, reported
  by the database for a ``query``'s result column; never from the session's time zone.
  On SQLite, where datetimes are text, each value is read by SQLite's date functions
  (both forms may share a column) and rows come in the order of their instants.
- Rows are streamed (``stream_results`` + ``yield_per``: a server-side cursor on
  PostgreSQL, an unbuffered cursor on MySQL/MariaDB) so memory stays bounded.
- Values become text exactly: Decimal in plain notation, datetimes ISO 8601, floats
  by their shortest repr, NULL stays null. On SQLite the stored value is taken as is.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    Date,
    DateTime,
    MetaData,
    String,
    Table,
    column,
    create_engine,
    inspect,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError, NoSuchTableError, SQLAlchemyError

from connector.columns import SEQ, SOURCE_REF
from connector.ledger import Cursor, Ledger
from connector.mapping import SourceMapping, SqlSource
from connector.partitions import Window
from connector.rejects import empty_rejects
from connector.sources.chunks import RawChunk, SourceError
from connector.sources.sql_window import CursorKind, kind_of_code, kind_of_type, order_key
from connector.sources.sql_window import window_filter as cursor_window_filter
from connector.sql_urls import with_installed_driver

log = logging.getLogger(__name__)


def masked_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show nothing of it
        return "<unparsable URL>"


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
        return repr(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    return str(value)


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


def _check_sqlite_file(url: str, mapping: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database or ""
    is_file_db = bool(database) and database != ":memory:" and not database.startswith("file:")
    if is_file_db and not Path(database).is_file():
        raise SourceError(
            f"{mapping}: SQLite database {database!r} does not exist "
            f"(relative paths resolve against {Path.cwd()})"
        )


class _Plan:
    """What to select from a table or query, and how to filter on its cursor."""

    def __init__(self, conn: Connection, mapping: SourceMapping, source: SqlSource) -> None:
        self.dialect = conn.dialect.name
        self.label: str
        codes: dict[str, Any] = {}  # a query's result columns: the database's type codes
        if source.table is not None:
            self.label = source.table
            try:
                table = Table(source.table, MetaData(), schema=source.schema_, autoload_with=conn)
            except NoSuchTableError as exc:
                have = inspect(conn).get_table_names(schema=source.schema_)
                raise SourceError(
                    f"{mapping.name}: table {source.table!r} not found "
                    f"(have: {', '.join(sorted(have)) or 'no tables'})"
                ) from exc
            self.columns: list[Any] = list(table.columns)
            self.from_: Any = table
            declared = source.key_columns or [c.name for c in table.primary_key.columns]
        else:
            self.label = mapping.name
            probe = text(source.query or "").columns().subquery("q")
            try:
                result: Any = conn.execute(select(literal_column("*")).select_from(probe).limit(0))
                names = list(result.keys())
                codes = {d[0]: d[1] for d in result.cursor.description or ()}
                result.close()
            except SQLAlchemyError as exc:
                detail = getattr(exc, "orig", None) or exc
                raise SourceError(
                    f"{mapping.name}: query failed: {detail.__class__.__name__}: {detail}"
                ) from exc
            sub = text(source.query or "").columns(*[column(n) for n in names]).subquery("q")
            self.columns = list(sub.c)
            self.from_ = sub
            declared = source.key_columns
        self.names = [c.name for c in self.columns]
        by_name = {c.name: c for c in self.columns}
        where = f"table {source.table!r}" if source.table else "the query"
        needed = [("source.cursor", source.cursor)]
        needed += [("source.key", k) for k in declared]
        needed += [("identity.column", mapping.identity.column)]
        needed += [(f"params.{p}", s.column) for p, s in mapping.param_specs.items()]
        for field, name in needed:
            if name not in by_name:
                raise SourceError(
                    f"{mapping.name}: {field}: column {name!r} not in {where} "
                    f"(have: {', '.join(self.names)})"
                )
        self.cursor = by_name[source.cursor]
        self.keys = [by_name[k] for k in declared]
        self.kind: CursorKind = (
            kind_of_type(self.dialect, self.cursor.type)
            if source.table is not None
            else kind_of_code(self.dialect, codes.get(source.cursor))
        )

    def selected(self) -> list[Any]:
        if self.dialect != "sqlite":
            return list(self.columns)
        # SQLite: the stored value as is (no datetime/Decimal conversion that could fail or round)
        return [
            type_coerce(c, String()).label(c.name)
            if isinstance(c.type, DateTime | Date)
            or c.type.__class__.__name__ in ("NUMERIC", "Numeric", "DECIMAL")
            else c
            for c in self.columns
        ]

    def window_filter(self, window: Window) -> list[Any]:
        """Conditions for the rows whose cursor lies in ``window`` (``sql_window``)."""
        return cursor_window_filter(self.dialect, self.kind, self.cursor, window)

    def order_by(self, window: Window) -> list[Any]:
        """The window's rows in the order of their cursors' instants, then by key."""
        return [*order_key(self.dialect, self.cursor, window), *self.keys]


def iter_sql_chunks(
    mapping: SourceMapping,
    partition: str,
    window: Window,
    *,
    chunk_rows: int,
) -> Iterator[RawChunk]:
    """Raw chunks of the rows whose cursor lies in ``window``, in cursor order."""
    source = mapping.source
    assert isinstance(source, SqlSource)
    _check_sqlite_file(source.url, mapping.name)
    engine = create_engine(with_installed_driver(source.url))
    shown = masked_url(source.url)
    try:
        with engine.connect() as conn:
            plan = _Plan(conn, mapping, source)
            stmt = (
                select(*plan.selected())
                .select_from(plan.from_)
                .where(*plan.window_filter(window))
                .order_by(*plan.order_by(window))
            )
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(stmt)
            seq = 0
            cursor_at = plan.names.index(plan.cursor.name)
            key_at = [plan.names.index(k.name) for k in plan.keys]
            for rows in result.partitions(chunk_rows):
                table = _chunk_table(rows, plan.names, plan.label, cursor_at, key_at, seq)
                seq += table.num_rows
                high = table.column(plan.cursor.name)[-1].as_py() if table.num_rows else None
                yield RawChunk(table, empty_rejects(), plan.label, high)
            log.info("%s/%s: %s rows from %s", mapping.name, partition, seq, shown)
    except SourceError:
        raise
    except SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise SourceError(
            f"{mapping.name}: reading {shown} failed: {detail.__class__.__name__}: {detail}"
        ) from exc
    finally:
        engine.dispose()


def iter_sql_identities(mapping: SourceMapping, *, chunk_rows: int = 100_000) -> Iterator[pa.Array]:
    """Every distinct value of the identity column the source holds now, whatever its
    cursor (raw text, as the extract reads it), streamed in chunks."""
    source = mapping.source
    assert isinstance(source, SqlSource)
    _check_sqlite_file(source.url, mapping.name)
    engine = create_engine(with_installed_driver(source.url))
    try:
        with engine.connect() as conn:
            plan = _Plan(conn, mapping, source)
            ident = next(c for c in plan.selected() if c.name == mapping.identity.column)
            stmt = select(ident).select_from(plan.from_).distinct()
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(stmt)
            for rows in result.partitions(chunk_rows):
                yield column_array([row[0] for row in rows])
    except SourceError:
        raise
    except SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise SourceError(
            f"{mapping.name}: reading the identities of {masked_url(source.url)} failed: "
            f"{detail.__class__.__name__}: {detail}"
        ) from exc
    finally:
        engine.dispose()


def _chunk_table(
    rows: Sequence[Sequence[Any]],
    names: list[str],
    label: str,
    cursor_at: int,
    key_at: list[int],
    seq: int,
) -> pa.Table:
    by_column = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = [column_array(values) for values in by_column]
    # "<label>:<key>[/<key>...]" (a NULL key part reads "None"), else "<label>:<cursor>#<seq>"
    join = {"null_handling": "replace", "null_replacement": "None"}
    if key_at:
        keys = [arrays[i] for i in key_at]
        refs = pc.binary_join_element_wise(
            f"{label}:", pc.binary_join_element_wise(*keys, "/", **join), "", **join
        )
    else:
        seqs = pa.array(range(seq, seq + len(rows)), pa.int64()).cast(pa.string())
        refs = pc.binary_join_element_wise(
            pc.binary_join_element_wise(f"{label}:", arrays[cursor_at], "", **join), seqs, "#"
        )
    return pa.table(
        {
            **dict(zip(names, arrays, strict=True)),
            SOURCE_REF: refs,
            SEQ: pa.array(range(seq, seq + len(rows)), pa.int64()),
        }
    )


def record_cursor(ledger: Ledger, mapping: str, partition: str, value: str | None) -> None:
    """Advance the mapping's high-water mark to ``value`` (never backwards; ISO text compares)."""
    if value is None:
        return
    # Read-then-write while another process (a backfill beside the nightly run) may move the
    # same cursor: SQLite takes its write lock first (else "database is locked" at once),
    # PostgreSQL locks the row; two first inserts at once -> the loser compares again.
    for tries in range(2):
        try:
            with ledger.session(immediate=True) as session:
                current = session.get(Cursor, mapping, with_for_update=True)
                if current is None:
                    session.add(Cursor(mapping=mapping, value=value, partition=partition))
                elif current.value is None or value > current.value:
                    current.value = value
                    current.partition = partition
                    current.updated_at = dt.datetime.now(dt.UTC)
            return
        except IntegrityError:
            if tries:
                raise


def high_water_mark(ledger: Ledger, mapping: str) -> str | None:
    """The recorded high-water mark of a mapping, if any."""
    with ledger.session() as session:
        current = session.get(Cursor, mapping)
        return current.value if current else None
