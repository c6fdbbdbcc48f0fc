"""`connector mappings ...` and `connector preview` (placeholder until the mapping module lands)."""

import click


@click.group("mappings")
def mappings_group() -> None:
    """Validate source mappings and print their JSON Schema."""


@click.command("preview")
@click.argument("mapping")
def preview_command(mapping: str) -> None:
    """Mapped rows and rejects of MAPPING, delivering nothing."""
    raise click.ClickException("not built yet")
