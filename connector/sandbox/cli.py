"""`connector sandbox serve` (placeholder until the sandbox lands)."""

import click


@click.group("sandbox")
def sandbox_group() -> None:
    """A local emulator of the Adobe Target and Copernica APIs."""
