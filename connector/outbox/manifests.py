"""Reading a batch's manifest back, and the values of its rows from the batch file itself.

A manifest (``batches.stored_manifest_schema``) holds one row per line of its batch file,
in the same order: ``_identity``, ``_source_ref``, ``_digest``, ``_filled``, with the param
names in its schema metadata. The values are only in the batch file. Most batches are
confirmed whole and need nothing more; a re-queue or a read-back asks :func:`with_values`
for the rows it handles, and only their lines are decoded (URL-decoding in DuckDB for a
Target file, JSON for a Copernica one).

Manifests written before this layout hold the values as columns: every function here reads
both. Both files are named by URL (``connector.storage``): a manifest is read through a copy
in a scratch folder removed right after, a batch file's lines are streamed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connector.buffers import one_array
from connector.columns import FILLED, IDENTITY
from connector.encoding import quote_ident
from connector.outbox.manifest_schema import PARAMS_KEY
from connector.storage import fetch, is_object_url, open_stream, scratch

ROW = "_row"  # the row's position in the manifest = its line in the batch file (0 = first)


class ManifestMismatch(ValueError):
    """A batch file does not hold the lines its manifest lists."""


def read(
    manifest_path: str | Path, cache_dir: Path | None = None, columns: list[str] | None = None
) -> pa.Table:
    """The manifest's rows, with ``_row`` (each row's line in the batch file) appended.

    An object in a store is copied into a scratch folder under ``cache_dir`` (None: the
    temporary folder) and read from there; the copy is gone when this returns.
    ``storage.ObjectMissing`` when there is no such manifest. ``columns``: only these.
    """
    if is_object_url(manifest_path):
        with scratch(cache_dir) as folder:
            table = pq.read_table(fetch(manifest_path, folder), columns=columns)
    else:
        table = pq.read_table(manifest_path, columns=columns)
    return table.append_column(ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))


def param_names(table: pa.Table) -> list[str]:
    """The batch's param names, in order (schema metadata; older manifests: their columns)."""
    meta = table.schema.metadata or {}
    if PARAMS_KEY in meta:
        return list(json.loads(meta[PARAMS_KEY]))
    return [n for n in table.column_names if not n.startswith("_")]


def has_values(table: pa.Table) -> bool:
    return all(n in table.column_names for n in param_names(table))


def with_values(batch_path: str | Path, rows: pa.Table) -> pa.Table:
    """``rows`` (read by :func:`read`, then filtered as the caller likes) with one column
    per param, decoded from their lines of the batch file (null = empty, as written).

    Raises ``ManifestMismatch`` when a line is missing or names another identity than its
    manifest row: the batch file is not the one the manifest describes.
    """
    if has_values(rows):
        return rows
    names = param_names(rows)
    if not rows.num_rows:
        for name in names:
            rows = rows.append_column(name, pa.array([], pa.string()))
        return rows
    if ROW not in rows.column_names:
        raise ValueError(f"rows of {batch_path} have no {ROW} column: read them with read()")
    positions = rows.column(ROW).to_numpy()
    path = str(batch_path)
    if path.endswith(".jsonl"):
        identities, columns = _jsonl_values(path, positions, names)
        first_line = 1
    else:
        identities, columns = _target_values(path, positions, names)
        first_line = 2  # after the header
    expected = rows.column(IDENTITY).to_pylist()
    if identities != expected:
        at = next(i for i, (a, b) in enumerate(zip(identities, expected, strict=True)) if a != b)
        raise ManifestMismatch(
            f"{path}: line {int(positions[at]) + first_line} is for {identities[at]!r}, "
            f"the manifest lists {expected[at]!r} there"
        )
    for name, column in zip(names, columns, strict=True):
        rows = rows.append_column(name, column)
    return rows


def drop_bookkeeping(rows: pa.Table) -> pa.Table:
    """``rows`` without the columns only a manifest has (``_row``, ``_filled``)."""
    return rows.drop_columns([c for c in (ROW, FILLED) if c in rows.column_names])


READ_BLOCK = 1 << 20


def _lines(path: str, positions: np.ndarray, skip: int) -> pa.Array:
    """The lines of ``path`` (split on ``\\n``, the first ``skip`` left out) at ``positions``.

    The file is streamed up to its last wanted line and only the wanted lines are kept: a
    read-back of a few sampled rows of a 400,000-line batch file holds a block and those
    lines, never the whole file split into lines.
    """
    wanted = positions.astype(np.int64) + skip
    targets = np.unique(wanted)
    found: dict[int, bytes] = {}
    next_target = 0
    line_no = 0  # the number of the line that starts ``pending``
    pending = b""
    chunks = open_stream(path, READ_BLOCK)
    try:
        for block in chunks:
            data = pending + block if pending else block
            ends = data.count(b"\n")
            if next_target < len(targets) and targets[next_target] < line_no + ends:
                newlines = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n"))
                starts = np.concatenate(([0], newlines[:-1] + 1))
                while next_target < len(targets) and targets[next_target] < line_no + ends:
                    k = int(targets[next_target]) - line_no
                    found[int(targets[next_target])] = data[starts[k] : newlines[k]]
                    next_target += 1
            pending = data[data.rfind(b"\n") + 1 :]
            line_no += ends
            if next_target == len(targets):
                break
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    if next_target < len(targets) and pending and targets[next_target] == line_no:
        found[line_no] = pending  # the last line, without a newline after it
        next_target += 1
    if next_target < len(targets):
        available = line_no + (1 if pending else 0) - skip
        raise ManifestMismatch(
            f"{path}: the manifest lists line {int(targets[-1]) + 1} "
            f"but the file has {max(available, 0)} line(s)"
        )
    return pa.array([found[int(w)] for w in wanted], pa.large_binary())


