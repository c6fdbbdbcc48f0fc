"""Rows to batch, whatever their form, as record batches of the manifest's schema.

``write_batches`` takes a table, a reader or record batches with ``_identity`` and any of
``_source_ref``, ``_digest`` and the params, of any type. They come out in
``manifest_schema`` order, as strings, an empty value as null, with ``_digest`` computed
where it is missing (``connector.digests``). Rows already in that form (the batch stage's
own output) pass through untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connector.buffers import value_offsets
from connector.columns import DIGEST, IDENTITY, SOURCE_REF
from connector.digests import digest_sql
from connector.encoding import quote_ident
from connector.outbox.manifest_schema import filled_input_schema, manifest_schema

TABLE_BATCH_ROWS = 100_000  # a table is cut into record batches of this many rows


def record_batches(
    table: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """The rows as record batches (a table cut in pieces, anything else as it comes)."""
    if isinstance(table, pa.Table):
        yield from table.to_batches(max_chunksize=TABLE_BATCH_ROWS)
    else:
        yield from table


def normalised(
    batches: Iterable[pa.RecordBatch], names: Sequence[str], con: duckdb.DuckDBPyConnection
) -> Iterator[pa.RecordBatch]:
    """Batches in manifest column order and types (empty = null); ``_digest`` added if absent."""
    schema = manifest_schema(names)
    with_filled = filled_input_schema(names)
    qi = quote_ident
    for rb in batches:
        if rb.num_rows == 0:
            continue
        if (rb.schema.equals(schema) or rb.schema.equals(with_filled)) and not has_empty_strings(
            rb, names
        ):
            yield rb  # already normalised (the batch stage's own output)
            continue
        cols = set(rb.schema.names)
        if IDENTITY not in cols:
            raise ValueError(f"rows to batch have no {IDENTITY} column (have: {sorted(cols)})")
        inner = [f"{qi(IDENTITY)}::VARCHAR as {qi(IDENTITY)}"]
        inner.append(
            f"{qi(SOURCE_REF)}::VARCHAR as {qi(SOURCE_REF)}"
            if SOURCE_REF in cols
            else f"NULL::VARCHAR as {qi(SOURCE_REF)}"
        )
        if DIGEST in cols:
            inner.append(f"{qi(DIGEST)}::VARCHAR as {qi(DIGEST)}")
        inner += [
            f"nullif({qi(n)}::VARCHAR, '') as {qi(n)}" if n in cols else f"NULL::VARCHAR as {qi(n)}"
            for n in names
        ]
        digest = f"t.{qi(DIGEST)}" if DIGEST in cols else digest_sql(names, "t")
        outer = [f"t.{qi(IDENTITY)}", f"t.{qi(SOURCE_REF)}", digest, *(f"t.{qi(n)}" for n in names)]
        sql = f"select {', '.join(outer)} from (select {', '.join(inner)} from _in) t"
        con.register("_in", rb)
        try:
            out = con.sql(sql).to_arrow_table()
        finally:
            con.unregister("_in")
        out = out.rename_columns(schema.names).cast(schema)
        yield from out.to_batches()


def has_empty_strings(rb: pa.RecordBatch, names: Sequence[str]) -> bool:
    """Whether a param holds ``""`` (read from the offsets: no value is compared)."""
    for name in names:
        col = rb.column(name)
        if col.type != pa.string():
            if pc.any(pc.equal(col, "")).as_py():
                return True
            continue
        offsets = value_offsets(col)
        empty = offsets[1:] == offsets[:-1]
        if col.null_count:
            empty &= col.is_valid().to_numpy(zero_copy_only=False)
        if empty.any():
            return True
    return False
