"""Delivered digests: what each destination account last confirmed, per profile.

``record_delivered`` upserts confirmed digests (only ever for rows the destination confirmed);
``export_delivered`` streams an account's digests to Parquet for the outbox build, which joins
them in DuckDB to find the profiles that changed. Both take a ``Ledger`` (and run their own
unit of work) or a ``Session`` (and run inside the caller's transaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from connector.ledger.models import Delivered, utcnow
from connector.ledger.store import Ledger, UpsertInsert, unit_of_work, upsert_insert

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


def record_delivered(
    target: Ledger | Session,
    destination_key: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    partition: str,
    batch_id: int | None = None,
    chunk_rows: int = 5_000,
) -> int:
    """Upsert the confirmed digests of delivered rows (portable: SQLite and PostgreSQL).

    A confirmation of an older batch never replaces a newer batch's (``batch_id`` orders
    them: the outbox writes a profile's rows in the order it learns of newer values).

    ``rows``: dicts with ``identity``, ``digest`` and ``nonempty`` (the comma-separated
    non-empty params; ``outbox.manifests.delivered_records`` reads them from a manifest).
    Call it only for rows the destination confirmed.
    """
    now = utcnow()
    total = 0
    with unit_of_work(target, immediate=True) as session:
        insert = upsert_insert(session)
        chunk: list[dict[str, Any]] = []
        for record in rows:
            chunk.append(
                {
                    "destination_key": destination_key,
                    "partition": partition,
                    "identity": record["identity"],
                    "digest": record["digest"],
                    "nonempty": record.get("nonempty") or "",
                    "batch_id": batch_id,
                    "delivered_at": now,
                }
            )
            if len(chunk) >= chunk_rows:
                total += _upsert_delivered(session, insert, chunk)
                chunk = []
        if chunk:
            total += _upsert_delivered(session, insert, chunk)
    return total


def _upsert_delivered(session: Session, insert: UpsertInsert, chunk: list[dict[str, Any]]) -> int:
    """Upsert one chunk of ``Delivered`` rows; an older batch's row never replaces a newer's."""
    # One identity may appear twice in a chunk (two batches confirmed together): last wins,
    # and PostgreSQL refuses ON CONFLICT touching the same row twice in one statement.
    unique = list({r["identity"]: r for r in chunk}.values())
    # one statement executed with many parameter sets, so SQLAlchemy compiles and caches it
    # once (a multi-row VALUES list would be a new statement with new parameters every chunk)
    stmt = insert(Delivered)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Delivered.destination_key, Delivered.identity],
        set_={
            "digest": stmt.excluded.digest,
            "nonempty": stmt.excluded.nonempty,
            "partition": stmt.excluded.partition,
            "batch_id": stmt.excluded.batch_id,
            "delivered_at": stmt.excluded.delivered_at,
        },
        where=func.coalesce(Delivered.batch_id, 0) <= func.coalesce(stmt.excluded.batch_id, 0),
    )
    session.execute(stmt, unique)
    return len(unique)
