"""What a SQL source reads: its columns, the window's rows and their order, and its chunks.

``SqlPlan`` is made on a SQLAlchemy connection (a ``table`` reflected, a ``query``'s result
columns and their types asked of the database) and checks that the mapping's columns are
there. It reads those columns only (``needed_columns``: cursor, key, identity, params), so
a column the mapping does not use is never selected, whatever its type or size. Both
readers (``sql.py`` with SQLAlchemy, ``sql_arrow.py`` with ADBC) select the same columns of
the same rows in the same order from it, and build their chunks with ``SqlPlan.chunk``.

The window's rows (``SqlPlan.window_rows``): the cursor inside the partition window
(``sql_window``), in cursor order then by key. On SQLite each row's instant is computed
once, in a subquery that SQLite must not merge into the outer query (``LIMIT -1 OFFSET 0``:
it merges none with an OFFSET), and the outer query filters and orders on it; merged,
SQLite would compute it four times a row (two bounds, the NULL test and the order).
Where the cursor's stored text sorts as its instants (``sql_window.sqlite_text_order``,
asked of the database by ``SqlPlan.text_order``), the same rows are the text range
``SqlPlan.text_range`` and their order the text's, then the key's: a reader may select
them so, with neither the computation nor a sort when the column is indexed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    Date,
    DateTime,
    MetaData,
    Select,
    String,
    Table,
    column,
    inspect,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from connector.columns import SEQ, SOURCE_REF
from connector.mapping import SourceMapping, SqlSource
from connector.partitions import Window
from connector.sources.chunks import SourceError
from connector.sources.sql_window import (
    CursorKind,
    kind_of_code,
    kind_of_type,
    order_key,
    sqlite_in_window,
    sqlite_instant,
    sqlite_order,
    sqlite_range,
    sqlite_text_order,
    sqlite_text_range,
    window_filter,
)

# the fenced subquery's column holding each row's cursor instant (SQLite)
INSTANT = "_connector_instant"


def needed_columns(
    mapping: SourceMapping, source: SqlSource, keys: list[str]
) -> list[tuple[str, str]]:
    """The columns a read of ``source`` selects, each with the mapping field that names it:
    the cursor (the window, the order, the high-water mark), the ``keys`` (the order, the
    source refs), the identity and the params' columns. No other column is read."""
    needed = [("source.cursor", source.cursor)]
    needed += [("source.key", k) for k in keys]
    needed += [("identity.column", mapping.identity.column)]
    needed += [(f"params.{p}", s.column) for p, s in mapping.param_specs.items()]
    return needed


def check_sqlite_file(url: str, mapping: str) -> None:
    """A SQLite URL must name a file that exists (SQLite would create an empty one)."""
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


@dataclass(frozen=True)
class WindowRows:
    """The rows of one window: their columns by name (from ``from_``), the conditions
    that select them, and what they are ordered by (the cursor's instant, then the key)."""

    columns: dict[str, Any]
    from_: Any
    where: list[Any]
    order_by: list[Any]


