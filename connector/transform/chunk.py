"""Raw source rows -> profile updates: ``map_chunk``, stage 2 of ``docs/architecture.md``.

``map_chunk`` is stateless per chunk and works column by column, never value by value in
Python: the identity is transformed and checked (``identities``), each param transformed
(``text``) and typed (``typed``), then each profile's URL-encoded size is checked against
the destination's limit.

Nothing is guessed: a value is the source's text unless its param gives a type. An
empty value (``""`` or SQL NULL) is null (empty) and never typed; a param's ``default``
replaces it. A value that cannot be typed rejects **the whole row** (one reject line per
bad param, so every problem shows at once): a profile is never half-updated by surprise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.buffers import one_array
from connector.columns import IDENTITY, SEQ, SOURCE_REF
from connector.encoding import encoded_length, encoded_lengths
from connector.mapping import SourceMapping
from connector.settings import MAX_PROFILE_BYTES
from connector.transform.identities import identity_problems
from connector.transform.rejects import Reject, chunk_rejects
from connector.transform.text import apply_transforms, empty_to_null
from connector.transform.typed import type_column


class ColumnMissing(KeyError):
    """A mapping names a column the source does not have."""

    def __init__(self, mapping: str, field: str, column: str, have: Sequence[str]) -> None:
        self.message = (
            f"{mapping}: {field}: column {column!r} not in source "
            f"(have: {', '.join(c for c in have if not c.startswith('_'))})"
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def _check_columns(mapping: SourceMapping, raw: pa.Table) -> None:
    have = raw.column_names
    if mapping.identity.column not in have:
        raise ColumnMissing(mapping.name, "identity.column", mapping.identity.column, have)
    for name, spec in mapping.param_specs.items():
        if spec.column not in have:
            raise ColumnMissing(mapping.name, f"params.{name}", spec.column, have)


def _column(raw: pa.Table, name: str) -> pa.Array:
    col = one_array(raw.column(name))
    if not pa.types.is_string(col.type):
        col = col.cast(pa.string())
    return col


def _profile_sizes(columns: dict[str, pa.Array], n: int, limit: int) -> np.ndarray | None:
    """Per row, the URL-encoded bytes of its non-empty params (name and value); None when
    no row can exceed ``limit`` (a bound from the raw lengths settles most chunks)."""
    upper = np.zeros(n, dtype=np.int64)
    for name, col in columns.items():
        blen = pc.fill_null(pc.binary_length(col), -1).to_numpy(zero_copy_only=False)
        upper += np.where(blen >= 0, blen * 3 + encoded_length(name), 0)
    if not (upper > limit).any():
        return None
    size = np.zeros(n, dtype=np.int64)
    for name, col in columns.items():
        valid = pc.is_valid(col).to_numpy(zero_copy_only=False)
        size += encoded_lengths(col) + np.where(valid, encoded_length(name), 0)
    return size


def map_chunk(
    mapping: SourceMapping,
    raw: pa.Table,
    *,
    max_profile_bytes: int = MAX_PROFILE_BYTES,
) -> tuple[pa.Table, pa.Table]:
    """(mapped, rejects) of one raw chunk, as ``docs/architecture.md`` stage 2 describes.

    ``mapped``: ``_identity``, ``_source_ref``, ``_seq``, then one string column per param
    in ``mapping.param_names`` order, null when empty. ``rejects``: ``source_ref, identity,
    param, reason, raw``. Raises ColumnMissing when the source lacks a mapped column.
    """
    _check_columns(mapping, raw)
    n = raw.num_rows
    refs = _column(raw, SOURCE_REF)
    raw_ident = _column(raw, mapping.identity.column)
    ident = apply_transforms(raw_ident, mapping.identity.transforms)

    bad = np.zeros(n, dtype=bool)
    rejects: list[Reject] = []

    # identity: the first rule a row breaks is its reason
    for mask, reason in identity_problems(ident, mapping.destination, mapping.identity.type):
        new = mask & ~bad
        if new.any():
            for i in np.flatnonzero(new):
                rejects.append(Reject(int(i), None, reason))
            bad |= new

    columns: dict[str, pa.Array] = {}
    for name, spec in mapping.param_specs.items():
        source_col = _column(raw, spec.column)
        col = empty_to_null(apply_transforms(source_col, spec.transforms))
        if spec.default is not None:
            col = pc.fill_null(col, spec.default)
        typed, col_bad, reasons = type_column(spec, col)
        if col_bad.any():
            for i in np.flatnonzero(col_bad):
                rejects.append(Reject(int(i), name, reasons[i] or "invalid value"))
            bad |= col_bad
        columns[name] = typed

    size = _profile_sizes(columns, n, max_profile_bytes) if columns else None
    if size is not None:
        too_big = (size > max_profile_bytes) & ~bad
        for i in np.flatnonzero(too_big):
            reason = (
                f"profile attributes are {int(size[i])} bytes URL-encoded "
                f"(limit {max_profile_bytes})"
            )
            rejects.append(Reject(int(i), None, reason))
        bad |= too_big

    mapped = pa.table(
        {
            IDENTITY: ident,
            SOURCE_REF: refs,
            SEQ: one_array(raw.column(SEQ)).cast(pa.int64()),
            **columns,
        }
    )
    if bad.any():  # most chunks have no bad row: no copy then
        mapped = mapped.filter(pa.array(~bad))
    return mapped, chunk_rejects(mapping, raw, refs, raw_ident, rejects)
