"""Probing a mapping's source: can it be read, and does it hold the mapped columns?

``connector mappings validate`` calls ``probe`` for each mapping; it reads no rows, only
what a read checks first (a database's table and columns, a CSV file's header).
"""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from connector.mapping import CsvSource, SourceMapping, SqlSource
from connector.settings import Settings
from connector.sources.chunks import SourceError
from connector.sources.csv import list_source_files, read_csv_file
from connector.sources.sql_paths import NoArrowReader, driver_for
from connector.sources.sql_plan import SqlPlan, check_sqlite_file
from connector.sql_urls import masked_url, with_installed_driver

# what a probe reads of a CSV file: its first records, so its header
PROBE_BLOCK_BYTES = 64 * 1024


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
    shown = masked_url(source.url)  # the password hidden
    try:
        check_sqlite_file(source.url, mapping.name)
        engine = create_engine(with_installed_driver(source.url))
    except SourceError as exc:
        return [str(exc)]
    except (NoSuchModuleError, ImportError) as exc:
        return [f"{mapping.name}: source.url: no driver for {shown}: {exc}"]
    except (ArgumentError, ValueError):  # their text may show the URL, password included
        return [f"{mapping.name}: source.url: not a SQLAlchemy URL"]
    try:
        driver_for(source.url, source.reader)
    except NoArrowReader as exc:
        engine.dispose()
        return [f"{mapping.name}: {exc}"]
    try:
        with engine.connect() as conn:
            SqlPlan(conn, mapping, source)
    except SourceError as exc:
        return [str(exc)]
    except SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        return [f"{mapping.name}: cannot read {shown}: {detail.__class__.__name__}: {detail}"]
    finally:
        engine.dispose()
    return []


def _probe_csv(mapping: SourceMapping, source: CsvSource, settings: Settings) -> list[str]:
    problems: list[str] = []
    for file, _day in list_source_files(mapping, settings):
        path = file.path
        # the first chunk only (the file is closed as its reader is let go): once the header
        # passed it holds the mapped columns; else its reject says why not
        for table, rejects in read_csv_file(
            path,
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
