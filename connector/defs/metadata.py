"""Dagster metadata built from the plain stage results: row counts, markdown previews, schemas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from connector.pipeline import StageResult

PREVIEW_ROWS = 10
CELL_CHARS = 60


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", "\\n").replace("|", "\\|")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A markdown table of the first rows (cells escaped and shortened)."""
    if not rows:
        return "_no rows_"
    cols = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += [
        "| " + " | ".join(_cell(row.get(c)) for c in cols) + " |" for row in rows[:PREVIEW_ROWS]
    ]
    return "\n".join(lines)


def table_schema(columns: Sequence[tuple[str, str]]) -> dg.TableSchema:
    """A Dagster table schema of (column, type) pairs."""
    return dg.TableSchema(columns=[dg.TableColumn(name, type_) for name, type_ in columns])


def stage_metadata(result: StageResult) -> dict[str, Any]:
    """Standard metadata for a stage result (see connector.pipeline.StageResult)."""
    counts = result.counts
    metadata: dict[str, Any] = {
        "dagster/row_count": int(counts.get("rows_out", 0)),
        "preview": dg.MetadataValue.md(markdown_table(result.preview)),
        "dagster/column_schema": table_schema(result.schema),
    }
    for key, value in counts.items():
        metadata[key] = int(value)
    seconds = result.stats.get("seconds")
    if seconds is not None:
        metadata["seconds"] = float(seconds)
    return metadata
