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

Measured on 2 cores (see the report in the issue): pyarrow blocks plus this bookkeeping
read ~1 GB / 5M rows in a few seconds; DuckDB's ``read_csv(store_rejects=true)`` was
not chosen because it gives no line numbers for good rows.
"""

from __future__ import annotations

import codecs
import csv as pycsv
import datetime as dt
import glob
import gzip
import io
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connector.buffers import one_array, value_offsets
from connector.columns import SEQ, SOURCE_REF
from connector.mapping import CsvSource, day_from_name
from connector.partitions import Window
from connector.sources.registry import ChecksumWhileReading, ReadOnce, file_sha256
from connector.transform import empty_rejects, rejects_table

if TYPE_CHECKING:
    from connector.mapping import SourceMapping
    from connector.settings import Settings
    from connector.sources import RawChunk

log = logging.getLogger(__name__)

BLOCK_BYTES = 8 * 1024 * 1024
# the longest field the exact parser (Python's csv) reads; a multi-line value longer than
# this sends a block to it, which rejects the line that opened the quote and resyncs
FIELD_LIMIT = pycsv.field_size_limit()
MAX_BLOCK_BYTES = 64 * 1024 * 1024  # a block with no record boundary is cut at a newline
READ_BUFFER = 1024 * 1024
RAW_LIMIT = 200
QUOTE, NEWLINE = ord('"'), ord("\n")
Buffer = bytes | bytearray | memoryview  # a run of records: read, parsed, let go
UTF8_NAMES = {"utf-8", "utf8", "utf_8", "utf-8-sig", "utf_8_sig", "u8", "ascii", "us-ascii"}


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each undecodable byte becomes a lone surrogate (invalid UTF-8 later)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC00 + b) for b in bad), exc.end


codecs.register_error("connector-mark", _mark_undecodable)


class Registry(Protocol):
    def decide(self, path: str, sha256: str, partition: str) -> Any: ...

    def record(self, path: str, sha256: str, size: int, partition: str, rows: int) -> None: ...


# -- files of a partition --------------------------------------------------------------------


def is_csv_name(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(".csv") or lower.endswith(".csv.gz")


def file_day(source: CsvSource, path: str, tz: dt.tzinfo) -> dt.date | None:
    """The partition day of a file: from its name (``date_pattern``) or its mtime in ``tz``."""
    if source.date_from == "mtime":
        return dt.datetime.fromtimestamp(os.path.getmtime(path), tz).date()
    return day_from_name(source.date_regex, os.path.basename(path))


def partition_files(source: CsvSource, window: Window) -> list[str]:
    """The CSV files whose day lies in ``window``, in (day, path) order."""
    tz = window.start.tzinfo or dt.UTC
    found: list[tuple[dt.date, str]] = []
    for path in glob.glob(source.path, recursive=True):
        if not is_csv_name(path) or not os.path.isfile(path):
            continue
        day = file_day(source, path, tz)
        if day is None:
            log.warning(
                "%s: no day in the file name (date_pattern %r); skipped", path, source.date_pattern
            )
            continue
        if window.contains(dt.datetime.combine(day, dt.time(0), tzinfo=tz)):
            found.append((day, path))
    return [path for _, path in sorted(found)]


# -- byte streams ------------------------------------------------------------------------------


class _Utf8Reader:
    """A file's text as UTF-8 bytes: BOM skipped, other encodings transcoded."""

    def __init__(self, raw: IO[bytes], encoding: str) -> None:
        self.raw = raw
        head = raw.read(4)
        self.encoding = encoding
        self.prefix = b""
        self.decoder: codecs.IncrementalDecoder | None = None
        if head.startswith(codecs.BOM_UTF8):
            self.prefix = head[3:]
            self.encoding = "utf-8"
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self.encoding = "utf-16"
            self.decoder = codecs.getincrementaldecoder("utf-16")(errors="connector-mark")
            self.prefix = head
        elif codecs.lookup(encoding).name in {codecs.lookup(n).name for n in UTF8_NAMES}:
            self.prefix = head
        else:
            self.decoder = codecs.getincrementaldecoder(encoding)(errors="connector-mark")
            self.prefix = head

    def read(self, size: int) -> bytes:
        data = self.prefix + self.raw.read(size)
        self.prefix = b""
        if self.decoder is None:
            return data
        final = not data
        text = self.decoder.decode(data, final=final)
        out = text.encode("utf-8", "surrogatepass")
        if not out and not final:
            return self.read(size)
        return out

    def read_after(self, rest: bytes | bytearray, size: int) -> bytes | bytearray:
        """``rest`` followed by up to ``size`` more bytes; empty at the end of the file.

        UTF-8 files are read straight into one new buffer after ``rest`` (no second copy
        of the block to join them); transcoded text is joined as it comes.
        """
        if self.decoder is not None or self.prefix:
            data = self.read(size)
            return bytes(rest) + data if data else b""
        joined = bytearray(len(rest) + size)
        joined[: len(rest)] = rest
        view = memoryview(joined)
        end = len(rest)
        while end < len(joined):
            got = self.raw.readinto(view[end:])  # type: ignore[attr-defined]
            if not got:
                break
            end += got
        view.release()
        if end == len(rest):
            return b""
        del joined[end:]
        return joined


