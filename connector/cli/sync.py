"""`connector sync`: one full run in process, recorded in the Dagster instance afterwards."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.text import Text

from connector.cli.output import Column, make_console, print_json, print_table
from connector.cli.progress_display import showing_progress
from connector.exit_codes import HELP, ExitCode

if TYPE_CHECKING:
    from connector.defs.run_log import RunLog
    from connector.reporting import SyncSummary

SCHEMA = "connector.sync/1"


def _counts_table(
    console: Console,
    title: str,
    first: str,
    columns: Sequence[str],
    counts_by_name: Mapping[str, Mapping[str, int]],
    labels: Mapping[str, str] | None = None,
) -> None:
    """One row of ``columns`` counts per name (sorted), the name shown as ``labels`` gives it."""
    shown = labels or {}
    print_table(
        console,
        title,
        [Column(first), *(Column(c.replace("_", " "), numeric=True) for c in columns)],
        [
            [shown.get(name, name), *(f"{counts[c]:,}" for c in columns)]
            for name, counts in sorted(counts_by_name.items())
        ],
    )


def render_summary(console: Console, summary: SyncSummary, elapsed: float) -> None:
    """The sync's figures as tables, the words defined under them, then its reports and
    failures and what its exit code means."""
    # imported when a summary is shown: the reports import the ledger, pyarrow and DuckDB
    from connector.reporting import DELIVERY_COLUMNS, EARLIER_COLUMNS, SUMMARY_COLUMNS
    from connector.reporting.glossary import STOPPED_BECAUSE, explained

    _counts_table(
        console,
        f"sync of {', '.join(summary.partitions)} in {elapsed:.1f}s",
        "mapping",
        SUMMARY_COLUMNS,
        summary.per_mapping,
    )
    for line in explained(("read", "merged", "outdated")):
        console.print(Text(line, style="dim"))
    if summary.per_account:
        _counts_table(
            console,
            "profiles per destination account (one row each, whole)",
            "destination",
            DELIVERY_COLUMNS,
            summary.per_account,
            summary.accounts,
        )
        for line in [
            "changed = already sent + queued",
            *explained(("queued", "failed", "superseded", "not final")),
        ]:
            console.print(Text(line, style="dim"))
    if summary.earlier:
        _counts_table(
            console,
            "rows of earlier syncs' batches this sync submitted or polled",
            "destination",
            EARLIER_COLUMNS,
            summary.earlier,
            summary.accounts,
        )
    for destination, drain in sorted(summary.drains.items()):
        stopped = str(drain["stopped_because"])
        if stopped not in ("", "empty"):
            console.print(
                Text(
                    f"{summary.accounts.get(destination, destination)}: submitting stopped: "
                    f"{STOPPED_BECAUSE.get(stopped, stopped)}; {drain['queued_batches']} "
                    f"batch(es) / {drain['queued_rows']} rows still queued"
                )
            )
    for destination, path in sorted(summary.reports.items()):
        console.print(Text(f"{destination} report: {path}"))
    for failure in summary.failures:
        console.print(Text("FAILED", style="red") + Text(f" {failure}"))
    code = summary.exit_code
    console.print(Text(f"exit code {int(code)}: {_meaning(code)}"))


def _meaning(code: ExitCode) -> str:
    return {
        ExitCode.OK: "every row confirmed, or nothing to do",
        ExitCode.RUN_FAILED: "a run failed (see FAILED above and the run in the Dagster UI)",
        ExitCode.BAD_CONFIGURATION: "bad configuration (see FAILED above): fix the settings",
        ExitCode.ROWS_FAILED: "rows failed or were dead-lettered (see the report)",
        ExitCode.NOT_FINAL: "work is left queued or open (`connector status` shows it)",
        ExitCode.USAGE: "usage error",
    }[code]


def _record_runs(state_dir: Path, runs: list[RunLog], earlier: list[Path], *, wait: bool) -> None:
    """Hand the sync's runs (and earlier ones not yet recorded) to the recorder, started in
    the background; with ``wait``, return once it is done. A failure to start or finish it
    is reported and changes nothing of the sync (its log stays for the next sync)."""
    from connector.defs import run_log

    try:
        paths = [*earlier, run_log.write_pending(state_dir, runs)] if runs else earlier
        if not paths:
            return
        recorder = run_log.launch_recorder(paths)
    except OSError as exc:
        click.echo(
            f"warning: the runs could not be handed to the Dagster instance: {exc}", err=True
        )
        return
    if wait and recorder.wait() != 0:
        left = [
            kept
            for path in paths
            for kept in (path.with_suffix(run_log.FAILED), path)
            if kept.exists()
        ]
        click.echo(
            "warning: runs were not recorded in the Dagster instance "
            f"({', '.join(map(str, left))}); the next sync records them again",
            err=True,
        )


def summary_document(summary: SyncSummary, elapsed: float) -> dict[str, Any]:
    """The ``connector.sync/1`` JSON document of a sync (``docs/cli-json.md``)."""
    code = summary.exit_code
    return {
        "schema": SCHEMA,
        "exit_code": int(code),
        "outcome": code.label,
        "partitions": summary.partitions,
        "dry_run": summary.dry_run,
        "elapsed_s": round(elapsed, 3),
        "run_ids": summary.run_ids,
        "mappings": {name: dict(c) for name, c in sorted(summary.per_mapping.items())},
        "accounts": {
            name: {"account": summary.accounts.get(name, name), **c}
            for name, c in sorted(summary.per_account.items())
        },
        "earlier": {
            name: {"account": summary.accounts.get(name, name), **c}
            for name, c in sorted(summary.earlier.items())
        },
        "drains": {
            name: {"account": summary.accounts.get(name, name), **d}
            for name, d in sorted(summary.drains.items())
        },
        "reports": dict(sorted(summary.reports.items())),
        "failures": [
            {
                "what": f.what,
                "run_id": f.run_id or None,
                "step": f.step,
                "error": f.error,
                "message": f.message,
                "bad_configuration": f.bad_configuration,
            }
            for f in summary.failures
        ],
    }


@click.command("sync", epilog=HELP)
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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document (connector.sync/1, docs/cli-json.md) on stdout; progress "
    "lines go to stderr.",
)
def sync_command(
    mappings: tuple[str, ...],
    partitions: tuple[str, ...],
    dry_run: bool,
    force_window: bool,
    wait_s: float,
    as_json: bool,
) -> None:
    """One full run, in process: extract -> batches -> submit -> status report.

    The exit code tells what this run did: the batches it wrote, and the ones of earlier
    syncs it submitted or polled. Bad configuration is settings that do not validate, or a
    destination that refused the account's settings (a database it does not have,
    credentials it refuses): no retry mends it, fix the settings.
    """
    console = make_console()
    started = time.monotonic()
    # Dagster-free: the steps run directly, the runs are recorded in the Dagster instance
    # afterwards by a process started in the background (connector.defs.recorder)
    from connector.defs import run_log
    from connector.defs.direct import open_ledger, run_sync_direct
    from connector.settings import load_settings

    settings = load_settings()
    unrecorded = run_log.retry_failed(settings.state_dir)
    for path in unrecorded:
        why = path.with_suffix(run_log.WHY)
        said = f"why: {why}" if why.is_file() else "its recorder did not finish"
        click.echo(
            f"warning: an earlier sync's runs were not recorded in the Dagster instance "
            f"({said}); recording them again",
            err=True,
        )
    try:
        # progress lines: stdout, or stderr when stdout carries the JSON document
        with showing_progress(sys.stderr if as_json else sys.stdout) as display:
            summary, runs = run_sync_direct(
                settings,
                open_ledger(settings.ledger_url),
                mappings=mappings,
                partitions=partitions,
                dry_run=dry_run,
                force_window=force_window,
                poll_timeout_s=wait_s,
                on_event=display.message,
            )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    _record_runs(settings.state_dir, runs, unrecorded, wait=settings.record_runs == "wait")
    elapsed = time.monotonic() - started
    if as_json:
        print_json(summary_document(summary, elapsed))
    else:
        render_summary(console, summary, elapsed)
    raise SystemExit(int(summary.exit_code))
