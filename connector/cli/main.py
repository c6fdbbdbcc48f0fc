"""The ``connector`` command line. Each command group lives in its own module."""

from __future__ import annotations

import logging
import traceback

import click

from connector.cli.db import db_group
from connector.cli.deploy import deploy_group
from connector.cli.mappings import mappings_group, preview_command
from connector.cli.status import status_command
from connector.cli.sync import sync_command
from connector.cli.trace import trace_command
from connector.exit_codes import ExitCode
from connector.mapping import MappingError, MappingsInvalid
from connector.sandbox.cli import CannotListen, sandbox_group
from connector.settings import SettingsError

# what no retry mends: fix the settings or the mapping files (exit 3, one line per problem)
CONFIGURATION_ERRORS = (SettingsError, MappingError, MappingsInvalid)


def configuration_problems(exc: Exception) -> list[str]:
    """The lines that report a configuration error, one per problem."""
    if isinstance(exc, MappingsInvalid):
        return [f"bad configuration: {error}" for error in exc.errors]
    return [f"bad configuration: {exc}"]


class _Connector(click.Group):
    """The command group; a configuration error ends any command in one line per problem
    and ``ExitCode.BAD_CONFIGURATION``, with its traceback only under ``--debug``; so does a
    sandbox that cannot listen where it was told to."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CONFIGURATION_ERRORS as exc:
            if ctx.params.get("debug"):
                click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
            for line in configuration_problems(exc):
                click.echo(line, err=True)
            ctx.exit(ExitCode.BAD_CONFIGURATION)
        except CannotListen as exc:
            click.echo(f"bad configuration: {exc.message}", err=True)
            ctx.exit(ExitCode.BAD_CONFIGURATION)


@click.group(cls=_Connector)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option(
    "--debug",
    is_flag=True,
    help="Show the traceback of a configuration error (settings, mappings), not just its line.",
)
def main(verbose: int, debug: bool) -> None:
    """Profile sync connector: CRM and POS data to Adobe Target and Copernica profiles."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


main.add_command(mappings_group)
main.add_command(preview_command)
main.add_command(sync_command)
main.add_command(status_command)
main.add_command(trace_command)
main.add_command(sandbox_group)
main.add_command(db_group)
main.add_command(deploy_group)