def _open(path: str, checksum: ChecksumWhileReading | None = None) -> IO[bytes]:
    """The file for reading: through ``checksum`` when given (gzip: the bytes on disk)."""
    gz = path.lower().endswith(".gz")
    if checksum is None:
        if gz:
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return io.BufferedReader(ReadOnce(path), buffer_size=READ_BUFFER)
    buffered = io.BufferedReader(checksum, buffer_size=READ_BUFFER)
    if gz:
        # closing the GzipFile leaves `buffered` open: the caller closes the checksum
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered


def _count_byte(buf: Buffer, byte: int, end: int | None = None) -> int:
    """How many times ``byte`` occurs in ``buf[:end]``. numpy, not ``bytes.count``: it
    releases the GIL, so the mapping thread is not held up while a block is scanned."""
    view = np.frombuffer(buf, dtype=np.uint8, count=len(buf) if end is None else end)
    return int(np.count_nonzero(view == byte))


def _last_boundary(buf: bytes | bytearray) -> int:
    """Offset just past the last newline outside quotes (0 when none); ``buf`` starts a record."""
    pos = buf.rfind(b"\n")
    if pos < 0:
        return 0
    parity = _count_byte(buf, QUOTE, pos) & 1
    while parity:
        prev = buf.rfind(b"\n", 0, pos)
        if prev < 0:
            return 0
        parity ^= buf.count(b'"', prev, pos) & 1
        pos = prev
    return pos + 1


@dataclass(frozen=True)
class _Overlong:
    """A physical line longer than MAX_BLOCK_BYTES, skipped unread (only its start is kept)."""

    head: bytes


def _blocks(reader: _Utf8Reader, block_bytes: int) -> Iterator[Buffer | _Overlong]:
    """Runs of whole records (the last one may lack its newline), or an `_Overlong` marker
    in place of a line too long to hold in memory. A run may be a view of a larger buffer:
    it is parsed before the next one is read (nothing holds on to it)."""
    buf: bytes | bytearray = b""
    while True:
        joined = reader.read_after(buf, block_bytes)
        if not joined:
            if buf:
                yield buf
            return
        buf = joined
        cut = _last_boundary(buf)
        if cut == 0 and len(buf) > MAX_BLOCK_BYTES:
            # unbalanced quotes (a stray `"` in an unquoted field): cut at any newline so
            # memory stays bounded; the records around the cut become rejects, not a crash
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                # one line longer than the limit: skip to its end without keeping it
                head, buf = bytes(buf[:200]), b""
                while True:
                    data = reader.read(block_bytes)
                    end = data.find(b"\n") if data else 0
                    if not data or end >= 0:
                        yield _Overlong(head)
                        buf = data[end + 1 :] if data else b""
                        break
                if not data:
                    if buf:
                        yield buf
                    return
                continue
        if cut:
            yield memoryview(buf)[:cut]  # no copy of the block
            buf = bytes(buf[cut:])


# -- parsing -----------------------------------------------------------------------------------


