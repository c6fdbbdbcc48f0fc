"""Dagster metadata built from the plain results: row counts, markdown previews, schemas, and
the status report's summary (its latest run as tables, links to the report and the run)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from connector.pipeline import StageResult
from connector.reporting import (
    ACCOUNT_COUNTS,
    DEFINITIONS,
    MAPPING_COUNTS,
    RunRecord,
    StatusReport,
    run_url,
)
from connector.storage import is_object_url

PREVIEW_ROWS = 10
CELL_CHARS = 60
REASON_CHARS = 300  # a reason in the reasons table (the HTML report has it whole)


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


def _int_columns(names: Sequence[str]) -> list[dg.TableColumn]:
    return [dg.TableColumn(name, "int", description=DEFINITIONS[name]) for name in names]


def run_tables(run: RunRecord) -> dict[str, dg.MetadataValue]:
    """The run's figures as tables: mapping by mapping, at the account, reasons grouped."""
    mappings = dg.MetadataValue.table(
        records=[dg.TableRecord({"mapping": m, **c}) for m, c in run.mappings.items()],
        schema=dg.TableSchema(
            columns=[dg.TableColumn("mapping", "string"), *_int_columns(MAPPING_COUNTS)]
        ),
    )
    account = dg.MetadataValue.table(
        records=[dg.TableRecord({"account": run.destination_key, **run.account})],
        schema=dg.TableSchema(
            columns=[dg.TableColumn("account", "string"), *_int_columns(ACCOUNT_COUNTS)]
        ),
    )
    reasons = dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "what": r.label,
                    "where": f"{r.mapping}.{r.param}" if r.param else r.mapping,
                    "reason": r.reason[:REASON_CHARS],
                    "rows": r.count,
                    "examples": ", ".join(r.examples),
                }
            )
            for r in run.reasons
        ],
        schema=table_schema(
            [
                ("what", "string"),
                ("where", "string"),
                ("reason", "string"),
                ("rows", "int"),
                ("examples", "string"),
            ]
        ),
    )
    return {"per_mapping": mappings, "at_account": account, "reasons": reasons}


def report_metadata(report: StatusReport, run: RunRecord, dagster_url: str) -> dict[str, Any]:
    """The status report's materialization: the latest run's figures (tables, and each
    account figure on its own so the UI plots it across runs), the links to the HTML report
    and to the Dagster run, the backlog, the CSVs and profiles as sent.
    ``dagster/row_count``: the rows the run settled (confirmed + failed)."""
    html = report.html_path
    metadata: dict[str, Any] = {
        "dagster/row_count": run.account["confirmed"] + run.account["failed"],
        "dagster_run": dg.MetadataValue.url(run_url(dagster_url, run.run_id)),
    }
    if html is not None:
        # a local page opens by its file:// URL; an object is named by its own URL
        local = not is_object_url(html)
        metadata["report_url"] = dg.MetadataValue.url(
            Path(html).resolve().as_uri() if local else html
        )
        metadata["report_html"] = dg.MetadataValue.path(html)
    metadata.update(
        {
            "duration_s": dg.MetadataValue.float(round(run.duration_s, 1)),
            **run_tables(run),
            "read": run.read,
            "rejected": run.rejected,
            **{name: run.account[name] for name in ACCOUNT_COUNTS},
            "backlog_rows": report.queued_rows,
            "backlog_days": report.backlog_days,
            "profiles_preview": dg.MetadataValue.md(markdown_table(report.profiles_sample)),
        }
    )
    if report.csv_path is not None:
        metadata["failed_rows_csv"] = dg.MetadataValue.path(report.csv_path)
    if report.rejects_csv_path is not None:
        metadata["rejected_rows_csv"] = dg.MetadataValue.path(report.rejects_csv_path)
    return metadata


def landing_rate_pct(landing_rate: float | None) -> dict[str, Any]:
    """``landing_rate_pct``: the read-back sample's share that landed, in percent (a float
    the UI shows as 99.5 and plots); nothing when no profile was read back."""
    if landing_rate is None:
        return {}
    return {"landing_rate_pct": dg.MetadataValue.float(round(landing_rate * 100, 2))}
