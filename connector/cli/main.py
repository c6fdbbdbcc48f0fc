"""The ``connector`` command line. Each command group lives in its own module."""

from __future__ import annotations

import logging

import click

from connector.cli.delivery import status_command, trace_command
from connector.cli.mappings import mappings_group, preview_command
from connector.cli.sync import sync_command
from connector.exit_codes import ExitCode
from connector.sandbox.cli import CannotListen, sandbox_group
from connector.settings import SettingsError


class _Connector(click.Group):
    """The command group; settings that do not validate, and a sandbox that cannot listen
    where it was told to, end any command in one line with ``ExitCode.BAD_CONFIGURATION``."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            click.echo(f"bad configuration: {exc}", err=True)
            ctx.exit(ExitCode.BAD_CONFIGURATION)
        except CannotListen as exc:
            click.echo(f"bad configuration: {exc.message}", err=True)
            ctx.exit(ExitCode.BAD_CONFIGURATION)


@click.group(cls=_Connector)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Profile sync connector: CRM and POS data to Adobe Target and Copernica profiles."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


main.add_command(mappings_group)
main.add_command(preview_command)
main.add_command(sync_command)
main.add_command(status_command)
main.add_command(trace_command)
main.add_command(sandbox_group)
