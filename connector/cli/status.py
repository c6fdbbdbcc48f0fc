"""`connector status`: the outbox, open batches, quota used and left, or one batch and its
row outcomes, as tables or one JSON document, with an exit code a monitor can act on
(``connector.exit_codes``). Never prints secrets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.text import Text

from connector.cli.output import Column, make_console, print_json, print_table
from connector.cli.reading import JSON_OPTION, iso, open_ledger
from connector.exit_codes import HELP, ExitCode
from connector.settings import Settings

if TYPE_CHECKING:
    from connector.ledger import Batch, Ledger, RowOutcome
    from connector.reporting import StatusView

# The ledger and the reports (SQLAlchemy, pyarrow, DuckDB) are imported when a command
# runs, not when `connector --help` lists it.

STATES = (
    "queued",
    "claimed",
    "submitted",
    "complete",
    "failed",
    "stuck",
    "expired",
    "superseded",
    "dead",
)
BATCH_FIELDS = (
    "batch_key",
    "mapping",
    "partition",
    "destination_key",
    "state",
    "attempt",
    "parent_id",
    "row_count",
    "byte_size",
    "remote_batch_id",
    "submitted_at",
    "finished_at",
    "poll_count",
    "successful",
    "not_found",
    "failed_rows",
    "message",
    "path",
)
STATUS_MEANING = {
    ExitCode.OK: "nothing queued or open, every row landed or was confirmed since",
    ExitCode.NOT_FINAL: "work is queued or open (not final yet)",
    ExitCode.ROWS_FAILED: "rows did not land and were not confirmed since",
}


@click.command("status", epilog=HELP)
@click.option("--batch", "batch_id", type=int, help="Show one batch and its row outcomes.")
@JSON_OPTION
def status_command(batch_id: int | None, as_json: bool) -> None:
    """Outbox, open batches, quota used and left, rows that did not land.

    The exit code describes the ledger as it stands, so a monitor can call this: 5 when
    work is queued or open, 4 when rows did not land (dead, or not found at Target v1) and
    their profile was not confirmed since, else 0. With --batch, that batch's own state
    (2 when there is no such batch).
    """
    from connector.reporting import status_view

    settings, ledger = open_ledger()
    try:
        if batch_id is not None:
            code = _show_batch(ledger, batch_id, as_json)
        else:
            view = status_view(settings, ledger)
            code = view.exit_code
            if as_json:
                print_json(_status_document(settings, view))
            else:
                _print_status(make_console(), settings, view)
    finally:
        ledger.dispose()
    raise SystemExit(int(code))


def _print_status(console: Console, settings: Settings, view: StatusView) -> None:
    from connector.reporting.glossary import explain

    if not view.destinations:
        console.print("The outbox is empty: no batches in the ledger.")
        return
    print_table(
        console,
        "Outbox by state",
        ["destination", "state", Column("batches", numeric=True), Column("rows", numeric=True)],
        [
            [dest.destination_key if i == 0 else "", state, f"{c['batches']:,}", f"{c['rows']:,}"]
            for dest in view.destinations
            for i, (state, c) in enumerate(
                (s, dest.by_state[s]) for s in STATES if s in dest.by_state
            )
        ],
    )
    if any("superseded" in d.by_state for d in view.destinations):
        console.print(Text(explain("superseded"), style="dim"))
    print_table(
        console,
        f"Quota: rows per rolling 24 hours; calls on {view.day.isoformat()} ({settings.timezone})",
        [
            "destination",
            Column("used", numeric=True),
            Column("left", numeric=True),
            Column("calls", numeric=True),
            Column("queued rows", numeric=True),
            Column("backlog drained by", numeric=True),
        ],
        [
            [
                dest.destination_key,
                f"{dest.quota_used:,}",
                f"{dest.quota_left:,}",
                f"{dest.calls_today:,}",
                f"{dest.queued_rows:,}",
                dest.projected_drain_date.isoformat() if dest.projected_drain_date else "-",
            ]
            for dest in view.destinations
        ],
    )
    failed = [d for d in view.destinations if d.undelivered.total]
    if failed:
        print_table(
            console,
            "Rows that did not land (profiles not confirmed since)",
            ["destination", "outcome", Column("rows", numeric=True)],
            [
                [d.destination_key, status, f"{n:,}"]
                for d in failed
                for status, n in sorted(d.undelivered.rows.items())
            ]
            + [
                [
                    d.destination_key,
                    f"dead batches ({d.undelivered.dead_batches})",
                    f"{d.undelivered.dead_batch_rows:,}",
                ]
                for d in failed
                if d.undelivered.dead_batches
            ],
        )
    if view.open_batches:
        print_table(
            console,
            "Open batches",
            [
                "id",
                "destination",
                "mapping",
                "partition",
                Column("attempt", numeric=True),
                Column("rows", numeric=True),
                "state",
                "remote batch id",
                "submitted at",
                Column("polls", numeric=True),
            ],
            [
                [
                    b.id,
                    b.destination_key,
                    b.mapping,
                    b.partition,
                    b.attempt,
                    f"{b.row_count:,}",
                    b.state,
                    b.remote_batch_id or "",
                    iso(b.submitted_at) or "",
                    b.poll_count,
                ]
                for b in view.open_batches
            ],
        )
    else:
        console.print("No open batches.")
    code = view.exit_code
    console.print(Text(f"exit code {int(code)}: {STATUS_MEANING[code]}"))


def _status_document(settings: Settings, view: StatusView) -> dict[str, Any]:
    """The ``connector.status/1`` JSON document (``docs/cli-json.md``)."""
    code = view.exit_code
    return {
        "schema": "connector.status/1",
        "exit_code": int(code),
        "outcome": code.label,
        "day": view.day.isoformat(),
        "timezone": settings.timezone,
        "daily_quota": settings.daily_quota,
        "accounts": [
            {
                "account": d.destination_key,
                "batches": {
                    s: {"batches": c["batches"], "rows": c["rows"]}
                    for s, c in sorted(d.by_state.items())
                },
                "not_final_rows": d.not_final_rows,
                "quota_used_24h": d.quota_used,
                "quota_left_24h": d.quota_left,
                "calls_today": d.calls_today,
                "queued_rows": d.queued_rows,
                "projected_drain_date": (
                    d.projected_drain_date.isoformat() if d.projected_drain_date else None
                ),
                "undelivered": {
                    "rows": dict(sorted(d.undelivered.rows.items())),
                    "dead_batches": d.undelivered.dead_batches,
                    "dead_batch_rows": d.undelivered.dead_batch_rows,
                    "total": d.undelivered.total,
                },
            }
            for d in view.destinations
        ],
        "open_batches": [_batch_json(b) for b in view.open_batches],
    }


def _batch_json(b: Batch) -> dict[str, Any]:
    return {
        "id": b.id,
        "account": b.destination_key,
        "mapping": b.mapping,
        "partition": b.partition,
        "attempt": b.attempt,
        "rows": b.row_count,
        "state": b.state,
        "remote_batch_id": b.remote_batch_id,
        "submitted_at": iso(b.submitted_at),
        "polls": b.poll_count,
    }


def _show_batch(ledger: Ledger, batch_id: int, as_json: bool) -> ExitCode:
    from connector.reporting import batch_detail, batch_exit_code

    batch, counts, outcomes = batch_detail(ledger, batch_id)
    if batch is None:
        raise click.BadParameter(f"no batch with id {batch_id}", param_hint="--batch")
    code = batch_exit_code(batch, counts)
    if as_json:
        print_json(_batch_document(batch, counts, outcomes, code))
        return code
    console = make_console()
    print_table(
        console,
        f"Batch {batch.id}",
        ["field", "value"],
        [[name, getattr(batch, name)] for name in BATCH_FIELDS],
        show_header=False,
    )
    if counts:
        print_table(
            console,
            "Rows that were not delivered by this batch",
            ["identity", "source", "status", "reason"],
            [[o.identity, o.source_ref, o.status, o.reason] for o in outcomes],
        )
        console.print(Text(", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items()))))
    return code


def _batch_document(
    batch: Batch, counts: dict[str, int], outcomes: list[RowOutcome], code: ExitCode
) -> dict[str, Any]:
    """The ``connector.batch/1`` JSON document of ``status --batch ID``."""
    fields = {name: getattr(batch, name) for name in BATCH_FIELDS}
    for name in ("submitted_at", "finished_at"):
        fields[name] = iso(fields[name])
    return {
        "schema": "connector.batch/1",
        "exit_code": int(code),
        "outcome": code.label,
        "batch": {"id": batch.id, **fields},
        "row_outcomes": dict(sorted(counts.items())),
        "rows": [
            {
                "identity": o.identity,
                "source_ref": o.source_ref,
                "status": o.status,
                "reason": o.reason,
            }
            for o in outcomes
        ],
    }
