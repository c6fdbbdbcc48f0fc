"""`connector db upgrade`: the ledger's schema migrations as an explicit step of a release."""

from __future__ import annotations

import click

from connector.settings import load_settings

# The ledger (SQLAlchemy, Alembic) is imported when the command runs, not when `connector
# --help` lists it.


@click.group("db")
def db_group() -> None:
    """The ledger database (CONNECTOR_STATE_DB_URL, else the SQLite file in the state folder)."""


@db_group.command("upgrade")
def upgrade_command() -> None:
    """Create the ledger, or bring its schema to this release's (Alembic migrations).

    Run it once per release before the new release's runs start (a release step, a
    Kubernetes Job or init container). Runs and sensors also bring the schema up to date
    when they open the ledger, under the same lock, so several processes starting at once
    apply the migrations once; a schema already up to date costs them one read. Exits 0
    when the schema is current (printing what it applied), 3 when the settings do not
    validate.
    """
    from connector.ledger import Ledger, ledger_location

    settings = load_settings()
    where = ledger_location(settings.ledger_url)
    ledger = Ledger(settings.ledger_url)
    try:
        applied = ledger.upgrade()
        revision = ledger.revision()
    finally:
        ledger.dispose()
    if applied:
        click.echo(f"ledger at {where}: applied {', '.join(applied)}; schema at {revision}")
    else:
        click.echo(f"ledger at {where}: schema at {revision} already; nothing to apply")
