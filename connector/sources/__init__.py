"""Extract: the rows of one mapping partition as raw chunks (``docs/architecture.md`` stage 1).

A raw chunk's table holds the source's columns as strings (null = SQL NULL; an empty
CSV field is ``""``), then ``_source_ref`` and ``_seq`` (int64, increasing in source
order). Source-level rejects (ragged rows, undecodable bytes, unreadable files) come
with the chunk as a rejects table (``columns.REJECT_COLUMNS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from connector.mapping import CsvSource, SourceMapping, SqlSource
from connector.partitions import Window
from connector.sources.registry import FileRegistry
from connector.transform import rejects_table

if TYPE_CHECKING:
    from connector.settings import Settings

# what a probe reads of a CSV file: its first records, so its header
PROBE_BLOCK_BYTES = 64 * 1024


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


def probe(mapping: SourceMapping, settings: Settings) -> list[str]:
    """What stops ``mapping``'s source from being read, one message each naming the mapping
    (and the file); empty when nothing does. Reads no rows.

    SQL: the database answers, the table or query is there and has the cursor, key, identity
    and param columns (the checks a read makes first). CSV: each file the glob matches for a
    day opens and has a header with the identity and param columns, each once; a glob that
    matches no file yet is no problem.
    """
    if isinstance(mapping.source, CsvSource):
        problems = _probe_csv(mapping, mapping.source, settings)
    else:
        assert isinstance(mapping.source, SqlSource)
        problems = _probe_sql(mapping, mapping.source)
    return [" ".join(problem.split()) for problem in problems]  # a driver's text spans lines


def _probe_sql(mapping: SourceMapping, source: SqlSource) -> list[str]:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    from connector.sources.sql import _check_sqlite_file, _Plan, masked_url

    shown = masked_url(source.url)  # the password hidden
    try:
        _check_sqlite_file(source.url, mapping.name)
        engine = create_engine(source.url)
    except SourceError as exc:
        return [str(exc)]
    except (NoSuchModuleError, ImportError) as exc:
        return [f"{mapping.name}: source.url: no driver for {shown}: {exc}"]
    except (ArgumentError, ValueError):  # their text may show the URL, password included
        return [f"{mapping.name}: source.url: not a SQLAlchemy URL"]
    try:
        with engine.connect() as conn:
            _Plan(conn, mapping, source)
    except SourceError as exc:
        return [str(exc)]
    except SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        return [f"{mapping.name}: cannot read {shown}: {detail.__class__.__name__}: {detail}"]
    finally:
        engine.dispose()
    return []


def _probe_csv(mapping: SourceMapping, source: CsvSource, settings: Settings) -> list[str]:
    from connector.sources.csv import list_source_files, read_csv_file

    problems: list[str] = []
    for path, _day in list_source_files(mapping, settings):
        # the first chunk only (the file is closed as its reader is let go): once the header
        # passed it holds the mapped columns; else its reject says why not
        for table, rejects in read_csv_file(
            str(path),
            encoding=source.encoding,
            delimiter=source.delimiter,
            required=mapping.columns,
            block_bytes=PROBE_BLOCK_BYTES,
        ):
            if not set(mapping.columns) <= set(table.column_names):
                reasons = "; ".join(str(r) for r in rejects.column("reason").to_pylist())
                problems.append(f"{mapping.name}: {path}: {reasons}")
            break
    return problems


from connector.sources.sql import high_water_mark, record_cursor  # noqa: E402

__all__ = [
    "FileRegistry",
    "RawChunk",
    "SourceError",
    "high_water_mark",
    "iter_source_chunks",
    "probe",
    "record_cursor",
    "source_error_reject",
]
