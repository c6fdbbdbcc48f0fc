"""Dedupe and change detection in DuckDB, out of core (stage 3 of docs/architecture.md).

DuckDB runs on an on-disk database under the stage directory with a memory limit, so a
partition far larger than memory is grouped, joined and sorted by spilling to disk while
memory stays bounded by the limit, not by the input.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from connector.columns import IDENTITY, SEQ, SOURCE_REF
from connector.encoding import quote_ident, quote_literal
from connector.profiles import staging

# DuckDB's buffer pool for dedupe and change detection (it spills to disk beyond it); a
# larger pool bought no speed and cost memory (docs/measurements.md)
DUCKDB_MEMORY_LIMIT = os.environ.get("CONNECTOR_DUCKDB_MEMORY_LIMIT", "256MB")
DUCKDB_THREADS = int(os.environ.get("CONNECTOR_DUCKDB_THREADS", "0")) or min(2, os.cpu_count() or 1)


@dataclass
class UpdateCounts:
    """What the dedupe of one partition found: rows in, identities, rows merged away."""

    rows_in: int
    identities: int
    duplicates_merged: int

    @property
    def rows_out(self) -> int:
        return self.identities


def connect(work_dir: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB database file under ``work_dir``, bounded in memory, spilling beside it."""
    work_dir.mkdir(parents=True, exist_ok=True)
    # a fresh file name each time: DuckDB caches open databases by path in the process, and a
    # connection to a path whose earlier database was not closed cleanly can block forever
    db = work_dir / f"work-{uuid.uuid4().hex}.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    con.execute(f"set threads = {int(DUCKDB_THREADS)}")
    con.execute(f"set temp_directory = {quote_literal(str(work_dir / 'spill'))}")
    con.execute("set preserve_insertion_order = false")
    con.execute("set enable_progress_bar = false")  # library code: nothing on stdout
    return con


def parquet_glob(paths: Sequence[Path] | Path) -> str:
    """A DuckDB list literal (or single string) naming Parquet files."""
    if isinstance(paths, Path):
        return quote_literal(str(paths))
    return "[" + ", ".join(quote_literal(str(p)) for p in paths) + "]"


def merge_sql(source: str, names: Sequence[str]) -> str:
    """One row per identity: per param the value of the latest ``_seq`` among non-empty ones.

    ``_seq``/``_source_ref`` are those of the identity's latest row; ``_rows`` counts the
    rows merged. An empty value (null or "") never erases a non-empty one.
    """
    qi = quote_ident
    params = ",\n  ".join(
        f"arg_max({qi(n)}, {SEQ}) FILTER (WHERE {qi(n)} IS NOT NULL AND {qi(n)} <> '') AS {qi(n)}"
        for n in names
    )
    sep = ",\n  " if names else ""
    return (
        f"SELECT {IDENTITY}, max({SEQ}) AS {SEQ}, arg_max({SOURCE_REF}, {SEQ}) AS {SOURCE_REF},"
        f" count(*) AS _rows{sep}{params}\n"
        f"FROM {source}\nWHERE {IDENTITY} IS NOT NULL AND {IDENTITY} <> ''\nGROUP BY {IDENTITY}"
    )


UPDATE_ROWS = "_rows"
# rows of one identity (hash) from which it is merged; tests lower it to 1 to send every
# identity down that path, as a hash collision would send two
REPEATED_MIN_ROWS = 2
# repeated identities' rows picked out of the parts by their _seq, held sorted in memory
# (8 bytes a row) and copied to scratch files; past this many repeated identities DuckDB
# scans the parts for them instead, out of core
REPEATED_LOOKUP_MAX = 1_000_000
SELECTED = "selected.parquet"  # _seq of the staged single rows to send
MERGED = "merged.parquet"  # repeated identities merged, to send (updates_schema)
FETCH_ROWS = 100_000
# updates.parquet is written once and read once by the batch stage: plain pages, no
# statistics (string min/max per page cost a third of the write)
UPDATES_PARQUET: dict[str, Any] = {
    "compression": "none",
    "use_dictionary": False,
    "write_statistics": False,
}


def updates_schema(names: Sequence[str]) -> pa.Schema:
    return pa.schema(
        [
            (IDENTITY, pa.string()),
            (SOURCE_REF, pa.string()),
            (SEQ, pa.int64()),
            (UPDATE_ROWS, pa.int64()),
        ]
        + [(n, pa.string()) for n in names]
    )


