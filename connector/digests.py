"""The change-detection digest of one profile: stable, defined once, computed in SQL or Python.

``_digest`` = lowercase hex sha256 of the UTF-8 text made of, for each param in mapping
order, ``<bytes of name>:<name>:`` then ``<bytes of value>:<value>`` (or ``-`` when the
value is empty or null), then ``;``. Length prefixes make it unambiguous whatever the
values contain; names are included so that renaming or reordering params resends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from connector.encoding import quote_ident


def _name_prefix(name: str) -> str:
    return f"{len(name.encode())}:{name}:"


def profile_digest(param_names: Sequence[str], values: Sequence[str | None]) -> str:
    """The digest of one profile's values (``None`` or ``""`` = empty)."""
    parts = []
    for name, value in zip(param_names, values, strict=True):
        body = "-" if value in (None, "") else f"{len(value.encode())}:{value}"
        parts.append(f"{_name_prefix(name)}{body};")
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def digest_sql(param_names: Sequence[str], alias: str = "") -> str:
    """A DuckDB expression equal to :func:`profile_digest` over the param columns."""
    qual = f"{alias}." if alias else ""
    parts = []
    for name in param_names:
        col = f"nullif({qual}{quote_ident(name)}, '')"
        parts.append(_sql_literal(_name_prefix(name)))
        parts.append(f"coalesce(strlen({col})::VARCHAR || ':' || {col}, '-')")
        parts.append("';'")
    if not parts:
        return "sha256('')"
    return f"sha256(concat({', '.join(parts)}))"
