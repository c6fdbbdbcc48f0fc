"""Delivered digests: what each destination account last confirmed, per profile.

``record_delivered`` upserts confirmed digests (only ever for rows the destination confirmed);
``export_delivered`` streams an account's digests to Parquet for the outbox build, which joins
them in DuckDB to find the profiles that changed. Both take a ``Ledger`` (and run their own
unit of work) or a ``Session`` (and run inside the caller's transaction).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Iterator, Mapping
from itertools import repeat
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import Connection, Select, select
from sqlalchemy.orm import Session

from connector.buffers import one_array
from connector.ledger.models import Batch, Delivered, utcnow
from connector.ledger.store import Ledger, lock_for_transaction, unit_of_work

DELIVERED_COLUMNS = ("identity", "digest")


# identities looked up per statement by ``export_delivered(identities=...)``: within
# SQLite's bound-parameter limit (32,766), a few statements for a night's changes
LOOKUP_CHUNK = 5_000


def export_delivered(
    target: Ledger | Session,
    destination_key: str,
    path: Path,
    *,
    chunk_rows: int = 100_000,
    identities: pa.Array | None = None,
) -> int:
    """Stream the confirmed digests of the profiles at ``destination_key`` to Parquet
    (``identity``, ``digest``); returns the count. With ``identities``, only theirs: looked
    up on the primary key ``LOOKUP_CHUNK`` at a time, so the cost follows the identities
    asked for, not the account's size (a night's changes among millions of profiles).

    Memory stays at one chunk, for a DuckDB join in the outbox build: on SQLite the rows are
    read from the driver's cursor as they come; on PostgreSQL ``COPY`` streams them as CSV
    into a scratch file beside ``path``, which pyarrow reads back block by block.
    """
    schema = pa.schema([(name, pa.string()) for name in DELIVERED_COLUMNS])
    count = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    query = select(Delivered.identity, Delivered.digest).where(
        Delivered.destination_key == destination_key
    )
    with unit_of_work(target) as session, pq.ParquetWriter(path, schema) as writer:
        if identities is not None:
            rows_type = pa.struct(list(schema))
            wanted = identities.drop_null().unique()
            for start in range(0, len(wanted), LOOKUP_CHUNK):
                some = wanted.slice(start, LOOKUP_CHUNK).to_pylist()
                found = session.execute(query.where(Delivered.identity.in_(some))).all()
                if found:
                    rows = pa.array([tuple(row) for row in found], type=rows_type)
                    writer.write_table(pa.Table.from_arrays(rows.flatten(), schema=schema))
                    count += len(found)
            return count
        if session.connection().dialect.name == "postgresql":
            return _export_by_copy(session, query, path, schema, writer)
        rows_type = pa.struct(list(schema))
        for part in _fetch_parts(session, query, chunk_rows):
            # the tuples straight into a struct array: no Python list per column
            rows = pa.array(part, type=rows_type)
            writer.write_table(pa.Table.from_arrays(rows.flatten(), schema=schema))
            count += len(part)
    return count


def _export_by_copy(
    session: Session,
    query: Select[str, str],
    path: Path,
    schema: pa.Schema,
    writer: pq.ParquetWriter,
) -> int:
    """PostgreSQL: the rows of ``query`` as CSV through ``COPY ... TO STDOUT`` into a scratch
    file beside ``path``, parsed by pyarrow as it streams into ``writer``.

    ``COPY`` is the fastest way out of PostgreSQL: faster than SQLAlchemy's rows through a
    server-side cursor, or psycopg2's own named cursor (docs/ledger.md).
    """
    connection = session.connection()
    compiled = query.compile(dialect=connection.dialect)
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    # COPY takes no parameters: the driver quotes them into the statement
    select_sql = cursor.mogrify(str(compiled), compiled.params).decode()
    sql = f"COPY ({select_sql}) TO STDOUT WITH (FORMAT csv, ENCODING 'UTF8')"
    scratch = path.with_name(f".{path.name}.csv")
    count = 0
    try:
        with open(scratch, "wb") as fh:
            cursor.copy_expert(sql, fh, size=1 << 20)
            if not fh.tell():  # no row: pyarrow refuses an empty CSV file
                return 0
        # by path, not the Python file: pyarrow's reader, released later on its own thread,
        # then holds no Python object (freeing one while the interpreter exits aborts it;
        # see connector.sources.csv_parse.parse_fast)
        reader = pacsv.open_csv(
            str(scratch),
            read_options=pacsv.ReadOptions(column_names=schema.names),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            # every column is NOT NULL: an empty field is the empty string
            convert_options=pacsv.ConvertOptions(
                column_types=schema, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
        for batch in reader:
            writer.write_batch(batch)
            count += batch.num_rows
    finally:
        cursor.close()
        scratch.unlink(missing_ok=True)
    return count


def _fetch_parts(
    session: Session, query: Select[str, str], chunk_rows: int
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``query`` as lists of plain tuples, ``chunk_rows`` at a time, streamed.

    On SQLite the driver's own cursor is read (it steps through the rows as they are
    fetched): SQLAlchemy's row objects would cost more than the fetch itself. Elsewhere
    SQLAlchemy streams them with a server-side cursor.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        result = connection.execute(query.execution_options(yield_per=chunk_rows))
        for part in result.partitions(chunk_rows):
            yield [tuple(row) for row in part]
        return
    compiled = query.compile(dialect=connection.dialect)
    params = [compiled.params[name] for name in compiled.positiontup or ()]
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), params)
        while part := cursor.fetchmany(chunk_rows):
            yield list(part)
    finally:
        cursor.close()


# rows converted to Python values and written per step: bounds the memory of a large batch
# (SQLite: one executemany; PostgreSQL: one COPY) to one slice of it
WRITE_CHUNK = 100_000

# The rule of a confirmation, for both dialects: the row of an older batch (or of none) never
# replaces a newer batch's. ``batch_id`` orders them: the outbox writes a profile's rows in
# the order it learns of newer values.
_UPSERT_RULE = (
    "ON CONFLICT (destination_key, identity) DO UPDATE SET "
    'digest = excluded.digest, nonempty = excluded.nonempty, "partition" = excluded."partition", '
    "batch_id = excluded.batch_id, delivered_at = excluded.delivered_at "
    f"WHERE coalesce({Delivered.__tablename__}.batch_id, 0) <= coalesce(excluded.batch_id, 0)"
)
_COLUMNS = 'destination_key, identity, "partition", digest, nonempty, batch_id, delivered_at'


def record_delivered(
    target: Ledger | Session,
    destination_key: str,
    rows: pa.Table | Iterable[Mapping[str, Any]],
    *,
    partition: str,
    batch_id: int | None = None,
    chunk_rows: int = WRITE_CHUNK,
) -> int:
    """Upsert the confirmed digests of delivered rows (SQLite and PostgreSQL); returns the
    number of profiles written (an identity repeated in ``rows``: once, its last row wins).

    A confirmation of an older batch never replaces a newer batch's (``_UPSERT_RULE``).
    ``batch_id``: the ledger's batch that carried the rows (``ValueError`` when there is no
    such batch), or ``None``.

    ``rows``: an Arrow table with ``identity``, ``digest`` and ``nonempty`` (the
    comma-separated non-empty params; ``outbox.manifests.delivered_table`` makes it from
    manifest rows), or dicts with those keys (``nonempty`` may be left out: none). Call it
    only for rows the destination confirmed.

    The cost follows the batch, not its rows one by one: PostgreSQL copies the rows into a
    temporary table (``COPY``) and upserts them with one ``INSERT ... SELECT``; SQLite runs
    one prepared upsert over the rows with its driver's ``executemany``. Both write them in
    identity order (the primary key's), ``chunk_rows`` Python rows in memory at a time.
    Writers of one account take turns (``lock_for_transaction``): on PostgreSQL the first
    confirmation of an account, which finds none of its rows, inserts them without
    ``ON CONFLICT``.
    """
    table = _latest_per_identity(_delivered_columns(rows))
    if not table.num_rows:
        return 0
    now = utcnow()
    with unit_of_work(target, immediate=True) as session:
        lock_for_transaction(session, f"delivered:{destination_key}")
        # once a call, what a foreign key would check row by row (models.Delivered.batch_id)
        if batch_id is not None and session.get(Batch, batch_id) is None:
            raise ValueError(f"record_delivered: batch {batch_id} is not in the ledger")
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            _upsert_by_copy(
                connection, table, destination_key, partition, batch_id, now, chunk_rows
            )
        else:
            _upsert_by_executemany(
                connection, table, destination_key, partition, batch_id, now, chunk_rows
            )
    return table.num_rows


def _delivered_columns(rows: pa.Table | Iterable[Mapping[str, Any]]) -> pa.Table:
    """``rows`` as the three string columns ``record_delivered`` writes (nonempty: never null)."""
    if not isinstance(rows, pa.Table):
        records = list(rows)
        rows = pa.table(
            {
                "identity": pa.array([r["identity"] for r in records], pa.string()),
                "digest": pa.array([r["digest"] for r in records], pa.string()),
                "nonempty": pa.array([r.get("nonempty") or "" for r in records], pa.string()),
            }
        )
    columns = {name: rows.column(name).cast(pa.string()) for name in ("identity", "digest")}
    nonempty = rows.column("nonempty") if "nonempty" in rows.column_names else None
    columns["nonempty"] = (
        pa.chunked_array([pa.array([""] * rows.num_rows, pa.string())])
        if nonempty is None
        else pc.fill_null(nonempty.cast(pa.string()), "")
    )
    for name in ("identity", "digest"):
        if columns[name].null_count:
            raise ValueError(f"record_delivered: {columns[name].null_count} row(s) have no {name}")
    return pa.table(columns)


def _latest_per_identity(table: pa.Table) -> pa.Table:
    """One row per identity, its last in ``table`` (two batches confirmed together: the
    later row is the newer), ordered by identity: PostgreSQL refuses ``ON CONFLICT``
    touching one row twice in a statement, and rows in the key's order are cheaper to
    write into its B-tree than in the batch's."""
    if table.num_rows < 2:
        return table
    # a stable sort: the repeats of an identity stay in their rows' order
    order = pc.array_sort_indices(one_array(table.column("identity")))
    ids = one_array(table.column("identity")).take(order)
    # the last of each run of equal identities
    last = pc.not_equal(ids.slice(0, len(ids) - 1), ids.slice(1))
    keep = pa.concat_arrays([one_array(last), pa.array([True])])
    return table.take(order.filter(keep))


def _upsert_by_executemany(
    connection: Connection,
    table: pa.Table,
    destination_key: str,
    partition: str,
    batch_id: int | None,
    now: dt.datetime,
    chunk_rows: int,
) -> None:
    """SQLite: one prepared upsert run over every row by the driver's ``executemany`` (no
    SQLAlchemy parameter processing per row), inside the caller's transaction."""
    # the column's own conversion of the timestamp, so the ORM reads it back as it wrote it
    column_type = Delivered.__table__.c.delivered_at.type.dialect_impl(connection.dialect)
    to_db = column_type.bind_processor(connection.dialect)
    stamp = to_db(now) if to_db is not None else now
    sql = (
        f"INSERT INTO {Delivered.__tablename__} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
        + _UPSERT_RULE
    )
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, table.num_rows, chunk_rows):
            part = table.slice(start, chunk_rows)
            cursor.executemany(  # sqlite3 takes any iterable: no list of the rows built
                sql,
                zip(  # type: ignore[arg-type]
                    repeat(destination_key),
                    part.column("identity").to_pylist(),
                    repeat(partition),
                    part.column("digest").to_pylist(),
                    part.column("nonempty").to_pylist(),
                    repeat(batch_id),
                    repeat(stamp),
                ),
            )
    finally:
        cursor.close()


