"""The files of a delivery status report, written to the reports location: an HTML page
(the latest run, mapping by mapping, with its reasons grouped; the history of runs and its
chart; the backlog and profiles as sent) and CSVs of the rows that did not land and of the
rejected source rows.

The location is a folder or an object store (``Settings.reports``): the files are written
in a local working folder and uploaded, each replacing the one before whole (an object is
visible only complete), then the local copies are removed.

The page is the Jinja2 template ``templates/status_report.html`` with autoescaping on:
every value that comes from data (identities, reasons, paths, run ids) is escaped.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from connector.ledger import Ledger
from connector.reporting.chart import runs_chart
from connector.reporting.counts import DEFINITIONS, MAPPING_COUNTS
from connector.reporting.outcomes import StatusReport, collect
from connector.reporting.runs import ACCOUNT_COUNTS, HISTORY_RUNS, run_history, run_url
from connector.storage import Location

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
            csv_name=_name(report.csv_path),
            rejects_name=_name(report.rejects_csv_path),
            history_runs=HISTORY_RUNS,
        )
    )
    path.write_text(page, encoding="utf-8")
    return path


def _name(location: str | None) -> str:
    """The file name of a report file's path or URL (the page links its CSVs beside it)."""
    return location.rsplit("/", 1)[-1] if location else ""


@contextmanager
def _writing_folder(where: Location, work_dir: Path | None) -> Iterator[Path]:
    """The folder the files are written in: the reports folder itself, or for an object store
    a temporary folder (in ``work_dir``) removed once they are uploaded."""
    if where.is_local:
        yield where.local_path
        return
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-", dir=work_dir) as tmp:
        yield Path(tmp)


def write_report(
    ledger: Ledger,
    destination: str,
    reports: Location | Path,
    daily_quota: int,
    mappings: Sequence[str] = (),
    *,
    dagster_url: str = DEFAULT_DAGSTER_URL,
    work_dir: Path | None = None,
) -> StatusReport:
    """Write `<destination>_status.html`, `_failed_rows.csv` and `_rejected_rows.csv` to
    ``reports`` (a folder, or a location in an object store): the destination's run records
    (``runs.record_run`` keeps them), newest first, and its rows now; ``dagster_url``: the
    Dagster UI the run links point at. ``work_dir``: where the files are written before
    they are uploaded to an object store (a temporary folder in it, removed after)."""
    where = reports if isinstance(reports, Location) else Location.parse(reports)
    runs = run_history(ledger, destination)
    report = collect(ledger, destination, daily_quota, mappings, runs)
    with _writing_folder(where, work_dir) as folder:
        failed = write_csv(
            report.failed_rows, FAILED_COLUMNS, folder / f"{destination}_failed_rows.csv"
        )
        rejected = write_csv(
            report.rejected_rows, REJECTED_COLUMNS, folder / f"{destination}_rejected_rows.csv"
        )
        # the page links its CSVs by name: they sit beside it wherever it is
        report.csv_path, report.rejects_csv_path = (
            where.url_of(failed.name),
            where.url_of(rejected.name),
        )
        page = write_html(report, folder / f"{destination}_status.html", dagster_url=dagster_url)
        if not where.is_local:  # the CSVs first: the page links them
            for written in (failed, rejected, page):
                where.put_file(written, written.name, move=True)
        report.html_path = where.url_of(page.name)
    return report
