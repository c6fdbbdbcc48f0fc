"""What the reading commands (`status`, `trace`) share: the ledger they read, which they
never create, the `--json` option and how a time is written in their documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from connector.exit_codes import ExitCode
from connector.settings import Settings, load_settings

if TYPE_CHECKING:
    from connector.ledger import Ledger

# The ledger (SQLAlchemy) is imported when a command runs, not when `connector --help` lists it.

JSON_OPTION = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document on stdout (docs/cli-json.md).",
)


def open_ledger() -> tuple[Settings, Ledger]:
    """The settings and the existing ledger they point at (brought up to date), or one line
    naming where it was looked for and exit 3 (the settings point where no ledger is):
    reading commands never create a ledger."""
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
        raise SystemExit(ExitCode.BAD_CONFIGURATION) from None


def iso(value: Any) -> str | None:
    """A time as ISO 8601 to the second (None stays None), as the JSON documents write it."""
    return value.isoformat(timespec="seconds") if value is not None else None
