"""`connector sync`: one full run in process, recorded in the Dagster instance."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from connector.cli.progress_display import showing_progress

if TYPE_CHECKING:
    from connector.reporting import SyncSummary

EXIT_FAILED = 1
EXIT_BAD_CONFIGURATION = 3  # 2 is click's usage error


def render_summary(console: Console, summary: SyncSummary, elapsed: float) -> None:
    # imported when a summary is shown: the reports import the ledger, pyarrow and DuckDB
    from connector.reporting import DELIVERY_COLUMNS, SUMMARY_COLUMNS

    table = Table(title=f"sync of {', '.join(summary.partitions)} in {elapsed:.1f}s")
    table.add_column("mapping")
    for column in SUMMARY_COLUMNS:
        table.add_column(column, justify="right")
    for name, counts in sorted(summary.per_mapping.items()):
        table.add_row(name, *(f"{counts[c]:,}" for c in SUMMARY_COLUMNS))
    console.print(table)
    console.print(
        "[dim]read = rejected + merged (an earlier row of the same identity that day) + "
        "unchanged + superseded (a later day holds newer values) + changed.[/dim]"
    )
    if summary.per_account:
        accounts = Table(title="profiles per destination account (one row each, whole)")
        accounts.add_column("destination")
        for column in DELIVERY_COLUMNS:
            accounts.add_column(column.replace("_", " "), justify="right")
        for name, counts in sorted(summary.per_account.items()):
            accounts.add_row(name, *(f"{counts[c]:,}" for c in DELIVERY_COLUMNS))
        console.print(accounts)
        console.print(
            "[dim]changed = already sent (the same values are confirmed or on their way) + "
            "queued; queued rows are submitted inside the off-peak window and confirmed by "
            "polling.[/dim]"
        )
    for destination, path in sorted(summary.reports.items()):
        console.print(f"{destination} report: {path}")
    for failure in summary.failures:
        console.print(f"[red]FAILED[/red] {failure}")


@click.command("sync")
@click.option("--mapping", "mappings", multiple=True, help="Only this mapping (repeatable).")
@click.option(
    "--partition",
    "partitions",
    multiple=True,
    help="Day YYYY-MM-DD or range A..B (repeatable); default: yesterday.",
)
@click.option(
    "--dry-run", is_flag=True, help="Extract and map only: no batch files, nothing submitted."
)
@click.option("--force-window", is_flag=True, help="Submit even outside the off-peak window.")
@click.option(
    "--wait",
    "wait_s",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds to poll open batches before reporting (0: one poll).",
)
def sync_command(
    mappings: tuple[str, ...],
    partitions: tuple[str, ...],
    dry_run: bool,
    force_window: bool,
    wait_s: float,
) -> None:
    """One full run, in process: extract -> batches -> submit -> status report.

    Exit codes: 0 every run succeeded; 1 a run failed; 2 a usage error (a bad option or
    partition); 3 bad configuration: settings that do not validate, or a destination that
    refused the account's settings (a Copernica database it does not have, credentials it
    refuses): no retry mends it, fix the settings.
    """
    console = Console(width=None if sys.stdout.isatty() else 120)
    started = time.monotonic()
    # imported when a sync runs: Dagster takes seconds to import, `connector --help` none
    from connector.defs.resources import ConnectorResource
    from connector.defs.runner import run_sync

    connector = ConnectorResource.from_env(force_window=force_window, poll_timeout_s=wait_s)
    try:
        with showing_progress(sys.stdout) as display:
            summary = run_sync(
                connector,
                mappings=mappings,
                partitions=partitions,
                dry_run=dry_run,
                on_event=display.message,
            )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    render_summary(console, summary, time.monotonic() - started)
    if summary.bad_configuration:
        raise SystemExit(EXIT_BAD_CONFIGURATION)
    if not summary.ok:
        raise SystemExit(EXIT_FAILED)
