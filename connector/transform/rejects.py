"""The rejects of one chunk: each rejected row's reason, shown with its source value.

``map_chunk`` collects a ``Reject`` per broken rule (several per row when several params
are bad, so every problem shows at once); ``chunk_rejects`` turns them into the rejects
table (``connector.rejects``) in row order, with the row's source ref, its identity as
read, and the raw value: the bad param's source value, or the identity for a row-level
reason.
"""

from __future__ import annotations

from typing import NamedTuple

import pyarrow as pa

from connector.mapping import SourceMapping
from connector.rejects import empty_rejects, rejects_table, truncate_raw


class Reject(NamedTuple):
    """Row ``row`` of the chunk is rejected for ``reason`` (about ``param``, or the row)."""

    row: int
    param: str | None
    reason: str


def chunk_rejects(
    mapping: SourceMapping,
    raw: pa.Table,
    refs: pa.Array,
    raw_ident: pa.Array,
    rejects: list[Reject],
) -> pa.Table:
    """The rejects table of ``rejects`` against the raw chunk they were found in."""
    if not rejects:
        return empty_rejects()
    specs = mapping.param_specs
    rows: list[dict[str, str | None]] = []
    for reject in sorted(rejects, key=lambda r: r.row):
        i = reject.row
        ident = raw_ident[i].as_py()
        if reject.param is not None:
            raw_value = raw.column(specs[reject.param].column)[i].as_py()
        else:
            raw_value = ident
        rows.append(
            {
                "source_ref": refs[i].as_py(),
                "identity": truncate_raw(ident),
                "param": reject.param,
                "reason": reject.reason,
                "raw": truncate_raw(raw_value),
            }
        )
    return rejects_table(rows)
