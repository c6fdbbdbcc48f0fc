"""The ``connector`` command line. Each command group lives in its own module, imported
when the command runs (or `--help` lists it): a command pays for the imports it uses only."""

from __future__ import annotations

import importlib
import logging
import traceback

import click

from connector.exit_codes import ExitCode

# command name -> the module and attribute that define it
COMMANDS = {
    "mappings": ("connector.cli.mappings", "mappings_group"),
    "preview": ("connector.cli.mappings", "preview_command"),
    "sync": ("connector.cli.sync", "sync_command"),
    "status": ("connector.cli.status", "status_command"),
    "trace": ("connector.cli.trace", "trace_command"),
    "sandbox": ("connector.sandbox.cli", "sandbox_group"),
    "db": ("connector.cli.db", "db_group"),
    "deploy": ("connector.cli.deploy", "deploy_group"),
}


def configuration_errors() -> tuple[type[Exception], ...]:
    """What no retry mends: fix the settings or the mapping files (exit 3, one line per
    problem). Imported when an error is raised: the settings and mappings modules are slow."""
    from connector.mapping import MappingError, MappingsInvalid
    from connector.settings import SettingsError

    return (SettingsError, MappingError, MappingsInvalid)


def configuration_problems(exc: Exception) -> list[str]:
    """The lines that report a configuration error, one per problem."""
    from connector.mapping import MappingsInvalid

    if isinstance(exc, MappingsInvalid):
        return [f"bad configuration: {error}" for error in exc.errors]
    return [f"bad configuration: {exc}"]


class _Connector(click.Group):
    """The command group; a configuration error ends any command in one line per problem
    and ``ExitCode.BAD_CONFIGURATION``, with its traceback only under ``--debug``; so does a
    sandbox that cannot listen where it was told to."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if isinstance(exc, configuration_errors()):
                if ctx.params.get("debug"):
                    click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
                for line in configuration_problems(exc):
                    click.echo(line, err=True)
                ctx.exit(ExitCode.BAD_CONFIGURATION)
            from connector.sandbox.cli import CannotListen

            if isinstance(exc, CannotListen):
                click.echo(f"bad configuration: {exc.message}", err=True)
                ctx.exit(ExitCode.BAD_CONFIGURATION)
            raise


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
