"""`SourceMappingComponent`: a source mapping declared in a `dg` project's defs folder.

The component's attributes are the source mapping itself (`connector.mapping.SourceMapping`):
the same keys as a file in `mappings/`, validated by the same model, so `dg check yaml` checks
them against the model's JSON Schema and loading the project (`dg list defs`, `dg check defs`)
applies every rule, each error naming the `defs.yaml` file and line.

It builds the same assets and checks that `build_definitions` builds for that mapping from the
`mappings/` folder. The `connector` resource, the destinations' assets, the jobs, schedules
and sensors are shared by all mappings: a `DeliveryComponent` in the same project provides
them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

import dagster as dg
from pydantic import BaseModel

from connector.defs.assets import build_mapping_assets, daily_partitions
from connector.defs.components.scaffold import SourceMappingScaffolder
from connector.mapping import MappingError, SourceMapping
from connector.settings import load_settings


@dg.scaffold_with(SourceMappingScaffolder)
class SourceMappingComponent(dg.Component):
    """A source mapping (attributes: the keys of a file in `mappings/`); its assets and checks."""

    def __init__(self, mapping: SourceMapping, source: str = "<python>") -> None:
        self.mapping = mapping
        # where the mapping was declared, for errors that involve several mappings
        self.source = source

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return SourceMapping

    @classmethod
    def get_spec(cls) -> dg.ComponentTypeSpec:
        return dg.ComponentTypeSpec(produces=["asset", "asset_check"])

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> Self:
        source = _display(context.path / "defs.yaml", context.project_root)
        if not isinstance(attributes, SourceMapping):
            raise MappingError(source, "attributes", "a source mapping is required")
        return cls(attributes, source)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        # the partitions must be the ones DeliveryComponent's resource uses: both read the
        # settings from the environment, as the `connector` CLI does
        partitions = daily_partitions(load_settings())
        return dg.Definitions(assets=build_mapping_assets(self.mapping, partitions))


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
