"""CSV exports (``.csv`` / ``.csv.gz``): every value read as text, exactly, in bounded blocks.

How a file is read, and why:

- The file is streamed in blocks of ``block_bytes`` (default 8 MiB) cut at record
  boundaries (a newline outside quotes), so memory stays bounded whatever the size.
- Each block is parsed by ``pyarrow.csv`` (C++, multithreaded) into binary columns:
  no type, NA or whitespace inference, an empty field is ``""``. The physical line
  where each record starts is derived from the newlines inside its values; when a
  block does not add up (a ragged row, a blank line, a bare ``\\r``) that block alone is
  parsed again with Python's ``csv`` module, which reports ragged rows with their line.
- Values are then checked as UTF-8 per column: a row with undecodable bytes in a
  column the mapping reads is rejected (``path:LINE``); elsewhere the bytes are
  replaced (U+FFFD) so an unused column cannot cost a good row.
- Encodings: a UTF-8 BOM is skipped, a UTF-16 BOM switches to UTF-16; any other
  encoding than UTF-8 is transcoded, undecodable bytes surfacing as invalid UTF-8
  (and so as rejects) rather than being dropped or guessed.
- File-level problems (empty file, header only, duplicate or missing columns the
  mapping reads, an unreadable file) become one reject with the file as source ref.

DuckDB's ``read_csv(store_rejects=true)`` was not chosen because it gives no line
numbers for good rows.
"""

from __future__ import annotations

import csv as pycsv
import datetime as dt
import gzip
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.columns import SEQ, SOURCE_REF
from connector.mapping import CsvSource, SourceMapping, day_from_name
from connector.partitions import Window
from connector.rejects import empty_rejects, rejects_table
from connector.settings import Settings
from connector.sources import csv_blocks
from connector.sources.chunks import RawChunk, source_error_reject
from connector.sources.csv_blocks import Overlong, Utf8Reader, blocks, open_file
from connector.sources.csv_parse import (
    Buffer,
    decode_columns,
    parse_exact,
    parse_fast,
    physical_lines,
    reject_row,
)
from connector.sources.registry import ChecksumWhileReading, file_sha256
from connector.sources.source_files import SourceFile, list_files

log = logging.getLogger(__name__)

BLOCK_BYTES = 8 * 1024 * 1024


class Registry(Protocol):
    def decide(self, path: str, sha256: str, partition: str) -> Any: ...

    def checksum_of(self, path: str, etag: str, size: int) -> str | None: ...

    def record(
        self, path: str, sha256: str, size: int, partition: str, rows: int, etag: str | None = None
    ) -> None: ...


# -- files of a partition --------------------------------------------------------------------


def file_days(
    source: CsvSource, files: Sequence[SourceFile], tz: dt.tzinfo
) -> list[tuple[SourceFile, dt.date | None]]:
    """Each file with its partition day: from its name (``date_pattern``) or its mtime in
    ``tz`` (an object's: the time it was uploaded); None when the name carries no day."""
    if source.date_from == "mtime":
        return [(file, file.mtime.astimezone(tz).date()) for file in files]
    regex = source.date_regex  # compiled once, not per file
    return [(file, day_from_name(regex, file.name)) for file in files]


def partition_files(source: CsvSource, window: Window) -> list[SourceFile]:
    """The CSV files (or objects) whose day lies in ``window``, in (day, path) order."""
    tz = window.start.tzinfo or dt.UTC
    found: list[tuple[dt.date, SourceFile]] = []
    for file, day in file_days(source, list_files(source.path), tz):
        if day is None:
            log.warning(
                "%s: no day in the file name (date_pattern %r); skipped",
                file.path,
                source.date_pattern,
            )
            continue
        if window.contains(dt.datetime.combine(day, dt.time(0), tzinfo=tz)):
            found.append((day, file))
    return [file for _, file in sorted(found, key=lambda pair: (pair[0], pair[1].path))]


def empty_raw_table(names: Sequence[str]) -> pa.Table:
    """A raw chunk table without rows."""
    return pa.table(
        {
            **{n: pa.array([], pa.string()) for n in names},
            SOURCE_REF: pa.array([], pa.string()),
            SEQ: pa.array([], pa.int64()),
        }
    )


def _header(first: bytes, delimiter: str) -> list[str]:
    text = first.decode("utf-8")  # UnicodeDecodeError handled by the caller
    record = next(pycsv.reader([text.rstrip("\r\n")], delimiter=delimiter, strict=False), [])
    return record


