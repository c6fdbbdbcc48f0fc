"""Parsing one block of CSV records (whole lines, as ``connector.sources.csv`` cuts a file):
pyarrow's parser when every record and line adds up, else Python's csv module, which reports
ragged rows and unreadable records with their line and resynchronises after a quote that
never closes. Then each kept column decoded from bytes to text, bad values rejected.
"""

from __future__ import annotations

import csv as pycsv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from connector.buffers import one_array, value_offsets
from connector.rejects import RAW_LIMIT

log = logging.getLogger(__name__)

# the longest field the exact parser (Python's csv) reads; a multi-line value longer than
# this sends a block to it, which rejects the line that opened the quote and resyncs
FIELD_LIMIT = pycsv.field_size_limit()
QUOTE, NEWLINE = ord('"'), ord("\n")
Buffer = bytes | bytearray | memoryview  # a run of records: read, parsed, let go


def count_byte(buf: Buffer, byte: int, end: int | None = None) -> int:
    """How many times ``byte`` occurs in ``buf[:end]``. numpy, not ``bytes.count``: it
    releases the GIL, so the mapping thread is not held up while a block is scanned."""
    view = np.frombuffer(buf, dtype=np.uint8, count=len(buf) if end is None else end)
    return int(np.count_nonzero(view == byte))


# -- -----------------------------------------------------------------------------------


@dataclass
class Parsed:
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


def physical_lines(block: Buffer) -> int:
    ends_line = len(block) > 0 and block[len(block) - 1] == NEWLINE
    return count_byte(block, NEWLINE) + (0 if ends_line else 1)


def parse_fast(
    block: Buffer, names: list[str], delimiter: str, line0: int, physical: int | None = None
) -> Parsed | None:
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
            # meanwhile.
            # use_threads=False: the threaded reader outlives read_csv on Arrow's pool, and
            # it holds _skip and the block (Python objects); freed there while the
            # interpreter exits, they take the GIL and the process aborts ("terminate called
            # without an active exception", exit -6, the core's stack in PyBuffer and
            # OwnedRefNoGIL), now and then. The block is one parse block either way, so the
            # threads bought no speed (docs/measurements.md).
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
    physical = physical_lines(block) if physical is None else physical
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
    return Parsed(columns, lines, [])


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


def parse_exact(
    block: Buffer, names: list[str], delimiter: str, line0: int, path: str, ident_at: int = -1
) -> Parsed:
    """Python's csv module over a block: slower, reports ragged rows with their line.

    A record that cannot be read (a quoted field with no closing quote runs into the field
    limit or to the end) or that spans several lines and has the wrong number of fields
    (an unclosed quote swallowed the lines after it) is rejected as its first line alone;
    parsing resumes at the next line, so the good rows after it are kept.
    """
    text = str(block, "utf-8", "surrogateescape")
    source = _Lines([line + "\n" for line in text.split("\n")][: physical_lines(block)])
    reader = pycsv.reader(source, delimiter=delimiter, strict=False)
    ncols = len(names)
    rows: list[list[str]] = []
    lines: list[int] = []
    rejects: list[dict[str, str | None]] = []

    def resync(first: int, reason: str) -> Any:
        raw = source.lines[first].rstrip("\n").encode("utf-8", "surrogateescape")
        head = raw.decode("utf-8", "backslashreplace")
        ident = _field_before_quote(head, delimiter, ident_at)
        rejects.append(reject_row(f"{path}:{line0 + first}", reason, head, ident))
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
                reject_row(
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
    return Parsed(columns, np.array(lines, dtype=np.int64), rejects)


def _field_before_quote(line: str, delimiter: str, at: int) -> str | None:
    """Field ``at`` of a line that could not be parsed, when it ends before the first quote
    (the fields there are plain); else None."""
    if at < 0:
        return None
    before = line.split('"', 1)[0].split(delimiter)
    return before[at] if at < len(before) - 1 else None


def reject_row(
    ref: str, reason: str, raw: str | None, identity: str | None = None
) -> dict[str, str | None]:
    if raw is not None and len(raw) > RAW_LIMIT:
        raw = raw[:RAW_LIMIT] + "..."
    return {"source_ref": ref, "identity": identity, "param": None, "reason": reason, "raw": raw}


def decode_columns(
    parsed: Parsed,
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
                        reject_row(
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


def _identity_text(parsed: Parsed, ident_at: int, row: int) -> str | None:
    if ident_at < 0:
        return None
    value = parsed.columns[ident_at][row].as_py()
    return value.decode("utf-8", "backslashreplace") if value is not None else None
