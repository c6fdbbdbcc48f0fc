"""Transform: raw source chunks -> typed profile updates and rejects (``map_chunk``)."""

from connector.mapping.values import type_value, value_typer
from connector.rejects import empty_rejects, rejects_table
from connector.transform.chunk import ColumnMissing, map_chunk
from connector.transform.identities import invalid_identity_reasons
from connector.transform.text import apply_transforms

__all__ = [
    "ColumnMissing",
    "apply_transforms",
    "empty_rejects",
    "invalid_identity_reasons",
    "map_chunk",
    "rejects_table",
    "type_value",
    "value_typer",
]
