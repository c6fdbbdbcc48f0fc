"""Text work on whole string columns: the mapping's transforms, and empty text as null.

``apply_transforms`` applies a param's or the identity's ``transform`` list (lower, upper,
strip, sha256) in order; ``empty_to_null`` makes ``""`` null, the one meaning of an empty
value from then on (a CSV empty field and an SQL NULL alike).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.buffers import value_offsets


def _sha256_column(col: pa.Array) -> pa.Array:
    values = col.to_pylist()
    return pa.array(
        [v if not v else hashlib.sha256(v.encode("utf-8")).hexdigest() for v in values],
        pa.string(),
    )


def _is_ascii(col: pa.Array) -> bool:
    """Whether every value of a string array is ASCII: one scan of its bytes (numpy)."""
    if not isinstance(col, pa.Array) or col.type != pa.string():
        return False
    data = col.buffers()[2]
    if data is None:
        return True
    offsets = value_offsets(col)
    values = np.frombuffer(data, dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
    return not len(values) or int(values.max()) < 0x80


def apply_transforms(col: pa.Array, transforms: Sequence[str]) -> pa.Array:
    """lower / upper / strip / sha256, in order; nulls stay null.

    A column that is all ASCII changes case byte by byte (``ascii_lower``, the same text
    for ASCII, and far cheaper than ``utf8_lower``).
    """
    for name in transforms:
        if name == "lower":
            col = pc.ascii_lower(col) if _is_ascii(col) else pc.utf8_lower(col)
        elif name == "upper":
            col = pc.ascii_upper(col) if _is_ascii(col) else pc.utf8_upper(col)
        elif name == "strip":
            col = pc.utf8_trim_whitespace(col)
        elif name == "sha256":
            col = _sha256_column(col)
    return col


def empty_to_null(col: pa.Array) -> pa.Array:
    """``""`` as null. For a plain string array only the validity bitmap is rebuilt (from
    the offsets: an empty value has equal ones); the values are not copied."""
    if not isinstance(col, pa.Array) or col.type != pa.string() or len(col) == 0:
        return pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
    data = col.buffers()[2]
    offsets = value_offsets(col)
    empty = offsets[1:] == offsets[:-1]
    if not empty.any():
        return col
    valid = ~empty
    if col.null_count:
        valid &= col.is_valid().to_numpy(zero_copy_only=False)
    if col.offset:
        data = data.slice(int(offsets[0]))  # rebased: the data buffer is sliced to match
        offsets = offsets - offsets[0]
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.string(), len(col), [bitmap, pa.py_buffer(offsets.astype(np.int32, copy=True)), data]
    )