def _in_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Mask of ``values`` found in ``sorted_set`` (ascending)."""
    if not len(sorted_set) or not len(values):
        return np.zeros(len(values), dtype=bool)
    first = int(values[0])
    if int(values[-1]) - first == len(values) - 1 and np.array_equal(
        values, np.arange(first, first + len(values), dtype=values.dtype)
    ):
        # a staged part's _seq: consecutive numbers. The set's members in that range mark
        # their places directly (no binary search per value)
        lo, hi = np.searchsorted(sorted_set, [first, first + len(values)])
        mask = np.zeros(len(values), dtype=bool)
        mask[sorted_set[lo:hi] - first] = True
        return mask
    at = np.searchsorted(sorted_set, values)
    np.minimum(at, len(sorted_set) - 1, out=at)
    return sorted_set[at] == values


def build_updates(
    con: duckdb.DuckDBPyConnection,
    *,
    mapped: Sequence[Path],
    names: Sequence[str],
    out: Path,
) -> UpdateCounts:
    """One row per identity of the partition: the day's values, merged; :func:`read_updates`
    reads them from ``out``.

    Identities seen once (most of them) are named by ``_seq`` in ``out/selected.parquet``:
    their rows stay in ``mapped``, no wide row is joined, sorted or copied. Identities seen
    more than once are merged in DuckDB (out of core: later ``_seq`` wins per param, an empty
    value never erases) and written to ``out/merged.parquet`` in ``_seq`` order. Change detection is not done here: the profile store
    (``connector.profiles.store``) compares the day with the profile's current values.
    """
    parts = list(mapped)
    schema = updates_schema(names)
    out.mkdir(parents=True, exist_ok=True)
    selected_path, merged_path = out / SELECTED, out / MERGED
    if not parts:
        pq.write_table(pa.table({SEQ: pa.array([], pa.int64())}), selected_path)
        pq.write_table(schema.empty_table(), merged_path, **UPDATES_PARQUET)
        return UpdateCounts(0, 0, 0)
    qi = quote_ident
    source = staging.duck_source(con, parts, "_staged")
    narrow = staging.duck_source(con, parts, "_staged_keys", [IDENTITY, SEQ])
    valid = f"m.{IDENTITY} IS NOT NULL AND m.{IDENTITY} <> ''"
    # identities seen more than once, by a 64-bit hash: the hash table then holds 8 bytes a
    # key, not a copy of every identity. Two identities sharing a hash are only both merged,
    # each on its own (merge_sql groups by the identity itself): the same updates.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE repeated AS SELECT hash(m.{IDENTITY}) AS _h FROM {narrow} m "
        f"WHERE {valid} GROUP BY _h HAVING count(*) >= {int(REPEATED_MIN_ROWS)}"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE row_flags AS
        SELECT m.{SEQ}, hash(m.{IDENTITY}) IN (SELECT _h FROM repeated) AS _repeated
        FROM {narrow} m WHERE {valid}
        """
    )
    # the singles are named by _seq (sorted): their rows stay in the staged parts, read once
    # more only by the profile stage (no copy of the wide rows here)
    con.execute(
        f"COPY (SELECT {SEQ} FROM row_flags WHERE NOT _repeated ORDER BY {SEQ}) "
        f"TO {quote_literal(str(selected_path))} (FORMAT parquet)"
    )
    params = ", ".join(qi(n) for n in names)
    sep = ", " if names else ""
    scratch = out / ".repeated-rows"
    repeated_rows = _repeated_rows(con, source, parts, scratch)
    out_cols = ", ".join(
        [IDENTITY, SOURCE_REF, SEQ, f"_rows AS {UPDATE_ROWS}"] + [qi(n) for n in names]
    )
    with pq.ParquetWriter(merged_path, schema, **UPDATES_PARQUET) as writer:
        reader = con.sql(
            f"""
            WITH m AS ({merge_sql(repeated_rows, names)})
            SELECT {out_cols} FROM (
                SELECT m.{IDENTITY}, m.{SOURCE_REF}, m.{SEQ}, m._rows{sep}{params}
                FROM m
            ) ORDER BY {SEQ}
            """
        ).to_arrow_reader(FETCH_ROWS)
        try:
            for rb in reader:
                writer.write_batch(pa.RecordBatch.from_arrays(rb.columns, schema=schema))
        finally:
            reader.close()
    shutil.rmtree(scratch, ignore_errors=True)
    singles = con.execute("SELECT count(*) FROM row_flags WHERE NOT _repeated").fetchone()
    assert singles is not None
    merged = pq.ParquetFile(merged_path).metadata.num_rows
    ((repeated_rows_in,),) = con.execute(
        f"SELECT coalesce(sum({UPDATE_ROWS}), 0) FROM read_parquet({quote_literal(str(merged_path))})"
    ).fetchall()
    rows_in = int(singles[0]) + int(repeated_rows_in)
    identities = int(singles[0]) + int(merged)
    return UpdateCounts(
        rows_in=rows_in, identities=identities, duplicates_merged=rows_in - identities
    )


