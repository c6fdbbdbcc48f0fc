"""`connector status` and `connector trace`: the ledger as tables. Never prints secrets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from connector.settings import Settings, load_settings

if TYPE_CHECKING:
    from connector.ledger import Ledger
    from connector.reporting import AccountProfile

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


EXIT_NO_LEDGER = 3  # as a bad configuration: the settings point where no ledger is


def _ledger() -> tuple[Settings, Ledger]:
    """The settings and the existing ledger they point at (brought up to date), or one line
    naming where it was looked for and exit 3: reading commands never create a ledger."""
    from connector.ledger import Ledger, LedgerNotFound

    settings = load_settings()
    try:
        return settings, Ledger.open_existing(settings.ledger_url)
    except LedgerNotFound as missing:
        click.echo(
            f"no ledger at {missing} (a sync creates it; this command only reads it): point "
            "CONNECTOR_STATE_DIR at the state folder a sync or `make demo` used (the demo "
            "prints the export line), or CONNECTOR_STATE_DB_URL at the ledger's database",
            err=True,
        )
        raise SystemExit(EXIT_NO_LEDGER) from None


def _t(value: object) -> Text:
    """Cell text taken literally (no rich markup from data)."""
    return Text("" if value is None else str(value))


@click.command("status")
@click.option("--batch", "batch_id", type=int, help="Show one batch and its row outcomes.")
def status_command(batch_id: int | None) -> None:
    """Outbox, open batches, quota used and left."""
    from connector.reporting import status_view

    settings, ledger = _ledger()
    console = Console(highlight=False)
    try:
        if batch_id is not None:
            _show_batch(console, ledger, batch_id)
            return
        view = status_view(settings, ledger)
        if not view.destinations:
            console.print("The outbox is empty: no batches in the ledger.")
            return
        counts = Table(title="Outbox by state (batches / rows)")
        counts.add_column("destination")
        for state in STATES:
            counts.add_column(state, justify="right")
        for dest in view.destinations:
            counts.add_row(
                _t(dest.destination_key),
                *(
                    _t(f"{c['batches']:,} / {c['rows']:,}")
                    if (c := dest.by_state.get(s))
                    else _t("")
                    for s in STATES
                ),
            )
        console.print(counts)
        quota = Table(title="Quota: rows claimed in the last 24 hours")
        for name in (
            "destination",
            "rows used (24 h)",
            "rows left (24 h)",
            f"calls on {view.day.isoformat()} ({settings.timezone})",
            "queued rows",
            "backlog drained by",
        ):
            quota.add_column(name, justify="left" if name == "destination" else "right")
        for dest in view.destinations:
            quota.add_row(
                _t(dest.destination_key),
                _t(f"{dest.quota_used:,}"),
                _t(f"{dest.quota_left:,}"),
                _t(f"{dest.calls_today:,}"),
                _t(f"{dest.queued_rows:,}"),
                _t(dest.projected_drain_date.isoformat() if dest.projected_drain_date else "-"),
            )
        console.print(quota)
        if view.open_batches:
            open_ = Table(title="Open batches")
            for name in (
                "id",
                "destination",
                "mapping",
                "partition",
                "attempt",
                "rows",
                "state",
                "remote batch id",
                "submitted at",
                "polls",
            ):
                open_.add_column(name)
            for b in view.open_batches:
                open_.add_row(
                    _t(b.id),
                    _t(b.destination_key),
                    _t(b.mapping),
                    _t(b.partition),
                    _t(b.attempt),
                    _t(f"{b.row_count:,}"),
                    _t(b.state),
                    _t(b.remote_batch_id or ""),
                    _t(b.submitted_at.isoformat(timespec="seconds") if b.submitted_at else ""),
                    _t(b.poll_count),
                )
            console.print(open_)
        else:
            console.print("No open batches.")
    finally:
        ledger.dispose()


def _show_batch(console: Console, ledger: Ledger, batch_id: int) -> None:
    from connector.reporting import batch_detail

    batch, counts, outcomes = batch_detail(ledger, batch_id)
    if batch is None:
        raise click.ClickException(f"no batch with id {batch_id}")
    info = Table(title=f"Batch {batch.id}", show_header=False)
    info.add_column("field")
    info.add_column("value")
    for name in (
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
    ):
        info.add_row(_t(name), _t(getattr(batch, name)))
    console.print(info)
    if counts:
        rows = Table(title="Rows that were not delivered by this batch")
        rows.add_column("identity")
        rows.add_column("source")
        rows.add_column("status")
        rows.add_column("reason")
        for o in outcomes:
            rows.add_row(_t(o.identity), _t(o.source_ref), _t(o.status), _t(o.reason))
        console.print(rows)
        console.print(", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items())))


@click.command("trace")
@click.argument("identity")
def trace_command(identity: str) -> None:
    """IDENTITY's profile at each account (every param, its value, mapping and source day)
    and where its rows went."""
    from connector.reporting import account_profiles, trace

    _, ledger = _ledger()
    console = Console(highlight=False)
    try:
        rows, delivered = trace(ledger, identity)
        profiles = account_profiles(ledger, identity)
    finally:
        ledger.dispose()
    if not rows and not delivered and not profiles:
        console.print(Text(f"No rows for identity {identity!r} in any batch or reject."))
        return
    for profile in profiles:
        _print_profile(console, identity, profile)
    table = Table(title=Text(f"Rows of {identity}"))
    for name in (
        "batch",
        "mapping",
        "partition",
        "destination",
        "attempt",
        "source",
        "remote batch id",
        "batch state",
        "outcome",
        "reason",
    ):
        table.add_column(name)
    for r in rows:
        table.add_row(
            _t(r.batch_id or "-"),
            _t(r.mapping),
            _t(r.partition),
            _t(r.destination_key),
            _t(r.attempt or "-"),
            _t(r.source_ref),
            _t(r.remote_batch_id),
            _t(r.state),
            _t(r.outcome),
            _t(r.reason),
        )
    console.print(table)
    for d in delivered:
        console.print(
            Text(
                f"confirmed delivered to {d.destination_key} by batch {d.batch_id} at "
                f"{d.delivered_at.isoformat(timespec='seconds')} (params: {d.nonempty or '-'})"
            )
        )


def _print_profile(console: Console, identity: str, profile: AccountProfile) -> None:
    table = Table(title=Text(f"Profile {identity} at {profile.destination_key}"))
    for name in ("param", "value", "mapping", "source day"):
        table.add_column(name)
    for name, (value, mapping, day) in profile.params.items():
        table.add_row(_t(name), _t("" if value is None else value), _t(mapping), _t(day or "-"))
    console.print(table)
    for mapping, source in sorted(profile.sources.items()):
        console.print(Text(f"  {mapping}: latest values from {source}"))
    if profile.current:
        assert profile.confirmed is not None
        state = (
            f"the destination holds these values (confirmed by batch {profile.confirmed.batch_id})"
        )
    elif profile.confirmed is None:
        state = "not confirmed at the destination yet"
    else:
        state = (
            f"the last confirmed row (batch {profile.confirmed.batch_id}) differs: these values "
            "are queued, on their way, or failed (see the rows below)"
        )
    console.print(Text(f"  {state}"))
