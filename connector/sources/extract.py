"""Extract: the rows of one mapping partition as raw chunks (``docs/architecture.md`` stage 1).

``iter_source_chunks`` reads a mapping's source, CSV files or an SQL table or query, for
one partition; each source kind yields ``RawChunk``s (``connector.sources.chunks``).
"""

from __future__ import annotations

from collections.abc import Iterator

from connector.mapping import CsvSource, SourceMapping
from connector.partitions import Window
from connector.sources.chunks import RawChunk
from connector.sources.csv import iter_csv_chunks
from connector.sources.registry import FileRegistry
from connector.sources.sql import iter_sql_chunks


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
        yield from iter_csv_chunks(mapping, partition, window, chunk_rows=rows, registry=registry)
    else:
        yield from iter_sql_chunks(mapping, partition, window, chunk_rows=rows)
