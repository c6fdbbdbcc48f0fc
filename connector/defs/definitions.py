"""`build_definitions()`: assets per mapping, destination assets, jobs, schedules, sensors.

Built when called, never on import: the code location (`definitions.py`) calls it from
`@dg.definitions` when Dagster loads it."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from connector.defs.assets import (
    build_destination_assets,
    build_mapping_assets,
    daily_partitions,
    destination_pool,
    mapping_key,
)
from connector.defs.jobs import POLL, build_jobs
from connector.defs.resources import ConnectorResource
from connector.defs.schedules import build_schedules
from connector.defs.sensors import build_pos_sensor, build_status_sensor
from connector.mapping import MappingsInvalid, SourceMapping, load_mappings
from connector.planner import parse_off_peak
from connector.settings import Settings


def build_definitions(
    settings: Settings | None = None, connector: ConnectorResource | None = None
) -> dg.Definitions:
    """The code location for the mappings in `settings.mappings_dir`.

    `connector` replaces the default resource (tests hand in one pointing at a sandbox and a
    temporary state folder).
    """
    connector = connector or ConnectorResource.from_env()
    settings = settings or connector.settings()
    mappings, errors = load_mappings(settings.mappings_dir)
    if errors:
        raise MappingsInvalid(errors)
    partitions = daily_partitions(settings)
    assets: list[dg.AssetsDefinition] = []
    for mapping in mappings:
        assets += build_mapping_assets(mapping, partitions)
    return dg.Definitions.merge(
        dg.Definitions(assets=assets), delivery_definitions(mappings, settings, connector)
    )


def delivery_definitions(
    mappings: Sequence[SourceMapping], settings: Settings, connector: ConnectorResource
) -> dg.Definitions:
    """What `mappings` share: each destination's assets, the jobs, schedules, sensors and the
    `connector` resource (the mapping assets themselves come from `build_mapping_assets`)."""
    assets: list[dg.AssetsDefinition] = []
    destinations = sorted({m.destination for m in mappings})
    for destination in destinations:
        upstream = [
            mapping_key(m, "profile_changes") for m in mappings if m.destination == destination
        ]
        assets += build_destination_assets(
            destination, upstream, destination_pool(settings, destination)
        )
    jobs = build_jobs(destinations)
    by_name = {job.name: job for job in jobs}
    sensors = [build_status_sensor(by_name[POLL], connector)]
    pos = build_pos_sensor(mappings, connector)
    if pos is not None:
        sensors.append(pos)
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        schedules=build_schedules(by_name, parse_off_peak(settings.off_peak), settings.timezone),
        sensors=sensors,
        resources={"connector": connector},
    )
