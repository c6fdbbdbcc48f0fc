"""The files of a delivery status report, written under the reports folder: an HTML page
(the latest run, mapping by mapping, with its reasons grouped; the history of runs and its
chart; the backlog and profiles as sent) and CSVs of the rows that did not land and of the
rejected source rows.

The page is the Jinja2 template ``templates/status_report.html`` with autoescaping on:
every value that comes from data (identities, reasons, paths, run ids) is escaped.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from connector.ledger import Ledger
from connector.reporting.chart import runs_chart
from connector.reporting.counts import DEFINITIONS, MAPPING_COUNTS
from connector.reporting.outcomes import StatusReport, collect
from connector.reporting.runs import ACCOUNT_COUNTS, HISTORY_RUNS, run_history, run_url

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"
TEMPLATE = "status_report.html"


def safe_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text, never evaluates as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


FAILED_COLUMNS = (
    "identity",
    "status",
    "reason",
    "source_ref",
    "mapping",
    "partition",
    "batch",
    "remote_batch_id",
    "attempt",
)
REJECTED_COLUMNS = ("mapping", "partition", "source_ref", "identity", "param", "reason", "raw")


def write_csv(rows: Sequence[dict[str, str]], columns: Sequence[str], path: Path) -> Path:
    """Rows as CSV whose cells a spreadsheet shows as text (no formulas)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([safe_cell(row[c]) for c in columns])
    return path


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 04 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("connector.reporting", "templates"),
        autoescape=True,  # every value in the page comes from data: escape it all
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda n: f"{int(n):,}"
    env.filters["duration"] = duration
    env.filters["when"] = lambda t: f"{t:%Y-%m-%d %H:%M:%S}"
    return env


def write_html(report: StatusReport, path: Path, *, dagster_url: str = DEFAULT_DAGSTER_URL) -> Path:
    """The report's page (see the module doc), with links to its CSVs beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page = (
        _environment()
        .get_template(TEMPLATE)
        .render(
            report=report,
            latest=report.latest,
            chart=runs_chart(report.runs),
            run_link=lambda run_id: run_url(dagster_url, run_id),
            mapping_counts=MAPPING_COUNTS,
            account_counts=ACCOUNT_COUNTS,
            definitions=DEFINITIONS,
            csv_name=report.csv_path.name if report.csv_path else "",
            rejects_name=report.rejects_csv_path.name if report.rejects_csv_path else "",
            history_runs=HISTORY_RUNS,
        )
    )
    path.write_text(page, encoding="utf-8")
    return path


def write_report(
    ledger: Ledger,
    destination: str,
    reports_dir: Path,
    daily_quota: int,
    mappings: Sequence[str] = (),
    *,
    dagster_url: str = DEFAULT_DAGSTER_URL,
) -> StatusReport:
    """Write `<destination>_status.html`, `_failed_rows.csv` and `_rejected_rows.csv`: the
    destination's run records (``runs.record_run`` keeps them), newest first, and its rows
    now; ``dagster_url``: the Dagster UI the run links point at."""
    runs = run_history(ledger, destination)
    report = collect(ledger, destination, daily_quota, mappings, runs)
    report.csv_path = write_csv(
        report.failed_rows, FAILED_COLUMNS, reports_dir / f"{destination}_failed_rows.csv"
    )
    report.rejects_csv_path = write_csv(
        report.rejected_rows, REJECTED_COLUMNS, reports_dir / f"{destination}_rejected_rows.csv"
    )
    report.html_path = write_html(
        report, reports_dir / f"{destination}_status.html", dagster_url=dagster_url
    )
    return report