@dataclass
class FileResult:
    rows: int = 0
    rejects: int = 0
    # the file's bytes hashed as they were read (``read_csv_file(checksum=True)``); None
    # when the file could not be opened
    checksum: ChecksumWhileReading | None = None


def read_csv_file(
    path: str,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    required: Sequence[str] = (),
    chunk_rows: int = 100_000,
    seq_start: int = 0,
    block_bytes: int = BLOCK_BYTES,
    result: FileResult | None = None,
    checksum: bool = False,
) -> Iterator[tuple[pa.Table, pa.Table]]:
    """(rows, rejects) chunks of one CSV file; never raises for bad content.

    With ``checksum``, ``result.checksum`` hashes the file's bytes as they are read (the
    caller takes its ``result()`` and closes it).
    """
    result = result if result is not None else FileResult()
    required_set = set(required)
    try:
        if checksum:
            result.checksum = ChecksumWhileReading(path)
        raw_io = open_file(path, result.checksum)
    except OSError as exc:
        yield empty_raw_table([]), source_error_reject(path, f"cannot open: {exc}")
        return
    with raw_io:
        try:
            reader = Utf8Reader(raw_io, encoding)
            records = blocks(reader, block_bytes)
            first_block = next(records, b"")
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            yield empty_raw_table([]), source_error_reject(path, f"cannot read: {exc}")
            return
        if isinstance(first_block, Overlong):
            reason = f"header line longer than {csv_blocks.MAX_BLOCK_BYTES} bytes"
            yield empty_raw_table([]), source_error_reject(path, reason)
            return
        first = bytes(first_block)
        if not first.strip():
            yield empty_raw_table([]), source_error_reject(path, "empty file (no header)")
            return
        cut = _first_boundary(first)
        header_bytes, rest = first[:cut], first[cut:]
        try:
            names = _header(header_bytes, delimiter)
        except (UnicodeDecodeError, pycsv.Error) as exc:
            yield empty_raw_table([]), source_error_reject(path, f"unreadable header: {exc}")
            return
        problem, keep = _check_header(names, required)
        if problem:
            yield empty_raw_table([]), source_error_reject(path, problem)
            return
        parse_names = [f"{n}\x00{i}" if i not in keep else n for i, n in enumerate(names)]
        kept_names = [names[i] for i in keep]
        ident_at = names.index(required[0]) if required else -1
        line = 1 + header_bytes.count(b"\n")
        seq = seq_start
        try:
            pending = [rest] if rest else []
            for block in _chain(pending, records):
                if isinstance(block, Overlong):
                    reject = reject_row(
                        f"{path}:{line}",
                        f"line longer than {csv_blocks.MAX_BLOCK_BYTES} bytes: skipped unread",
                        block.head.decode("utf-8", "replace")[:120],
                    )
                    result.rejects += 1
                    yield empty_raw_table(kept_names), rejects_table([reject])
                    line += 1
                    continue
                physical = physical_lines(block)
                parsed = parse_fast(block, parse_names, delimiter, line, physical)
                if parsed is None:
                    parsed = parse_exact(block, parse_names, delimiter, line, path, ident_at)
                line += physical
                cols, bad = decode_columns(parsed, parse_names, keep, required_set, path, ident_at)
                table = _raw_table(cols, kept_names, parsed.lines, bad, path, seq)
                seq += table.num_rows
                parsed.rejects.sort(key=_reject_line)
                rejects = rejects_table(parsed.rejects) if parsed.rejects else empty_rejects()
                result.rows += table.num_rows
                result.rejects += rejects.num_rows
                if table.num_rows <= chunk_rows:
                    yield table, rejects
                else:
                    for offset in range(0, table.num_rows, chunk_rows):
                        yield (
                            table.slice(offset, chunk_rows),
                            rejects if offset == 0 else empty_rejects(),
                        )
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            yield (
                empty_raw_table(kept_names),
                source_error_reject(path, f"read stopped at line {line}: {exc}"),
            )
            return
        if result.rows == 0 and result.rejects == 0:
            yield (
                empty_raw_table(kept_names),
                source_error_reject(path, "no data rows (header only)"),
            )


def _reject_line(reject: dict[str, str | None]) -> int:
    tail = (reject["source_ref"] or "").rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


def _chain(
    first: Sequence[Buffer], rest: Iterator[Buffer | Overlong]
) -> Iterator[Buffer | Overlong]:
    yield from first
    yield from rest


def _first_boundary(buf: bytes) -> int:
    """Offset past the first newline outside quotes (the header's end)."""
    pos = -1
    while True:
        pos = buf.find(b"\n", pos + 1)
        if pos < 0:
            return len(buf)
        if buf.count(b'"', 0, pos) % 2 == 0:
            return pos + 1


