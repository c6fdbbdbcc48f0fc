"""Extract: the rows of one mapping partition as raw chunks (``docs/architecture.md`` stage 1).

A raw chunk's table holds the source's columns as strings (null = SQL NULL; an empty
CSV field is ``""``), then ``_source_ref`` and ``_seq`` (int64, increasing in source
order). Source-level rejects (ragged rows, undecodable bytes, unreadable files) come
with the chunk as a rejects table (``columns.REJECT_COLUMNS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from connector.mapping import CsvSource, SourceMapping
from connector.partitions import Window
from connector.sources.registry import FileRegistry
from connector.transform import rejects_table


class SourceError(RuntimeError):
    """A source that cannot be read at all (missing table or column, unreachable database)."""


@dataclass(frozen=True)
class RawChunk:
    """One chunk of extracted rows and the rejects found while reading them."""

    table: pa.Table
    rejects: pa.Table
    source: str  # the file path, or the table / query name
    # SQL: the greatest cursor value in this chunk, as text (for ledger.Cursor)
    high_water: str | None = None


def source_error_reject(ref: str, reason: str) -> pa.Table:
    """A file-level reject (the whole file could not be read)."""
    return rejects_table(
        [{"source_ref": ref, "identity": None, "param": None, "reason": reason, "raw": None}]
    )


def iter_source_chunks(
    mapping: SourceMapping,
    partition: str,
    window: Window,
    *,
    chunk_rows: int,
    registry: FileRegistry | None,
) -> Iterator[RawChunk]:
    """The raw chunks of ``mapping`` for one partition (``window`` = its [start, end))."""
    rows = mapping.chunk_rows or chunk_rows
    if isinstance(mapping.source, CsvSource):
        from connector.sources.csv import iter_csv_chunks

        yield from iter_csv_chunks(mapping, partition, window, chunk_rows=rows, registry=registry)
    else:
        from connector.sources.sql import iter_sql_chunks

        yield from iter_sql_chunks(mapping, partition, window, chunk_rows=rows)


from connector.sources.sql import high_water_mark, record_cursor  # noqa: E402

__all__ = [
    "FileRegistry",
    "RawChunk",
    "SourceError",
    "high_water_mark",
    "iter_source_chunks",
    "record_cursor",
    "source_error_reject",
]
