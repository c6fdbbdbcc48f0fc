"""What every source hands on: raw chunks, file-level rejects, and SourceError.

A raw chunk's table holds the source's columns as strings (null = SQL NULL; an empty
CSV field is ``""``), then ``_source_ref`` and ``_seq`` (int64, increasing in source
order). Source-level rejects (ragged rows, undecodable bytes, unreadable files) come
with the chunk as a rejects table (``connector.rejects``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from connector.rejects import rejects_table


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