@dataclass
class _Parsed:
    columns: list[pa.Array]  # binary, one per header column
    lines: np.ndarray  # int64, physical line where each row starts
    rejects: list[dict[str, str | None]]


def newlines_per_value(col: pa.Array) -> np.ndarray:
    """How many ``\n`` each value of a binary or string array holds (nulls: 0). One scan
    of the data buffer (numpy, GIL released), then only the few newlines are placed:
    ``pc.count_substring`` searched value by value and cost 8% of reading a file."""
    counts = np.zeros(len(col), dtype=np.int64)
    data = col.buffers()[2]
    if data is None or not len(col):
        return counts
    offsets = value_offsets(col)
    lo, hi = int(offsets[0]), int(offsets[-1])
    at = np.flatnonzero(np.frombuffer(data, dtype=np.uint8)[lo:hi] == NEWLINE) + lo
    if len(at):
        counts += np.bincount(np.searchsorted(offsets, at, side="right") - 1, minlength=len(col))
    if col.null_count:
        counts[~col.is_valid().to_numpy(zero_copy_only=False)] = 0
    return counts


def _physical_lines(block: Buffer) -> int:
    ends_line = len(block) > 0 and block[len(block) - 1] == NEWLINE
    return _count_byte(block, NEWLINE) + (0 if ends_line else 1)


