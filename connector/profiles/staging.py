"""Staged parts of mapped rows: uncompressed Arrow IPC files, read memory-mapped.

The extract stage writes each mapped chunk once and the transform and batch stages read
it back (DuckDB the narrow columns, the batch stage the wide rows it sends); a rerun
deletes it. Parquet's encoding and decoding of every value bought nothing here. An Arrow
IPC file is the arrays' own buffers on disk, so writing is one copy and reading is none
(the pages are mapped, not decoded); docs/measurements.md has the comparison.

Parts written as Parquet (by an earlier version, or by tests) are still read: every
function here takes either kind, told apart by the file's suffix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from connector.encoding import quote_ident, quote_literal

SUFFIX = ".arrow"
PARQUET = ".parquet"


def part_path(folder: Path, number: int) -> Path:
    return folder / f"part-{number:05d}{SUFFIX}"


def parts(folder: Path) -> list[Path]:
    """The staged parts under ``folder``, in the order they were written."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (SUFFIX, PARQUET))


def write(table: pa.Table, path: Path) -> None:
    """One part, under a temporary name first: a crash never leaves a torn part."""
    tmp = path.with_name(f".{path.name}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    tmp.replace(path)


def _is_ipc(path: Path) -> bool:
    return path.suffix == SUFFIX


def schema(path: Path) -> pa.Schema:
    if _is_ipc(path):
        with pa.memory_map(str(path)) as source:
            return ipc.open_file(source).schema
    return pq.read_schema(path)


def has_columns(paths: Sequence[Path], columns: Sequence[str]) -> bool:
    return all(set(columns) <= set(schema(p).names) for p in paths)


def read(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """The part's rows (only ``columns``, those it has, if given). IPC parts are mapped,
    not copied: the arrays stay valid after this returns, and the pages are the OS's."""
    if not _is_ipc(path):
        have = pq.read_schema(path).names
        return pq.read_table(path, columns=None if columns is None else _known(columns, have))
    with pa.memory_map(str(path)) as source:
        table = ipc.open_file(source).read_all()
    return table if columns is None else table.select(_known(columns, table.schema.names))


def _known(columns: Sequence[str], have: Sequence[str]) -> list[str]:
    return [c for c in columns if c in have]


def iter_batches(
    path: Path, batch_rows: int, columns: Sequence[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """The part's rows as record batches of at most ``batch_rows``."""
    if not _is_ipc(path):
        pf = pq.ParquetFile(path)
        cols = None if columns is None else _known(columns, pf.schema_arrow.names)
        yield from pf.iter_batches(batch_rows, columns=cols)
        return
    yield from read(path, columns).to_batches(max_chunksize=batch_rows)


def head(path: Path, n: int, drop: Sequence[str] = ()) -> list[dict[str, object]]:
    """The first ``n`` rows of a part as dicts, without the ``drop`` columns."""
    names = [c for c in schema(path).names if c not in drop]
    rows: list[dict[str, object]] = []
    for rb in iter_batches(path, n, names):
        rows += rb.slice(0, n - len(rows)).to_pylist()
        if len(rows) >= n:
            break
    return rows


def duck_source(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[Path],
    name: str,
    columns: Sequence[str] | None = None,
) -> str:
    """A DuckDB relation over the parts (columns matched by name, missing ones null).

    IPC parts are registered on ``con`` as ``name``: with ``columns``, a pyarrow scanner
    of only those that reads one part ahead (the default dataset scan reads several ahead
    and cost ~40 MB more RSS when grouping 5M identities); without, the whole dataset,
    DuckDB choosing the columns. Parquet parts are read by DuckDB.
    """
    ipc_parts = [p for p in paths if _is_ipc(p)]
    parquet_parts = [p for p in paths if not _is_ipc(p)]
    sources = []
    if ipc_parts:
        unified = pa.unify_schemas([schema(p) for p in ipc_parts])
        dataset = ds.dataset(
            [str(p) for p in ipc_parts],
            schema=unified,
            format="arrow",
            filesystem=pafs.LocalFileSystem(use_mmap=True),
        )
        if columns is None:
            con.register(name, dataset)
        else:
            scanner = dataset.scanner(
                columns=_known(columns, unified.names), batch_readahead=1, fragment_readahead=1
            )
            con.register(name, scanner)
        sources.append(f"SELECT * FROM {name}")
    if parquet_parts:
        files = ", ".join(quote_literal(str(p)) for p in parquet_parts)
        picked = "*" if columns is None else ", ".join(quote_ident(c) for c in columns)
        sources.append(f"SELECT {picked} FROM read_parquet([{files}], union_by_name = true)")
    if not sources:
        raise ValueError("no staged parts to read")
    if len(sources) == 1 and ipc_parts:
        return name
    return "(" + " UNION ALL BY NAME ".join(sources) + ")"
