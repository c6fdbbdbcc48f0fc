"""SQL sources: a table or query behind any SQLAlchemy URL, read incrementally and streamed.

- ``table`` is reflected (identifiers quoted by SQLAlchemy); ``query`` is wrapped as a
  subquery (``sql_plan``). Only the columns the mapping uses are selected (cursor, key,
  identity, params: ``sql_plan.needed_columns``); the others are never read. Rows with the ``cursor`` column in the partition window
  ``[start, end)`` are read in ``cursor`` (then key) order, so later updates get a later
  ``_seq``; the window is a condition the database evaluates, on an index of the cursor
  column where there is one.
- Cursor time zones (``sql_window``, ``docs/sources.md``): an aware cursor
  (``timestamptz``, MySQL/MariaDB ``TIMESTAMP``, text with ``Z`` or ``+hh:mm``) is
  compared as an instant; a naive one (``timestamp``/``DATETIME``, text without an
  offset, a date) as local time in CONNECTOR_TIMEZONE, the window's zone. Which one a
  cursor is comes from its type in the database: reflected for a ``table``, reported
  by the database for a ``query``'s result column; never from the session's time zone.
  On SQLite, where datetimes are text, each value is read by SQLite's date functions
  (both forms may share a column) and rows come in the order of their instants.
- Two readers, chosen by the URL's dialect (``sql_paths``, ``docs/sql-sources.md``): on
  PostgreSQL and SQLite the Arrow reader (``sql_arrow``: ADBC record batches, streamed),
  elsewhere SQLAlchemy's (here: ``stream_results`` + ``yield_per``, a server-side cursor
  on PostgreSQL, an unbuffered cursor on MySQL/MariaDB). An Arrow dialect whose columns
  have no exact Arrow text rule is read with SQLAlchemy, and the log says why. Memory
  stays bounded either way.
- Values become text exactly, the same from both readers (``sql_text``): Decimal in plain
  notation, datetimes ISO 8601, floats by their shortest repr, NULL stays null. On SQLite
  the stored value is taken as is.
- The URL's password is never shown: messages and logs carry ``masked_url``, and a
  driver's own message has it taken out (``without_password``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
from collections.abc import Generator, Iterator

import adbc_driver_manager
import pyarrow as pa
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connector.ledger import Cursor, Ledger
from connector.mapping import SourceMapping, SqlSource
from connector.partitions import Window
from connector.rejects import empty_rejects
from connector.sources.chunks import RawChunk, SourceError
from connector.sources.sql_arrow import ArrowUnavailable, StreamError, iter_arrow_tables
from connector.sources.sql_paths import ArrowDriver, NoArrowReader, driver_for
from connector.sources.sql_plan import SqlPlan, check_sqlite_file
from connector.sources.sql_text import column_array
from connector.sql_urls import masked_url, with_installed_driver, without_password

log = logging.getLogger(__name__)

SQLALCHEMY = "SQLAlchemy"  # the reader's name in logs


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
    check_sqlite_file(source.url, mapping.name)
    try:
        driver = driver_for(source.url, source.reader)
    except NoArrowReader as exc:
        raise SourceError(f"{mapping.name}: {exc}") from None
    rows, reader = 0, SQLALCHEMY
    with _source_errors(mapping.name, source.url, "reading"):
        with _connection(source.url) as conn:
            plan = SqlPlan(conn, mapping, source)
        opened = (
            _open_arrow(driver, mapping.name, plan, source, window, chunk_rows) if driver else None
        )
        if opened is not None and driver is not None:
            first, rest = opened
            reader = driver.package
            with contextlib.closing(rest):
                for table in itertools.chain(first, rest):
                    rows += table.num_rows
                    yield _chunk(table, plan)
        else:
            with _connection(source.url) as conn:
                for table in sqlalchemy_tables(conn, plan, window, chunk_rows):
                    rows += table.num_rows
                    yield _chunk(table, plan)
    shown = masked_url(source.url)
    log.info("%s/%s: %s rows from %s (%s)", mapping.name, partition, rows, shown, reader)


def _open_arrow(
    driver: ArrowDriver,
    name: str,
    plan: SqlPlan,
    source: SqlSource,
    window: Window,
    chunk_rows: int,
) -> tuple[list[pa.Table], Generator[pa.Table, None, None]] | None:
    """The Arrow reader opened on the window: the first chunk's table (none for no rows)
    and the rest; None when the columns do not allow it (logged: why), or a
    ``SourceError`` saying why when the source asks for ``reader: arrow``."""
    tables = iter_arrow_tables(driver, source.url, plan, window, chunk_rows=chunk_rows)
    try:
        first = next(tables, None)
    except ArrowUnavailable as exc:
        if source.reader == "arrow":
            raise SourceError(f"{name}: source.reader: arrow, but {exc}") from None
        log.info("%s: read with SQLAlchemy: %s", name, exc)
        return None
    return ([] if first is None else [first]), tables


def _chunk(table: pa.Table, plan: SqlPlan) -> RawChunk:
    high = table.column(plan.cursor.name)[-1].as_py() if table.num_rows else None
    return RawChunk(table, empty_rejects(), plan.label, high)


def sqlalchemy_tables(
    conn: Connection, plan: SqlPlan, window: Window, chunk_rows: int
) -> Iterator[pa.Table]:
    """The window's rows through SQLAlchemy, streamed: tuples, each column made text."""
    stmt = plan.statement(window)
    result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(stmt)
    seq = 0
    for rows in result.partitions(chunk_rows):
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in plan.names]
        table = plan.chunk([column_array(values) for values in columns], seq)
        seq += table.num_rows
        yield table


def iter_sql_identities(mapping: SourceMapping, *, chunk_rows: int = 100_000) -> Iterator[pa.Array]:
    """Every distinct value of the identity column the source holds now, whatever its
    cursor (raw text, as the extract reads it), streamed in chunks."""
    source = mapping.source
    assert isinstance(source, SqlSource)
    check_sqlite_file(source.url, mapping.name)
    with (
        _source_errors(mapping.name, source.url, "reading the identities of"),
        _connection(source.url) as conn,
    ):
        plan = SqlPlan(conn, mapping, source)
        columns = {c.name: c for c in plan.columns}
        ident = plan.selected(columns)[plan.names.index(mapping.identity.column)]
        stmt = select(ident).select_from(plan.from_).distinct()
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(stmt)
        for rows in result.partitions(chunk_rows):
            yield column_array([row[0] for row in rows])


@contextlib.contextmanager
def _connection(url: str) -> Iterator[Connection]:
    """A SQLAlchemy connection to ``url`` (with the installed driver), its engine disposed
    after it."""
    engine = create_engine(with_installed_driver(url))
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


@contextlib.contextmanager
def _source_errors(mapping: str, url: str, doing: str) -> Iterator[None]:
    """A database's error as a ``SourceError`` naming the mapping and the masked URL; the
    driver's own text without the password."""
    try:
        yield
    except SourceError:
        raise
    except (SQLAlchemyError, adbc_driver_manager.Error, StreamError) as exc:
        detail = getattr(exc, "orig", None) or exc
        text = without_password(f"{detail.__class__.__name__}: {detail}", url)
        raise SourceError(f"{mapping}: {doing} {masked_url(url)} failed: {text}") from exc


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
