"""URL encoding of batch-file names and values: exactly ``urllib.parse.quote(v, safe="")``.

UTF-8 bytes, the unreserved ``A-Za-z0-9_.~-`` kept, every other byte as ``%XX`` (upper
case). This module is the connector's one definition of that rule: single values go
through ``quote``, columns and whole batch-file lines through DuckDB's ``url_encode``
(the same output, vectorised; ``tests/encoding`` checks it on every code point and on
hostile values), and the encoded size of a value is computed here too, so that the
profile-size cap and the batch files agree.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Executor
from urllib.parse import quote

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.buffers import one_array

# Anything outside the unreserved set needs escaping (names and values alike).
NEEDS_ESCAPE = r"[^A-Za-z0-9_.~-]"
UNRESERVED = r"[A-Za-z0-9_.~-]"

# one in-memory DuckDB connection per thread that encodes lines (a connection is not shared
# between threads that run queries at once)
_local = threading.local()


def quote_value(value: str) -> str:
    """The reference encoding of one value (names, headers, tests)."""
    return quote(value, safe="")


def encoded_length(text: str) -> int:
    """Bytes of ``text`` URL-encoded (a param name in a batch file)."""
    return len(quote_value(text))


def encoded_lengths(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Bytes of each value URL-encoded (0 for null), as int64: an escaped byte takes three."""
    raw = pc.binary_length(col)
    plain = pc.count_substring_regex(col, UNRESERVED)
    enc = pc.subtract(pc.multiply(raw, 3), pc.multiply(plain, 2))
    return pc.fill_null(enc, 0).to_numpy(zero_copy_only=False).astype(np.int64)


def sql_encode(column_sql: str) -> str:
    """DuckDB expression encoding ``column_sql``; NULL stays NULL."""
    return f"url_encode({column_sql})"


def quote_ident(name: str) -> str:
    """A DuckDB identifier for any column name."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A SQL string literal for any text (a value, a path)."""
    return "'" + text.replace("'", "''") + "'"


def encode_array(
    values: pa.Array | pa.ChunkedArray, *, con: duckdb.DuckDBPyConnection | None = None
) -> pa.Array | pa.ChunkedArray:
    """URL-encode a string array (nulls stay null), vectorised."""
    if values.null_count == len(values):
        return values
    needs = pc.any(pc.match_substring_regex(values, NEEDS_ESCAPE)).as_py()
    if not needs:
        return values
    own = con is None
    con = con or duckdb.connect()
    try:
        data = pa.table({"v": values})
        con.register("_encode_input", data)
        try:
            out = con.sql("select url_encode(v) as v from _encode_input").to_arrow_table()
        finally:
            con.unregister("_encode_input")
        return one_array(out.column("v"))
    finally:
        if own:
            con.close()


def _connection() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection for encoding lines (one thread: the caller's pool
    gives the parallelism)."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute("set threads = 1")
        con.execute("set enable_progress_bar = false")
        con.execute("set preserve_insertion_order = true")
        _local.con = con
    return con


def _lines_sql(count: int, prefix: str) -> str:
    fields = ", ".join(f"coalesce(url_encode(c{j}), '')" for j in range(count))
    return f"select {quote_literal(prefix)} || concat_ws(',', {fields}) as line from _lines_input"


def encode_lines_of(batch: pa.RecordBatch, columns: Sequence[str], prefix: str = "\n") -> pa.Array:
    """One line per row of ``batch`` (see :func:`encode_lines`), as one string array whose
    data buffer holds the lines back to back, in row order."""
    if not columns:
        raise ValueError("a line needs at least one column")
    values = {}
    for j, name in enumerate(columns):
        col = one_array(batch.column(name))
        values[f"c{j}"] = col if col.type == pa.string() else col.cast(pa.string())
    con = _connection()
    con.register("_lines_input", pa.table(values))
    try:
        out = con.sql(_lines_sql(len(columns), prefix)).to_arrow_table()
    finally:
        con.unregister("_lines_input")
    return one_array(out.column("line"))


def encode_lines(
    table: pa.Table | pa.RecordBatch,
    columns: Sequence[str],
    *,
    prefix: str = "\n",
    executor: Executor | None = None,
) -> pa.ChunkedArray:
    """One text line per row: ``prefix`` + the URL-encoded ``columns`` joined by ``,``.

    Null and empty values become empty fields. One output chunk per record batch of
    ``table`` (a string array with its lines back to back in its data buffer, ready to be
    written), the batches encoded side by side on ``executor`` when one is given (DuckDB
    releases the GIL while it encodes).
    """
    batches = table.to_batches() if isinstance(table, pa.Table) else [table]
    if executor is not None and len(batches) > 1:
        chunks = list(executor.map(lambda rb: encode_lines_of(rb, columns, prefix), batches))
    else:
        chunks = [encode_lines_of(rb, columns, prefix) for rb in batches]
    if any(c.type == pa.large_string() for c in chunks):
        chunks = [c.cast(pa.large_string()) for c in chunks]
    return pa.chunked_array(chunks, type=chunks[0].type if chunks else pa.string())


def header_line(identity_type: str, param_names: Sequence[str]) -> str:
    """The batch file's first line: identity header then param names, each encoded."""
    return ",".join(quote_value(name) for name in [identity_type, *param_names])
