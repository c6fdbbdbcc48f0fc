"""The merge rule of a profile store, in SQL (``connector.profiles.store`` runs it).

A day's value of a param replaces the stored one unless the stored one came from a later
day; a re-run of a day replaces that day's values; an empty value carries no information.
So merging days in any order gives the same snapshot. Besides the values, a snapshot says
per identity what the latest merge did (``_last``: changed, unchanged, superseded) and
which params the latest day held empty while a value is stored (``_cleared``).

Days (``_partition``, ``_day:<param>``) are DATEs: a snapshot holds one per value, and a
date is four bytes where its text is ten. Snapshots written with text days read the same
(:func:`snapshot_select` casts).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from connector.columns import IDENTITY, SOURCE_REF
from connector.encoding import quote_ident, quote_literal

PARTITION, VERSION, LAST, CLEARED = "_partition", "_version", "_last", "_cleared"
CHANGED, UNCHANGED, SUPERSEDED = "changed", "unchanged", "superseded"
DAY_PREFIX = "_day:"


def day_column(param: str) -> str:
    """The column holding the partition day of ``param``'s value."""
    return DAY_PREFIX + param


def day_literal(partition: str) -> str:
    """The partition day ``YYYY-MM-DD`` as a DuckDB DATE literal."""
    return f"DATE {quote_literal(partition)}"


def snapshot_select(path: Path | None, stored: Sequence[str], names: Sequence[str]) -> str:
    """The snapshot at ``path`` (holding params ``stored``) conformed to ``names`` (params
    added since: null; removed: gone); no ``path``: an empty store."""
    qi = quote_ident
    have = set(stored)
    cols = [f"{IDENTITY}", f"{SOURCE_REF}", f"{PARTITION}::DATE AS {PARTITION}", VERSION]
    for name in names:
        day = qi(day_column(name))
        if name in have:
            cols += [qi(name), f"{day}::DATE AS {day}"]
        else:
            cols += [f"NULL::VARCHAR AS {qi(name)}", f"NULL::DATE AS {day}"]
    if path is None:
        empty = [
            f"NULL::VARCHAR AS {IDENTITY}",
            f"NULL::VARCHAR AS {SOURCE_REF}",
            f"NULL::DATE AS {PARTITION}",
            f"NULL::BIGINT AS {VERSION}",
        ]
        for name in names:
            empty += [f"NULL::VARCHAR AS {qi(name)}", f"NULL::DATE AS {qi(day_column(name))}"]
        return f"(SELECT {', '.join(empty)} LIMIT 0)"
    return f"(SELECT {', '.join(cols)} FROM read_parquet({quote_literal(str(path))}))"


def merge_sql(store: str, day: str, names: Sequence[str], partition: str, version: int) -> str:
    """The merged snapshot: ``store`` (see :func:`snapshot_select`) with ``day``'s rows
    (``_identity``, ``_source_ref``, one column per param, empty = null or "")."""
    qi = quote_ident
    d = day_literal(partition)
    u_cols = [f"nullif(u.{qi(n)}, '') AS {qi('u:' + n)}" for n in names]
    day_rows = (
        f"SELECT u.{IDENTITY} AS {qi('u:id')}, u.{SOURCE_REF} AS {qi('u:ref')}"
        + "".join(f", {c}" for c in u_cols)
        + f" FROM {day} u WHERE u.{IDENTITY} IS NOT NULL AND u.{IDENTITY} <> ''"
    )
    take = {
        n: f"({qi('u:' + n)} IS NOT NULL AND ({qi(day_column(n))} IS NULL OR {qi(day_column(n))} <= {d}))"
        for n in names
    }
    changed = " OR ".join(f"({take[n]} AND {qi('u:' + n)} IS DISTINCT FROM {qi(n)})" for n in names)
    changed = changed or "false"
    lost = " OR ".join(f"({qi('u:' + n)} IS NOT NULL AND NOT {take[n]})" for n in names) or "false"
    in_day = f"{qi('u:id')} IS NOT NULL"
    newest = f"({PARTITION} IS NULL OR {PARTITION} <= {d})"
    cleared_items = ", ".join(
        f"CASE WHEN {qi('u:' + n)} IS NULL AND {qi(n)} IS NOT NULL THEN {quote_literal(n)} END"
        for n in names
    )
    cleared = (
        f"CASE WHEN {in_day} AND {newest} THEN nullif(concat_ws(',', {cleared_items}), '') END"
        if names
        else "NULL::VARCHAR"
    )
    params = "".join(
        f",\n  CASE WHEN {take[n]} THEN {qi('u:' + n)} ELSE {qi(n)} END AS {qi(n)}"
        f",\n  CASE WHEN {take[n]} THEN {d} ELSE {qi(day_column(n))} END AS {qi(day_column(n))}"
        for n in names
    )
    return f"""
        WITH s AS {store}, u AS ({day_rows}),
        j AS (SELECT * FROM s FULL OUTER JOIN u ON s.{IDENTITY} = u.{qi("u:id")}),
        f AS (SELECT *, {changed} AS _changed, {lost} AS _lost FROM j)
        SELECT coalesce({IDENTITY}, {qi("u:id")}) AS {IDENTITY},
          CASE WHEN {in_day} AND {newest} THEN {qi("u:ref")} ELSE {SOURCE_REF} END AS {SOURCE_REF},
          CASE WHEN NOT {in_day} THEN {PARTITION} WHEN {newest} THEN {d} ELSE {PARTITION} END
            AS {PARTITION},
          CASE WHEN _changed THEN {int(version)}::BIGINT ELSE {VERSION} END AS {VERSION},
          CASE WHEN NOT {in_day} THEN NULL WHEN _changed THEN '{CHANGED}'
               WHEN _lost THEN '{SUPERSEDED}' ELSE '{UNCHANGED}' END AS {LAST},
          {cleared} AS {CLEARED}{params}
        FROM f
    """


def first_snapshot_sql(day: str, names: Sequence[str], partition: str, version: int) -> str:
    """What :func:`merge_sql` gives when there is no store yet, without its join: every
    identity of the day is new, its non-empty values are the day's."""
    qi = quote_ident
    d = day_literal(partition)
    values = [f"nullif(u.{qi(n)}, '')" for n in names]
    held = " OR ".join(f"{v} IS NOT NULL" for v in values) or "false"
    params = "".join(
        f",\n  {v} AS {qi(n)}, CASE WHEN {v} IS NOT NULL THEN {d} END AS {qi(day_column(n))}"
        for n, v in zip(names, values, strict=True)
    )
    return f"""
        SELECT u.{IDENTITY} AS {IDENTITY}, u.{SOURCE_REF} AS {SOURCE_REF}, {d} AS {PARTITION},
          CASE WHEN {held} THEN {int(version)}::BIGINT END AS {VERSION},
          CASE WHEN {held} THEN '{CHANGED}' ELSE '{UNCHANGED}' END AS {LAST},
          NULL::VARCHAR AS {CLEARED}{params}
        FROM {day} u WHERE u.{IDENTITY} IS NOT NULL AND u.{IDENTITY} <> ''
    """
