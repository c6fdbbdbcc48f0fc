"""`connector deploy init`: what a Dagster deployment needs before its first run."""

from __future__ import annotations

import click

from connector.exit_codes import ExitCode
from connector.settings import load_settings

# Dagster is imported when the command runs, not when `connector --help` lists it.


@click.group("deploy")
def deploy_group() -> None:
    """Prepare the Dagster instance of a deployment (deploy/README.md)."""


@deploy_group.command("init")
@click.option(
    "--limit",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Slots of each pool: delivery steps of one destination account running at once, "
    "across all runs.",
)
def init_command(limit: int) -> None:
    """Create the concurrency pool of each destination account the mappings feed
    (`target-<client code>`, `copernica-<database>`) on the Dagster instance ($DAGSTER_HOME),
    with LIMIT slots, so that no pool is created by a run.

    Run it once per deployment, and again when a mapping brings a new account; running it
    again changes nothing. For each pool it prints, it does what `dagster instance
    concurrency set <pool> <limit>` does. Exits 3 when the settings or the mappings do not
    validate, or the instance's storage keeps no pools.
    """
    from connector.defs.instance import instance_for
    from connector.defs.pools import PoolsUnsupported, destination_pools, set_pool_limits

    settings = load_settings()
    pools = destination_pools(settings)
    instance = instance_for(settings.state_dir)
    try:
        click.echo(f"Dagster instance at {instance.root_directory}")
        results = set_pool_limits(instance, pools, limit)
    except PoolsUnsupported as exc:
        click.echo(f"bad configuration: {exc}", err=True)
        raise SystemExit(int(ExitCode.BAD_CONFIGURATION)) from None
    finally:
        instance.dispose()
    for result in results:
        click.echo(result.describe())