def _parse_fast(
    block: Buffer, names: list[str], delimiter: str, line0: int, physical: int | None = None
) -> _Parsed | None:
    """pyarrow's parse of a block when every record and line is accounted for; else None."""
    invalid: list[object] = []

    def _skip(row: object) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(block),  # zero-copy: no Python-level reads
            # the whole block as pyarrow's one block: each column comes back as one chunk,
            # so one_array() below copies nothing (with 4 MB blocks it copied every
            # column of every 8 MB block). The other extract threads keep both cores busy
            # meanwhile. 5M rows, 7 alternating pairs: extract 13.3 CPU-s against 14.1.
            # use_threads=False: the threaded reader outlives read_csv on Arrow's pool, and
            # it holds _skip and the block (Python objects); freed there while the
            # interpreter exits, they take the GIL and the process aborts ("terminate called
            # without an active exception", exit -6, the core's stack in PyBuffer and
            # OwnedRefNoGIL): 1 run in 9-13 of a CSV extract here, none in 40 without. The
            # block is one parse block either way; 5M rows, 4 alternating extracts: 6.13-7.89
            # s against 6.50-7.96 s with threads.
            read_options=pacsv.ReadOptions(
                column_names=names, block_size=len(block) + 1, use_threads=False
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                ignore_empty_lines=True,
                invalid_row_handler=_skip,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.binary() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    if invalid:
        return None
    columns = [one_array(table.column(i)) for i in range(table.num_columns)]
    per_row = np.ones(table.num_rows, dtype=np.int64)
    physical = _physical_lines(block) if physical is None else physical
    inside = physical - table.num_rows  # newlines inside quoted values, if all adds up
    multi_line: list[pa.Array] = []  # the columns holding values over several lines
    if inside > 0:  # newlines inside quoted values (or blank lines: then no sum adds up)
        # count column by column, longest first (free text holds them), until all are found
        for col in sorted(columns, key=lambda c: -c.nbytes):
            counts = newlines_per_value(col)
            per_row += counts
            found = int(counts.sum())
            inside -= found
            if found:
                multi_line.append(col)
            if inside <= 0:
                break
    if int(per_row.sum()) != physical:
        return None  # blank lines or bare \r: let the exact parser count
    if multi_line and _longest_value(multi_line) > FIELD_LIMIT:
        return None  # a quote left open swallowed the lines after it: the exact parser resyncs
    lines = np.empty(table.num_rows, dtype=np.int64)
    if table.num_rows:
        lines[0] = line0
        np.cumsum(per_row[:-1], out=lines[1:])
        lines[1:] += line0
    return _Parsed(columns, lines, [])


class _Lines:
    """Physical lines handed to ``csv.reader`` one at a time, from a position that the
    parser can move back (to resynchronise after a record it could not read)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.pos = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _longest_value(columns: Sequence[pa.Array]) -> int:
    """The byte length of the longest value in ``columns`` (read from the offsets)."""
    longest = 0
    for col in columns:
        if len(col):
            longest = max(longest, int(np.diff(value_offsets(col)).max()))
    return longest


def _parse_exact(
    block: Buffer, names: list[str], delimiter: str, line0: int, path: str, ident_at: int = -1
) -> _Parsed:
    """Python's csv module over a block: slower, reports ragged rows with their line.

    A record that cannot be read (a quoted field with no closing quote runs into the field
    limit or to the end) or that spans several lines and has the wrong number of fields
    (an unclosed quote swallowed the lines after it) is rejected as its first line alone;
    parsing resumes at the next line, so the good rows after it are kept.
    """
    text = str(block, "utf-8", "surrogateescape")
    source = _Lines([line + "\n" for line in text.split("\n")][: _physical_lines(block)])
    reader = pycsv.reader(source, delimiter=delimiter, strict=False)
    ncols = len(names)
    rows: list[list[str]] = []
    lines: list[int] = []
    rejects: list[dict[str, str | None]] = []

    def resync(first: int, reason: str) -> Any:
        raw = source.lines[first].rstrip("\n").encode("utf-8", "surrogateescape")
        head = raw.decode("utf-8", "backslashreplace")
        ident = _field_before_quote(head, delimiter, ident_at)
        rejects.append(_reject(f"{path}:{line0 + first}", reason, head, ident))
        source.pos = first + 1
        return pycsv.reader(source, delimiter=delimiter, strict=False)

    while True:
        first = source.pos
        try:
            record = next(reader)
        except StopIteration:
            break
        except pycsv.Error as exc:
            reader = resync(first, f"unreadable row ({exc}): a quote is not closed")
            continue
        if not record:
            continue  # a blank line
        if len(record) != ncols:
            if source.pos - first > 1:
                reason = (
                    f"unclosed quote: the row runs over {source.pos - first} lines with "
                    f"{len(record)} fields, expected {ncols}"
                )
                reader = resync(first, reason)
                continue
            raw = delimiter.join(record).encode("utf-8", "surrogateescape")
            rejects.append(
                _reject(
                    f"{path}:{line0 + first}",
                    f"ragged row: {len(record)} fields, expected {ncols}",
                    raw.decode("utf-8", "backslashreplace"),
                    record[ident_at] if 0 <= ident_at < len(record) else None,
                )
            )
            continue
        rows.append(record)
        lines.append(line0 + first)
    columns = [
        pa.array([r[i].encode("utf-8", "surrogateescape") for r in rows], pa.binary())
        for i in range(ncols)
    ]
    return _Parsed(columns, np.array(lines, dtype=np.int64), rejects)


def _field_before_quote(line: str, delimiter: str, at: int) -> str | None:
    """Field ``at`` of a line that could not be parsed, when it ends before the first quote
    (the fields there are plain); else None."""
    if at < 0:
        return None
    before = line.split('"', 1)[0].split(delimiter)
    return before[at] if at < len(before) - 1 else None


def _reject(
    ref: str, reason: str, raw: str | None, identity: str | None = None
) -> dict[str, str | None]:
    if raw is not None and len(raw) > RAW_LIMIT:
        raw = raw[:RAW_LIMIT] + "..."
    return {"source_ref": ref, "identity": identity, "param": None, "reason": reason, "raw": raw}


def _decode_columns(
    parsed: _Parsed,
    names: list[str],
    keep: list[int],
    required: set[str],
    path: str,
    ident_at: int = -1,
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """String columns (``keep`` of them) and a mask of rows with invalid UTF-8 in a read column."""
    n = len(parsed.lines)
    bad = np.zeros(n, dtype=bool)
    out: dict[str, pa.Array] = {}
    for i in keep:
        name, col = names[i], parsed.columns[i]
        try:
            out[name] = col.cast(pa.string())
            continue
        except pa.ArrowInvalid:
            pass
        values = col.to_pylist()
        fixed: list[str] = []
        for row, value in enumerate(values):
            try:
                fixed.append(value.decode("utf-8"))
            except UnicodeDecodeError as exc:
                fixed.append(value.decode("utf-8", "replace"))
                if name in required and not bad[row]:
                    bad[row] = True
                    parsed.rejects.append(
                        _reject(
                            f"{path}:{parsed.lines[row]}",
                            f"invalid UTF-8 in column {name!r} at byte {exc.start}",
                            value.decode("utf-8", "backslashreplace"),
                            _identity_text(parsed, ident_at, row),
                        )
                    )
                elif name not in required:
                    log.warning(
                        "%s:%s: invalid UTF-8 in unread column %r replaced",
                        path,
                        parsed.lines[row],
                        name,
                    )
        out[name] = pa.array(fixed, pa.string())
    return out, bad


def _identity_text(parsed: _Parsed, ident_at: int, row: int) -> str | None:
    if ident_at < 0:
        return None
    value = parsed.columns[ident_at][row].as_py()
    return value.decode("utf-8", "backslashreplace") if value is not None else None


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
    from connector.sources import source_error_reject

    result = result if result is not None else FileResult()
    required_set = set(required)
    try:
        if checksum:
            result.checksum = ChecksumWhileReading(path)
        raw_io = _open(path, result.checksum)
    except OSError as exc:
        yield empty_raw_table([]), source_error_reject(path, f"cannot open: {exc}")
        return
    with raw_io:
        try:
            reader = _Utf8Reader(raw_io, encoding)
            blocks = _blocks(reader, block_bytes)
            first_block = next(blocks, b"")
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            yield empty_raw_table([]), source_error_reject(path, f"cannot read: {exc}")
            return
        if isinstance(first_block, _Overlong):
            reason = f"header line longer than {MAX_BLOCK_BYTES} bytes"
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
            for block in _chain(pending, blocks):
                if isinstance(block, _Overlong):
                    reject = _reject(
                        f"{path}:{line}",
                        f"line longer than {MAX_BLOCK_BYTES} bytes: skipped unread",
                        block.head.decode("utf-8", "replace")[:120],
                    )
                    result.rejects += 1
                    yield empty_raw_table(kept_names), rejects_table([reject])
                    line += 1
                    continue
                physical = _physical_lines(block)
                parsed = _parse_fast(block, parse_names, delimiter, line, physical)
                if parsed is None:
                    parsed = _parse_exact(block, parse_names, delimiter, line, path, ident_at)
                line += physical
                cols, bad = _decode_columns(parsed, parse_names, keep, required_set, path, ident_at)
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
    first: Sequence[Buffer], rest: Iterator[Buffer | _Overlong]
) -> Iterator[Buffer | _Overlong]:
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
    from connector.sources import RawChunk

    source = mapping.source
    assert isinstance(source, CsvSource)
    files = partition_files(source, window)
    if not files:
        log.info("%s/%s: no CSV files match %s for this day", mapping.name, partition, source.path)
    seq = 0
    for path in files:
        read, known = _read_plan(registry, path, partition)
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
            registry.record(path, sha, size, partition, result.rows)
        finally:
            if result.checksum is not None:
                result.checksum.close()


def _read_plan(
    registry: Registry | None, path: str, partition: str
) -> tuple[bool, tuple[str, int] | None]:
    """(read the file?, its (sha256, size) when it had to be known before reading).

    A path the registry has never seen is read whatever its content, so its bytes are
    hashed as they are parsed (one read of the file); a known path needs its checksum
    first, to tell a rerun or a changed file from one ingested under another partition.
    """
    if registry is None or registry.decide(path, "", partition).reason == "new":
        return True, None
    sha, size = file_sha256(path)
    decision = registry.decide(path, sha, partition)
    if not decision.read:
        log.info("%s: skipped (%s)", path, decision.reason)
    return decision.read, (sha, size)


def list_source_files(mapping: SourceMapping, settings: Settings) -> list[tuple[Path, str]]:
    """Every CSV file of a csv mapping with its partition day (``YYYY-MM-DD``), for sensors."""
    source = mapping.source
    if not isinstance(source, CsvSource):
        return []
    out: list[tuple[Path, str]] = []
    for path in sorted(glob.glob(source.path, recursive=True)):
        if not is_csv_name(path) or not os.path.isfile(path):
            continue
        day = file_day(source, path, settings.tz)
        if day is not None:
            out.append((Path(path), day.isoformat()))
    return out
