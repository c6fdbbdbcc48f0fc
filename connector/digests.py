"""The change-detection digest of one profile: stable, defined once, computed in SQL or Python.

``_digest`` = lowercase hex MD5 of the UTF-8 text: the param names URL-encoded and joined
by ``,``, a newline, then the body:

- the values joined by ``\x1f`` (empty or null = empty), when no value holds ``\x1f``;
- else ``\x1f`` once per param, then the values URL-encoded (``quote(v, safe="")``) and
  joined by ``,``.

Unambiguous: a plain body holds exactly one ``\x1f`` fewer than there are params, an
encoded one holds exactly as many (URL encoding escapes ``\x1f`` and ``,``). The names make
renaming or reordering params resend.

Why MD5 over this text: the digest only tells "these values differ from the ones last
confirmed for this identity" (it guards nothing: someone able to craft a collision could
only stop their own profile's update), and it is computed for every row, so the cheapest
unambiguous text and hash win: joining plain values costs less than URL-encoding each, and
MD5 less than SHA-256. 128 bits keep an accidental collision out of reach.

The outbox computes it in SQL (:func:`digest_sql`) over each profile's full row at its
account; :func:`profile_digest` is the same in Python (``connector trace``).
:func:`filled_column` gives a manifest's ``_filled`` (one ``1``/``0`` per param: non-empty or
not), from which the confirmed row's non-empty params are recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.buffers import one_array, value_offsets
from connector.encoding import quote_ident, quote_literal, quote_value

SEP = "\x1f"


def names_line(param_names: Sequence[str]) -> str:
    """The digest text's first line: the param names URL-encoded, joined by ``,``."""
    return ",".join(quote_value(name) for name in param_names)


def profile_digest(param_names: Sequence[str], values: Sequence[str | None]) -> str:
    """The digest of one profile's values (``None`` or ``""`` = empty)."""
    if len(param_names) != len(values):
        raise ValueError(f"{len(param_names)} names but {len(values)} values")
    texts = [v or "" for v in values]
    if any(SEP in v for v in texts):
        body = SEP * len(texts) + ",".join(quote_value(v) for v in texts)
    else:
        body = SEP.join(texts)
    return hashlib.md5(
        f"{names_line(param_names)}\n{body}".encode(), usedforsecurity=False
    ).hexdigest()


def digest_sql(param_names: Sequence[str], alias: str = "") -> str:
    """A DuckDB expression equal to :func:`profile_digest` over the param columns."""
    qual = f"{alias}." if alias else ""
    head = quote_literal(names_line(param_names) + "\n")
    if not param_names:
        return f"md5({head})"
    cols = [f"{qual}{quote_ident(n)}" for n in param_names]
    encoded = ", ',', ".join(f"url_encode({c})" for c in cols)
    odd = " OR ".join(f"contains({c}, chr(31))" for c in cols)
    marker = quote_literal(SEP * len(cols))
    return (
        f"md5(CASE WHEN {odd} THEN concat({head}, {marker}, {encoded}) "
        f"ELSE {_plain_text(head, cols)} END)"
    )


def _plain_text(head: str, cols: Sequence[str]) -> str:
    # concat() takes NULL as empty, so no coalesce() per value, and builds one string per
    # row (docs/measurements.md)
    return f"concat({head}, " + ", chr(31), ".join(cols) + ")"


def filled_column(table: pa.Table | pa.RecordBatch, names: Sequence[str]) -> pa.Array:
    """``_filled`` of each row (``1`` per non-empty param, ``0`` per empty one), built from the value offsets and
    validity bitmaps: a fixed-width string array over one byte matrix, nothing per value.

    One row of the matrix per param, written whole, then transposed once: cheaper than
    pyarrow's binary_length and a column at a time (docs/measurements.md).
    """
    n = table.num_rows
    width = len(names)
    matrix = np.empty((width, n), dtype=np.uint8)
    for j, name in enumerate(names):
        col = table.column(name)
        col = one_array(col)
        if col.type == pa.string():
            offsets = value_offsets(col)
            nonempty = offsets[1:] > offsets[:-1]
            if col.null_count:  # a null's slot may have a length: the bitmap decides
                nonempty &= col.is_valid().to_numpy(zero_copy_only=False)
        else:
            lengths = pc.binary_length(col)
            nonempty = pc.fill_null(pc.greater(lengths, 0), False).to_numpy(zero_copy_only=False)
        np.add(nonempty, ord("0"), out=matrix[j], dtype=np.uint8, casting="unsafe")
    data = np.ascontiguousarray(matrix.T)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