def _repeated_rows(
    con: duckdb.DuckDBPyConnection, source: str, parts: Sequence[Path], scratch: Path
) -> str:
    """A DuckDB relation of the staged rows whose identity is in the temp table
    ``repeated`` (``row_flags._repeated``), copied part by part into ``scratch``.

    A query over ``source`` filtered on ``repeated`` scans every wide column of every part
    (with IPC parts DuckDB converts each value, for a few rows). Here
    each part's ``_seq`` is looked up among the repeated rows' ``_seq``, sorted (a binary
    search, no hash of the identity strings), and the matching rows are copied, one part
    per core at a time. Past
    ``REPEATED_LOOKUP_MAX`` repeated identities (input where most customers repeat, whose
    rows the copies would nearly double) DuckDB's scan, out of core, is used instead.
    """
    ((repeated,),) = con.execute("SELECT count(*) FROM repeated").fetchall()
    if int(repeated) > REPEATED_LOOKUP_MAX:
        return f"(SELECT * FROM {source} r WHERE hash(r.{IDENTITY}) IN (SELECT _h FROM repeated))"
    found = con.execute(f"SELECT {SEQ} FROM row_flags WHERE _repeated ORDER BY {SEQ}")
    seqs = np.asarray(found.fetchnumpy()[SEQ], dtype=np.int64)
    scratch.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    if len(seqs):

        def pick(number: int, path: Path) -> Path | None:
            keep = _in_sorted(staging.read(path, [SEQ]).column(SEQ).to_numpy(), seqs)
            if not keep.any():
                return None
            target = scratch / f"rows-{number:05d}.parquet"
            pq.write_table(staging.read(path).filter(pa.array(keep)), target, **UPDATES_PARQUET)
            return target

        # pyarrow releases the GIL: one part per core at a time
        with ThreadPoolExecutor(DUCKDB_THREADS, thread_name_prefix="repeated-rows") as pool:
            picked = pool.map(pick, range(len(parts)), parts)
            files = [f for f in picked if f is not None]
    if not files:
        # no repeated identity: an empty relation of the parts' columns
        return f"(SELECT * FROM {source} LIMIT 0)"
    return f"read_parquet({parquet_glob(files)}, union_by_name = true)"


def read_updates(
    parts: Sequence[Path],
    out: Path,
    names: Sequence[str],
    *,
    schema: pa.Schema | None = None,
    batch_rows: int = FETCH_ROWS,
) -> Generator[pa.RecordBatch, None, None]:
    """The day's rows ``build_updates`` decided, as record batches of ``schema`` (by default
    :func:`updates_schema`; any subset of its columns, in any order).

    First the selected single rows, read from the staged ``parts`` in their order, then the
    merged ones in ``_seq`` order.
    """
    schema = schema or updates_schema(names)
    selected = pq.read_table(out / SELECTED).column(SEQ).to_numpy()
    if len(selected):
        columns = list({*(c for c in schema.names if c != UPDATE_ROWS), SEQ})
        for path in parts:
            # the narrow _seq column first: a part with no row selected is not read further
            seqs = staging.read(path, [SEQ]).column(SEQ).to_numpy()
            part_keep = _in_sorted(seqs, selected)
            if not part_keep.any():
                continue
            at = 0
            for rb in staging.iter_batches(path, batch_rows, columns):
                keep = part_keep[at : at + rb.num_rows]
                at += rb.num_rows
                if not keep.any():
                    continue
                table = pa.Table.from_batches([rb])
                if not keep.all():
                    table = table.filter(pa.array(keep))
                yield from _conform(table, schema).to_batches()
    merged = pq.ParquetFile(out / MERGED)
    for rb in merged.iter_batches(batch_rows):
        yield from _conform(pa.Table.from_batches([rb]), schema).to_batches()


def count_updates(out: Path) -> int:
    """How many rows :func:`read_updates` yields (without ``skip``)."""
    return int(
        pq.ParquetFile(out / SELECTED).metadata.num_rows
        + pq.ParquetFile(out / MERGED).metadata.num_rows
    )


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    n = table.num_rows
    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(table.column(f.name).cast(f.type))
        elif f.name == UPDATE_ROWS:
            columns.append(pa.array(np.ones(n, dtype=np.int64)))
        else:
            columns.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(columns, schema=schema)