def _target_values(
    path: str, positions: np.ndarray, names: Sequence[str]
) -> tuple[list[Any], list[pa.Array]]:
    """(identities, param columns) of a Target batch file's lines: ``batch=`` + header, then
    per profile ``\\n`` + identity and values URL-encoded, joined by ``,``."""
    lines = _lines(path, positions, skip=1)
    width = len(names) + 1
    fields = pc.split_pattern(lines, b",")
    counts = pc.list_value_length(fields).to_numpy()
    if len(counts) and (counts != width).any():
        bad = int(np.flatnonzero(counts != width)[0])
        raise ManifestMismatch(
            f"{path}: line {int(positions[bad]) + 2} has {int(counts[bad])} fields, "
            f"expected {width} (identity + {len(names)} params)"
        )
    flat = fields.flatten()
    n = len(lines)
    encoded = {
        f"c{j}": flat.take(pa.array(np.arange(j, n * width, width, dtype=np.int64))).cast(
            pa.string()
        )
        for j in range(width)
    }
    decoded = ", ".join(f"nullif(url_decode({quote_ident(c)}), '') AS {c}" for c in encoded)
    con = duckdb.connect()
    try:
        con.execute("set preserve_insertion_order = true")
        con.register("_lines", pa.table(encoded))
        out = con.sql(f"SELECT {decoded} FROM _lines").to_arrow_table()
    finally:
        con.close()
    columns = [one_array(out.column(f"c{j}")) for j in range(width)]
    return columns[0].to_pylist(), columns[1:]


def _jsonl_values(
    path: str, positions: np.ndarray, names: Sequence[str]
) -> tuple[list[Any], list[pa.Array]]:
    """(identities, param columns) of a Copernica file's lines: one JSON object a line,
    ``{"identity": ..., "fields": {...}}``, empty values left out."""
    lines = _lines(path, positions, skip=0)
    identities: list[Any] = []
    values: list[list[Any]] = [[] for _ in names]
    for i, line in enumerate(lines.to_pylist()):
        try:
            obj = json.loads(line)
            fields = obj["fields"]
            identities.append(obj["identity"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestMismatch(
                f"{path}: line {int(positions[i]) + 1} is not a profile line: {exc}"
            ) from exc
        for j, name in enumerate(names):
            value = fields.get(name)
            values[j].append(None if value in (None, "") else str(value))
    return identities, [pa.array(v, pa.string()) for v in values]


def delivered_table(
    rows: pa.Table | pa.RecordBatch, names: Sequence[str] | None = None
) -> pa.Table:
    """``ledger.record_delivered``'s rows of manifest rows: ``identity``, ``digest`` and
    ``nonempty`` (the comma-separated params ``_filled`` marks non-empty; rows with values:
    those non-empty), column by column.

    Raises ``ValueError`` naming the first identity whose ``_filled`` does not have one flag
    per param.
    """
    table = pa.Table.from_batches([rows]) if isinstance(rows, pa.RecordBatch) else rows
    names = list(names) if names is not None else param_names(table)
    if FILLED in table.column_names and not set(names) <= set(table.column_names):
        flags_column = pc.fill_null(table.column(FILLED), "")
    elif names:  # values in the manifest (older layout): their flags made from them
        flags_column = pc.binary_join_element_wise(
            *(
                pc.if_else(
                    pc.fill_null(pc.not_equal(table.column(n).cast(pa.string()), ""), False),
                    "1",
                    "0",
                )
                for n in names
            ),
            "",
        )
    else:
        flags_column = pa.array([""] * table.num_rows, pa.string())
    # the patterns of non-empty params are few: each is spelled out once
    patterns = pc.dictionary_encode(one_array(flags_column))
    spelled = []
    for code, flags in enumerate(patterns.dictionary.to_pylist()):
        if len(flags) != len(names):
            at = pc.index(patterns.indices, code).as_py()
            identity = table.column(IDENTITY)[at].as_py()
            raise ValueError(f"{identity!r}: _filled {flags!r} does not fit the params {names}")
        spelled.append(",".join(n for n, f in zip(names, flags, strict=True) if f == "1"))
    nonempty = pa.array(spelled, pa.string()).take(patterns.indices)
    return pa.table(
        {
            "identity": table.column(IDENTITY),
            "digest": table.column("_digest"),
            "nonempty": nonempty,
        }
    )
