"""`connector sync` (placeholder until the Dagster layer lands)."""

import click


@click.command("sync")
def sync_command() -> None:
    """One full run, in process."""
    raise click.ClickException("not built yet")
