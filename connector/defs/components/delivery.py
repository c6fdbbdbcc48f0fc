"""`DeliveryComponent`: what every source mapping of a `dg` project shares.

For the `SourceMappingComponent`s of the project (and, when asked, the mappings of
`CONNECTOR_MAPPINGS_DIR`) it builds what `build_definitions` builds beside the mapping assets:
each destination's outbox, submissions and status report, the jobs, schedules and sensors, and
the `connector` resource. A project has one; its settings come from the environment, `.env` or
`connector.toml`, exactly as the `connector` CLI reads them, so both see one configuration.

The mappings are checked together as `connector mappings validate` checks a folder: names are
unique and the mappings of one destination account describe one profile.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from connector.defs.assets import build_mapping_assets, daily_partitions
from connector.defs.components.mapping import SourceMappingComponent
from connector.defs.components.scaffold import DeliveryScaffolder
from connector.defs.definitions import MappingsInvalid, delivery_definitions
from connector.defs.resources import ConnectorResource
from connector.mapping import MappingError, SourceMapping, account_conflicts, load_mappings
from connector.settings import Settings


@dg.scaffold_with(DeliveryScaffolder)
class DeliveryComponent(dg.Component, dg.Model, dg.Resolvable):
    """Destinations, jobs, schedules, sensors and the `connector` resource for the project's
    source mappings."""

    include_mappings_dir: bool = Field(
        default=False, description="Also load the mappings in CONNECTOR_MAPPINGS_DIR"
    )
    force_window: bool = Field(
        default=False, description="Submit outside the off-peak window (demos, urgent runs)"
    )
    poll_timeout_s: float = Field(
        default=0.0, description="How long a status report run waits for open batches"
    )

    @classmethod
    def get_spec(cls) -> dg.ComponentTypeSpec:
        return dg.ComponentTypeSpec(
            produces=["asset", "asset_check", "job", "schedule", "sensor", "resource"]
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        connector = ConnectorResource.from_env(
            force_window=self.force_window, poll_timeout_s=self.poll_timeout_s
        )
        settings = connector.settings()
        declared = [
            (component.source, component.mapping)
            for component in context.component_tree.get_all_components(
                of_type=SourceMappingComponent
            )
        ]
        folder = self._folder_mappings(settings)
        mappings = checked_mappings([*declared, *folder])
        shared = delivery_definitions(mappings, settings, connector)
        if not folder:
            return shared
        partitions = daily_partitions(settings)
        assets = [a for _, m in folder for a in build_mapping_assets(m, partitions)]
        return dg.Definitions.merge(dg.Definitions(assets=assets), shared)

    def _folder_mappings(self, settings: Settings) -> list[tuple[str, SourceMapping]]:
        if not self.include_mappings_dir:
            return []
        mappings, errors = load_mappings(settings.mappings_dir)
        if errors:
            raise MappingsInvalid(errors)
        return [(str(settings.mappings_dir), m) for m in mappings]


def checked_mappings(declared: list[tuple[str, SourceMapping]]) -> list[SourceMapping]:
    """The mappings of `(where declared, mapping)` pairs; MappingsInvalid unless their names are
    unique and they fit their accounts together."""
    first: dict[str, str] = {}
    kept: list[tuple[str, SourceMapping]] = []
    errors: list[MappingError] = []
    for source, mapping in declared:
        if mapping.name in first:
            message = f"{mapping.name!r} is already used by {first[mapping.name]}"
            errors.append(MappingError(source, "name", message))
            continue
        first[mapping.name] = source
        kept.append((source, mapping))
    errors += account_conflicts(kept)
    if errors:
        raise MappingsInvalid(errors)
    return [mapping for _, mapping in kept]
