"""Arrow string arrays read through their buffers with numpy: no Python object per value."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def value_offsets(col: pa.Array) -> np.ndarray:
    """The ``len(col) + 1`` offsets of a (large) string or binary array's values into its
    data buffer, for this slice of it: a view, neither rebased nor copied."""
    large = pa.types.is_large_string(col.type) or pa.types.is_large_binary(col.type)
    dtype = np.int64 if large else np.int32
    buffer = col.buffers()[1]
    if buffer is None:  # no value
        return np.zeros(len(col) + 1, dtype=dtype)
    return np.frombuffer(buffer, dtype=dtype)[col.offset : col.offset + len(col) + 1]


def one_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``col`` as one array: a column of one chunk gives that chunk as it is.

    ``ChunkedArray.combine_chunks`` copies every buffer even when there is only one chunk,
    which on a hot path is a copy of every column of every chunk.
    """
    if isinstance(col, pa.Array):
        return col
    if col.num_chunks == 1:
        return col.chunk(0)
    return col.combine_chunks()
