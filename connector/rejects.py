"""The rejects table: one row per rejected source row or value, with where and why.

Sources (unreadable files, ragged rows) and the transform (bad identities and values) both
report rejects in this shape: the string columns ``columns.REJECT_COLUMNS``
(``source_ref, identity, param, reason, raw``), the raw value cut to ``RAW_LIMIT``
characters.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from connector.columns import REJECT_COLUMNS

RAW_LIMIT = 200  # characters of a rejected value kept in the rejects table


def truncate_raw(value: str | None) -> str | None:
    """``value`` as the rejects table keeps it: at most ``RAW_LIMIT`` characters, then ``...``."""
    if value is None or len(value) <= RAW_LIMIT:
        return value
    return value[:RAW_LIMIT] + "..."


def empty_rejects() -> pa.Table:
    """A rejects table without rows."""
    return pa.table({name: pa.array([], pa.string()) for name in REJECT_COLUMNS})


def rejects_table(rows: Sequence[dict[str, str | None]]) -> pa.Table:
    """A rejects table (``columns.REJECT_COLUMNS``) from dict rows."""
    return pa.table(
        {name: pa.array([r.get(name) for r in rows], pa.string()) for name in REJECT_COLUMNS}
    )
