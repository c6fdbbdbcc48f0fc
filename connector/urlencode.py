"""Batch-file lines URL-encoded by one compiled pass over the columns' Arrow buffers (numba).

Each line is a prefix, then every column's value as ``quote(v, safe="")`` (UTF-8 bytes, the
unreserved ``A-Za-z0-9_.~-`` kept, every other byte as ``%XX``), joined by ``,``; a null
is an empty field. The kernel reads the data buffers and offsets in place and writes each
line once into its output buffer: no intermediate string per value, and the GIL released.

Why a kernel of our own: DuckDB's ``concat(url_encode(...), ...)`` took 1.36-1.42 CPU-s
per 1M bench rows of 9 fields on one thread, this 0.60-0.63 CPU-s, byte for byte the same
(``tests/encoding`` checks it on every code point and on hostile values). At 5M rows the
encoding is the batch stage's critical path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np
import pyarrow as pa

from connector.buffers import one_array, value_offsets

log = logging.getLogger(__name__)

UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-"
_KEEP = np.zeros(256, dtype=np.uint8)
_KEEP[list(UNRESERVED)] = 1
_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8).copy()
_COMMA, _PERCENT = ord(","), ord("%")
_INT32_MAX = 2**31 - 1


def _compiled(fn: Callable[..., Any]) -> Any:
    """``fn`` compiled with the GIL released, kept in numba's on-disk cache where it can be.

    The cache lives beside this file (``__pycache__``), else in the user's cache folder, or
    in ``NUMBA_CACHE_DIR`` when set. An install that can write none of them (a read-only
    image run by a user without a home) would fail to import here: there the kernel is
    compiled once per process instead (about a second, at its first use).
    """
    try:
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available"
        log.warning(
            "%s; the URL encoder is compiled in each process (set NUMBA_CACHE_DIR to a "
            "writable folder to keep it)",
            exc,
        )
        return numba.njit(nogil=True)(fn)


@_compiled
def _write_lines(datas, offsets, valids, n, prefix, keep, hexdigits, out, out_offsets):
    # datas/offsets/valids: one array per column (a tuple, indexed at run time); valids[j]
    # is empty when column j has no null. Returns the bytes written.
    p = 0
    for r in range(n):
        out_offsets[r] = p
        for b in prefix:
            out[p] = b
            p += 1
        for j in range(len(datas)):
            if j:
                out[p] = _COMMA
                p += 1
            valid = valids[j]
            if valid.size and not valid[r]:
                continue
            data = datas[j]
            for i in range(offsets[j][r], offsets[j][r + 1]):
                c = data[i]
                if keep[c]:
                    out[p] = c
                    p += 1
                else:
                    out[p] = _PERCENT
                    out[p + 1] = hexdigits[c >> 4]
                    out[p + 2] = hexdigits[c & 15]
                    p += 3
    out_offsets[n] = p
    return p


def _readonly(a: np.ndarray) -> np.ndarray:
    # one array type for every column (numba types read-only arrays apart), so the columns
    # form one homogeneous tuple that the kernel indexes at run time
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


_NO_NULLS = _readonly(np.zeros(0, dtype=np.uint8))
_NO_DATA = _readonly(np.zeros(0, dtype=np.uint8))


def _column(col: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(data bytes, int32 offsets, validity or empty, bytes spanned) of a string column."""
    if col.type != pa.string():
        col = col.cast(pa.string())
    data = col.buffers()[2]
    offsets = value_offsets(col)
    valid = col.is_valid().to_numpy(zero_copy_only=False).view(np.uint8) if col.null_count else None
    return (
        _readonly(np.frombuffer(data, dtype=np.uint8)) if data is not None else _NO_DATA,
        _readonly(offsets),
        _NO_NULLS if valid is None else _readonly(valid),
        int(offsets[-1] - offsets[0]),
    )


def encode_lines_of(
    batch: pa.RecordBatch | pa.Table, columns: Sequence[str], prefix: bytes = b"\n"
) -> pa.Array:
    """One line per row of ``batch`` (see the module's docstring), as one string array whose
    data buffer holds the lines back to back."""
    n = batch.num_rows
    if not columns:
        raise ValueError("a line needs at least one column")
    parts = [_column(one_array(batch.column(name))) for name in columns]
    # every byte escaped at most triples; the prefix and a comma between fields
    bound = n * (len(prefix) + len(columns) - 1) + 3 * sum(p[3] for p in parts)
    large = bound > _INT32_MAX
    out = np.empty(max(bound, 1), dtype=np.uint8)
    out_offsets = np.empty(n + 1, dtype=np.int64 if large else np.int32)
    size = _write_lines(
        tuple(p[0] for p in parts),
        tuple(p[1] for p in parts),
        tuple(p[2] for p in parts),
        n,
        _readonly(np.frombuffer(prefix, dtype=np.uint8)),
        _KEEP,
        _HEX,
        out,
        out_offsets,
    )
    return pa.Array.from_buffers(
        pa.large_string() if large else pa.string(),
        n,
        [None, pa.py_buffer(out_offsets), pa.py_buffer(out[:size])],
    )