class SqlPlan:
    """What to select from a table or query, and how to filter on its cursor."""

    def __init__(self, conn: Connection, mapping: SourceMapping, source: SqlSource) -> None:
        self.dialect = conn.dialect.name
        self.label: str
        # SQLite: each column's declared type (a ``table``), for its type affinity
        self.declared: dict[str, str] | None = None
        # SQLite: the column that is the table's rowid (``INTEGER PRIMARY KEY``): an integer
        self.rowid: str | None = None
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
            if self.dialect == "sqlite":
                self.declared, self.rowid = _sqlite_columns(conn, source.table, source.schema_)
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
        by_name = {c.name: c for c in self.columns}
        where = f"table {source.table!r}" if source.table else "the query"
        needed = needed_columns(mapping, source, declared)
        for field, name in needed:
            if name not in by_name:
                raise SourceError(
                    f"{mapping.name}: {field}: column {name!r} not in {where} "
                    f"(have: {', '.join(by_name)})"
                )
        # only the columns the mapping uses are read, in the source's order: another
        # column's type, size or errors are none of the read's business
        read = {name for _, name in needed}
        self.columns = [c for c in self.columns if c.name in read]
        self.names = [c.name for c in self.columns]
        self.cursor = by_name[source.cursor]
        self.keys = [by_name[k] for k in declared]
        self.kind: CursorKind = (
            kind_of_type(self.dialect, self.cursor.type)
            if source.table is not None
            else kind_of_code(self.dialect, codes.get(source.cursor))
        )

    def window_rows(self, window: Window) -> WindowRows:
        """The rows whose cursor lies in ``window`` (``sql_window``), and their order."""
        if self.dialect != "sqlite":
            columns = {c.name: c for c in self.columns}
            where = window_filter(self.dialect, self.kind, self.cursor, window)
            order = [*order_key(self.dialect, self.cursor, window), *self.keys]
            return WindowRows(columns, self.from_, where, order)
        raw = type_coerce(self.cursor, String())
        instant = sqlite_instant(raw, window.start, window.end).label(INSTANT)
        fenced = (
            select(*self.columns, instant)
            .select_from(self.from_)
            .where(*sqlite_range(raw, window))
            .limit(-1)
            .offset(0)
            .subquery("w")
        )
        columns = {n: fenced.c[n] for n in self.names}
        fenced_raw = type_coerce(columns[self.cursor.name], String())
        return WindowRows(
            columns,
            fenced,
            [sqlite_in_window(fenced.c[INSTANT], fenced_raw, window)],
            [sqlite_order(fenced.c[INSTANT], fenced_raw), *(columns[k.name] for k in self.keys)],
        )

    def text_order(self, window: Window) -> Select[Any] | None:
        """SQLite: a query of one value, true when the window's rows are those of
        ``text_range`` and their stored cursor text sorts as their instants
        (``sql_window.sqlite_text_order``); None when no data of this window can be."""
        raw = type_coerce(self.cursor, String())
        holds = sqlite_text_order(raw, window) if self.dialect == "sqlite" else None
        if holds is None:
            return None
        return select(holds).select_from(self.from_).where(*sqlite_range(raw, window))

    def text_range(self, window: Window) -> list[Any]:
        """SQLite: the window as a range of the stored cursor text, where ``text_order``
        holds."""
        return sqlite_text_range(type_coerce(self.cursor, String()), window)

    def selected(self, columns: dict[str, Any]) -> list[Any]:
        """The columns as SQLAlchemy reads them: on SQLite the stored value as is (no
        datetime/Decimal conversion that could fail or round)."""
        if self.dialect != "sqlite":
            return list(columns.values())
        return [
            type_coerce(c, String()).label(name)
            if isinstance(c.type, DateTime | Date)
            or c.type.__class__.__name__ in ("NUMERIC", "Numeric", "DECIMAL")
            else c
            for name, c in columns.items()
        ]

    def statement(self, window: Window) -> Select[Any]:
        """The window's rows, each read column as ``selected``, in order."""
        rows = self.window_rows(window)
        return (
            select(*self.selected(rows.columns))
            .select_from(rows.from_)
            .where(*rows.where)
            .order_by(*rows.order_by)
        )

    def chunk(self, arrays: list[pa.Array], seq: int) -> pa.Table:
        """A raw chunk's table: the columns' text ``arrays`` (in ``names`` order), then
        ``_source_ref`` and ``_seq`` from ``seq`` on."""
        rows = len(arrays[0]) if arrays else 0
        cursor_at = self.names.index(self.cursor.name)
        # "<label>:<key>[/<key>...]" (a NULL key part reads "None"), else "<label>:<cursor>#<seq>"
        join = {"null_handling": "replace", "null_replacement": "None"}
        seqs = pa.array(range(seq, seq + rows), pa.int64())
        if self.keys:
            keys = [arrays[self.names.index(k.name)] for k in self.keys]
            refs = pc.binary_join_element_wise(
                f"{self.label}:", pc.binary_join_element_wise(*keys, "/", **join), "", **join
            )
        else:
            refs = pc.binary_join_element_wise(
                pc.binary_join_element_wise(f"{self.label}:", arrays[cursor_at], "", **join),
                seqs.cast(pa.string()),
                "#",
            )
        return pa.table({**dict(zip(self.names, arrays, strict=True)), SOURCE_REF: refs, SEQ: seqs})


def _sqlite_columns(
    conn: Connection, table: str, schema: str | None
) -> tuple[dict[str, str], str | None]:
    """A SQLite table's declared column types, and the column that is its rowid, if any: its
    one primary key column, declared ``INTEGER``, when the key has no index of its own (a
    WITHOUT ROWID table's has one, as has ``INTEGER PRIMARY KEY DESC``, which is no rowid)."""
    quote = conn.dialect.identifier_preparer.quote
    prefix = f"{quote(schema)}." if schema else ""
    columns = list(conn.exec_driver_sql(f"PRAGMA {prefix}table_xinfo({quote(table)})"))
    declared = {row[1]: row[2] or "" for row in columns}
    keys = [row for row in columns if row[5]]
    if len(keys) != 1 or keys[0][2].upper() != "INTEGER":
        return declared, None
    indexes = conn.exec_driver_sql(f"PRAGMA {prefix}index_list({quote(table)})").mappings()
    if any(row["origin"] == "pk" for row in indexes):
        return declared, None
    return declared, keys[0][1]