def _check_header(names: list[str], required: Sequence[str]) -> tuple[str | None, list[int]]:
    """(file-level problem or None, indexes of the columns to keep: first of each name)."""
    first: dict[str, int] = {}
    dups: list[str] = []
    for i, name in enumerate(names):
        if name in first:
            dups.append(name)
        else:
            first[name] = i
    used_dups = sorted({d for d in dups if d in required})
    if used_dups:
        return (
            f"duplicate column name(s) {', '.join(map(repr, used_dups))} read by the mapping: "
            "cannot tell which one is meant",
            [],
        )
    if dups:
        log.warning(
            "duplicate column name(s) %s not read by the mapping; first kept", sorted(set(dups))
        )
    missing = [c for c in required if c not in first]
    if missing:
        return (
            f"column(s) {', '.join(map(repr, missing))} not in the header "
            f"(have: {', '.join(first)})",
            [],
        )
    return None, sorted(first.values())


def _raw_table(
    cols: dict[str, pa.Array],
    names: list[str],
    lines: np.ndarray,
    bad: np.ndarray,
    path: str,
    seq: int,
) -> pa.Table:
    refs = pc.binary_join_element_wise(
        pa.scalar(f"{path}:"), pa.array(lines, pa.int64()).cast(pa.string()), ""
    )
    parsed_names = list(cols)
    table = pa.table(
        {
            **{name: cols[key] for name, key in zip(names, parsed_names, strict=True)},
            SOURCE_REF: refs,
        }
    )
    if bad.any():
        table = table.filter(pa.array(~bad))
    return table.append_column(SEQ, pa.array(np.arange(seq, seq + table.num_rows, dtype=np.int64)))


def iter_csv_chunks(
    mapping: SourceMapping,
    partition: str,
    window: Window,
    *,
    chunk_rows: int,
    registry: Registry | None,
) -> Iterator[RawChunk]:
    """Raw chunks of the partition's CSV files (files already ingested elsewhere skipped)."""
    source = mapping.source
    assert isinstance(source, CsvSource)
    files = partition_files(source, window)
    if not files:
        log.info("%s/%s: no CSV files match %s for this day", mapping.name, partition, source.path)
    seq = 0
    for file in files:
        path = file.path
        read, known = _read_plan(registry, file, partition)
        if not read:
            continue
        result = FileResult()
        try:
            for table, rejects in read_csv_file(
                path,
                encoding=source.encoding,
                delimiter=source.delimiter,
                required=mapping.columns,
                chunk_rows=chunk_rows,
                seq_start=seq,
                result=result,
                checksum=registry is not None and known is None,
            ):
                yield RawChunk(table, rejects, path)
            seq += result.rows
            log.info("%s: %s rows, %s rejects", path, result.rows, result.rejects)
            if registry is None:
                continue
            if known is not None:
                sha, size = known
            elif result.checksum is not None:
                sha, size = result.checksum.result()
            else:  # could not be opened (a reject says so): recorded once it can be read
                continue
            registry.record(path, sha, size, partition, result.rows, etag=file.etag)
        finally:
            if result.checksum is not None:
                result.checksum.close()


def _read_plan(
    registry: Registry | None, file: SourceFile, partition: str
) -> tuple[bool, tuple[str, int] | None]:
    """(read the file?, its (sha256, size) when it had to be known before reading).

    A path the registry has never seen is read whatever its content, so its bytes are
    hashed as they are parsed (one read of the file); a known path needs its checksum
    first, to tell a rerun or a changed file from one ingested under another partition.
    A file whose ETag and size the registry recorded with a checksum has that checksum: it
    is not hashed again (an object not downloaded to be hashed).
    """
    path = file.path
    if registry is None or registry.decide(path, "", partition).reason == "new":
        return True, None
    known = registry.checksum_of(path, file.etag, file.size) if file.etag else None
    sha, size = (known, file.size) if known else file_sha256(path)
    decision = registry.decide(path, sha, partition)
    if not decision.read:
        log.info("%s: skipped (%s)", path, decision.reason)
    return decision.read, (sha, size)


def list_source_files(mapping: SourceMapping, settings: Settings) -> list[tuple[SourceFile, str]]:
    """Every CSV file (or object) of a csv mapping with its partition day (``YYYY-MM-DD``),
    by path; files whose name carries no day are left out."""
    source = mapping.source
    if not isinstance(source, CsvSource):
        return []
    return [
        (file, day.isoformat())
        for file, day in file_days(source, list_files(source.path), settings.tz)
        if day is not None
    ]