_STAGED = "_delivered_confirmed"  # the temporary table of one PostgreSQL upsert


def _upsert_by_copy(
    connection: Connection,
    table: pa.Table,
    destination_key: str,
    partition: str,
    batch_id: int | None,
    now: dt.datetime,
    chunk_rows: int,
) -> None:
    """PostgreSQL: the rows ``COPY``-ed as CSV into a temporary table, then one
    ``INSERT ... SELECT ... ON CONFLICT`` (the constant columns bound once, not per row);
    the temporary table is dropped with it, inside the caller's transaction.

    An account with no row yet (its first confirmation) takes a plain ``INSERT``: no row can
    conflict while the caller holds the account's lock, and PostgreSQL's speculative insert
    of ``ON CONFLICT`` costs more than the insert itself."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    csv_options = pacsv.WriteOptions(include_header=False)
    try:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_STAGED} (identity text, digest text, nonempty text)"
        )
        for start in range(0, table.num_rows, chunk_rows):
            buffer = io.BytesIO()
            # strings are written quoted: an empty one stays empty, not NULL
            pacsv.write_csv(table.slice(start, chunk_rows), buffer, csv_options)
            buffer.seek(0)
            cursor.copy_expert(
                f"COPY {_STAGED} FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')", buffer
            )
        cursor.execute(
            f"SELECT EXISTS (SELECT FROM {Delivered.__tablename__} "
            "WHERE destination_key = %(destination_key)s)",
            {"destination_key": destination_key},
        )
        (account_has_rows,) = cursor.fetchone() or (False,)  # EXISTS: always one row
        cursor.execute(
            f"INSERT INTO {Delivered.__tablename__} ({_COLUMNS}) "
            "SELECT %(destination_key)s, identity, %(partition)s, digest, nonempty, "
            f"%(batch_id)s::integer, %(now)s FROM {_STAGED} "
            + (_UPSERT_RULE if account_has_rows else ""),
            {
                "destination_key": destination_key,
                "partition": partition,
                "batch_id": batch_id,
                "now": now,
            },
        )
        cursor.execute(f"DROP TABLE {_STAGED}")
    finally:
        cursor.close()
