"""`connector status` and `connector trace` (placeholder until delivery lands)."""

import click


@click.command("status")
def status_command() -> None:
    """Outbox, open batches, quota used and left."""
    raise click.ClickException("not built yet")


@click.command("trace")
@click.argument("identity")
def trace_command(identity: str) -> None:
    """Where the rows of IDENTITY went."""
    raise click.ClickException("not built yet")
