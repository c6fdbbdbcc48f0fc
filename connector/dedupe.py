"""Dedupe and change detection in DuckDB, out of core (stage 3 of docs/architecture.md).

DuckDB runs on an on-disk database under the stage directory with a memory limit, so a
partition far larger than memory is grouped, joined and sorted by spilling to disk while
memory stays bounded by the limit, not by the input.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from connector.columns import DIGEST, IDENTITY, SEQ, SOURCE_REF
from connector.digests import digest_sql
from connector.encoding import quote_ident

DUCKDB_MEMORY_LIMIT = os.environ.get("CONNECTOR_DUCKDB_MEMORY_LIMIT", "512MB")
DUCKDB_THREADS = int(os.environ.get("CONNECTOR_DUCKDB_THREADS", "0")) or min(2, os.cpu_count() or 1)
CLEARS_SAMPLE = 10


@dataclass
class UpdateCounts:
    """What change detection found (``clears_sample``: identity, source_ref, params)."""

    rows_in: int
    identities: int
    duplicates_merged: int
    unchanged: int
    cleared: int
    rows_out: int
    clears_sample: list[dict[str, Any]]
    # identities whose delivered values came from a newer partition: a backfill of an older
    # day must not overwrite them, so they are not sent
    superseded: int = 0


def connect(work_dir: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB database file under ``work_dir``, bounded in memory, spilling beside it."""
    work_dir.mkdir(parents=True, exist_ok=True)
    # a fresh file name each time: DuckDB caches open databases by path in the process, and a
    # connection to a path whose earlier database was not closed cleanly can block forever
    db = work_dir / f"work-{uuid.uuid4().hex}.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    con.execute(f"set threads = {int(DUCKDB_THREADS)}")
    con.execute(f"set temp_directory = '{_sql_path(work_dir / 'spill')}'")
    con.execute("set preserve_insertion_order = false")
    con.execute("set enable_progress_bar = false")  # library code: nothing on stdout
    return con


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def parquet_glob(paths: Sequence[Path] | Path) -> str:
    """A DuckDB list literal (or single string) naming Parquet files."""
    if isinstance(paths, Path):
        return f"'{_sql_path(paths)}'"
    return "[" + ", ".join(f"'{_sql_path(p)}'" for p in paths) + "]"


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


def build_updates(
    con: duckdb.DuckDBPyConnection,
    *,
    mapped: Sequence[Path],
    delivered: Path,
    names: Sequence[str],
    out: Path,
    partition: str,
) -> UpdateCounts:
    """Merge, digest and compare with the delivered digests; write the changed rows to ``out``.

    A profile whose last delivered values came from a partition later than ``partition`` is
    left out (counted as superseded): sending an older day's values would overwrite newer ones.

    Returns counts and a sample of clears (params non-empty at delivery, empty now).
    """
    qi = quote_ident
    if mapped:
        source = f"read_parquet({parquet_glob(list(mapped))}, union_by_name = true)"
    else:
        cols = ", ".join(
            [
                f"NULL::VARCHAR AS {IDENTITY}",
                f"NULL::BIGINT AS {SEQ}",
                f"NULL::VARCHAR AS {SOURCE_REF}",
            ]
            + [f"NULL::VARCHAR AS {qi(n)}" for n in names]
        )
        source = f"(SELECT {cols} LIMIT 0)"
    clear_items = ", ".join(
        f"CASE WHEN m.{qi(n)} IS NULL AND list_contains(d.names, {_lit(n)}) THEN {_lit(n)} END"
        for n in names
    )
    clears_expr = (
        f"list_filter([{clear_items}], lambda x: x IS NOT NULL)" if names else "[]::VARCHAR[]"
    )
    valid = f"{IDENTITY} IS NOT NULL AND {IDENTITY} <> ''"
    # Most identities appear once: only those seen more than once need the (costly) per-param
    # arg_max; the others pass through as they are. Finding them is a one-column count.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE repeated AS SELECT {IDENTITY} FROM {source} "
        f"WHERE {valid} GROUP BY {IDENTITY} HAVING count(*) > 1"
    )
    single_cols = ", ".join(
        [IDENTITY, SEQ, SOURCE_REF, "1::BIGINT AS _rows"]
        + [f"nullif({qi(n)}, '') AS {qi(n)}" for n in names]
    )
    singles = (
        f"SELECT {single_cols} FROM {source} s "
        f"WHERE {valid} AND s.{IDENTITY} NOT IN (SELECT {IDENTITY} FROM repeated)"
    )
    repeats = merge_sql(
        f"(SELECT * FROM {source} r WHERE r.{IDENTITY} IN (SELECT {IDENTITY} FROM repeated))",
        names,
    )
    # One statement into a TEMP table: DuckDB evicts it to temp_directory under memory
    # pressure, without the compression and checkpoint costs of a persistent table.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE compared AS
        WITH merged AS ({singles} UNION ALL {repeats}),
        digested AS (SELECT *, {digest_sql(names)} AS {DIGEST} FROM merged)
        SELECT m.*,
               (d.digest IS NOT NULL AND d.digest = m.{DIGEST}) AS _same,
               coalesce(d.partition > {_lit(partition)}, false) AS _stale,
               (d.digest IS NOT NULL AND d.digest = m.{DIGEST})
                 OR coalesce(d.partition > {_lit(partition)}, false) AS _unchanged,
               CASE WHEN d.identity IS NULL THEN []::VARCHAR[] ELSE {clears_expr} END AS _clears
        FROM digested m
        LEFT JOIN (
            SELECT identity, digest, partition, string_split(nonempty, ',') AS names
            FROM read_parquet({parquet_glob(delivered)})
        ) d ON d.identity = m.{IDENTITY}
        """
    )
    out_cols = ", ".join([IDENTITY, SOURCE_REF, SEQ, DIGEST, "_rows"] + [qi(n) for n in names])
    con.execute(
        f"COPY (SELECT {out_cols} FROM compared WHERE NOT _unchanged ORDER BY {SEQ}) "
        f"TO '{_sql_path(out)}' (FORMAT parquet)"
    )
    row = con.execute(
        "SELECT coalesce(sum(_rows), 0), count(*), count(*) FILTER (WHERE _same),"
        " count(*) FILTER (WHERE len(_clears) > 0 AND NOT _unchanged),"
        " count(*) FILTER (WHERE NOT _unchanged),"
        " count(*) FILTER (WHERE _stale AND NOT _same) FROM compared"
    ).fetchone()
    assert row is not None
    rows_in, identities, unchanged, cleared, rows_out, superseded = (int(v) for v in row)
    sample = con.execute(
        f"SELECT {IDENTITY}, {SOURCE_REF}, _clears FROM compared "
        f"WHERE len(_clears) > 0 AND NOT _unchanged ORDER BY {SEQ} LIMIT {CLEARS_SAMPLE}"
    ).fetchall()
    return UpdateCounts(
        rows_in=rows_in,
        identities=identities,
        duplicates_merged=rows_in - identities,
        unchanged=unchanged,
        cleared=cleared,
        rows_out=rows_out,
        superseded=superseded,
        clears_sample=[{"identity": i, "source_ref": r, "params": list(p)} for i, r, p in sample],
    )
