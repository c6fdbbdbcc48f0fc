"""The files of a delivery status report: an HTML page (a chart and tables) and CSVs of the
rows that did not land and of the rejected source rows, written under the reports folder."""

from __future__ import annotations

import csv
import html
from collections.abc import Sequence
from pathlib import Path

from connector.ledger import Ledger
from connector.reporting.outcomes import OUTCOMES, StatusReport, collect

COLOURS = {
    "rejected": "#6a1b9a",
    "delivered": "#2e7d32",
    "failed": "#ef6c00",
    "dead": "#c62828",
    "pending": "#1565c0",
    "queued": "#9e9e9e",
}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


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


def _svg_chart(per_day: dict[str, dict[str, int]]) -> str:
    """Stacked bars of row outcomes per day, inline SVG (no external assets)."""
    if not per_day:
        return "<p>No batches yet.</p>"
    width, height, pad, bar_gap = 720, 240, 40, 8
    days = list(per_day)
    top = max(sum(c.values()) for c in per_day.values()) or 1
    axis = (
        f'<text x="0" y="{pad - 6}" font-size="11">{top:,} rows</text>'
        f'<line x1="{pad - 4}" y1="{pad}" x2="{width - pad}" y2="{pad}" stroke="#ddd"/>'
    )
    bar_w = max(4, (width - 2 * pad) // len(days) - bar_gap)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" role="img">',
        axis,
    ]
    for i, day in enumerate(days):
        x = pad + i * (bar_w + bar_gap)
        y = float(height)
        for outcome in OUTCOMES:
            value = per_day[day][outcome]
            if not value:
                continue
            h = value / top * (height - pad)
            y -= h
            parts.append(
                f'<rect x="{x}" y="{y:.1f}" width="{bar_w}" height="{h:.1f}" fill="{COLOURS[outcome]}">'
                f"<title>{html.escape(day)} {outcome}: {value}</title></rect>"
            )
        parts.append(
            f'<text x="{x + bar_w / 2:.0f}" y="{height + 16}" font-size="11" text-anchor="middle">'
            f"{html.escape(day[5:])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: Sequence[dict[str, str]], columns: Sequence[str], limit: int = 200) -> str:
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(r[c])}</td>" for c in columns) + "</tr>"
        for r in rows[:limit]
    )
    return f'<table class="list"><tr>{head}</tr>{body}</table>'


def write_html(report: StatusReport, path: Path, csv_name: str, rejects_name: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    legend = " ".join(f'<span style="color:{COLOURS[o]}">&#9632;</span> {o}' for o in OUTCOMES)
    head = "".join(f"<th>{o}</th>" for o in OUTCOMES)
    rows = "".join(
        f"<tr><td>{html.escape(day)}</td>"
        + "".join(f"<td>{c[o]:,}</td>" for o in OUTCOMES)
        + "</tr>"
        for day, c in report.per_day.items()
    )
    totals = report.totals
    failed = _table(report.failed_rows, ("identity", "status", "reason", "source_ref", "batch"))
    rejected = _table(report.rejected_rows, ("source_ref", "identity", "param", "reason"))
    sample = report.profiles_sample
    profiles = _table(sample, list(sample[0])) if sample else "<p>No batch completed yet.</p>"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(report.destination)} delivery status</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child{{text-align:left}}
.list td,.list th{{text-align:left}}</style>
</head><body>
<h1>{html.escape(report.destination)}: delivery status</h1>
<p>Generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC. Rows by outcome per partition day.</p>
{_svg_chart(report.per_day)}
<p>{legend}</p>
<table><tr><th>day</th>{head}</tr>{rows}
<tr><th>total</th>{"".join(f"<th>{totals[o]:,}</th>" for o in OUTCOMES)}</tr></table>
<p>Queued rows: {report.queued_rows:,}; at a daily quota of {report.daily_quota:,} rows the backlog
drains in {report.backlog_days} day(s).</p>
<h2>Profiles as sent (one row each, every param of every mapping that feeds the account)</h2>
<p>{len(sample)} rows of {html.escape(report.profiles_from or "-")}, the most complete first.</p>
{profiles}
<h2>Rows that did not land ({len(report.failed_rows):,})</h2>
<p>All of them: <a href="{html.escape(csv_name)}">{html.escape(csv_name)}</a></p>
{failed}
<h2>Source rows rejected ({len(report.rejected_rows):,} problems)</h2>
<p>All of them: <a href="{html.escape(rejects_name)}">{html.escape(rejects_name)}</a></p>
{rejected}
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path


def write_report(
    ledger: Ledger,
    destination: str,
    reports_dir: Path,
    daily_quota: int,
    mappings: Sequence[str] = (),
) -> StatusReport:
    """Write `<destination>_status.html`, `_failed_rows.csv` and `_rejected_rows.csv`."""
    report = collect(ledger, destination, daily_quota, mappings)
    report.csv_path = write_csv(
        report.failed_rows, FAILED_COLUMNS, reports_dir / f"{destination}_failed_rows.csv"
    )
    report.rejects_csv_path = write_csv(
        report.rejected_rows, REJECTED_COLUMNS, reports_dir / f"{destination}_rejected_rows.csv"
    )
    report.html_path = write_html(
        report,
        reports_dir / f"{destination}_status.html",
        report.csv_path.name,
        report.rejects_csv_path.name,
    )
    return report
