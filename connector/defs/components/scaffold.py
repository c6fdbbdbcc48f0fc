"""What `dg scaffold defs` writes for the connector's components: a commented `defs.yaml`.

A new source mapping starts as a valid example (SQL or CSV, named after its folder) that the
data engineer edits; its keys are documented in the README's "adding a mapping".
"""

from __future__ import annotations

import re
from typing import Literal

import dagster as dg
from pydantic import BaseModel, Field

SQL_SOURCE = """\
  source:
    kind: sql
    url: sqlite:///sample_exports/crm.db  # any SQLAlchemy URL; ${ENV_VAR} expanded
    table: customers  # or: query: "select ... from ..."
    cursor: updated_at  # incremental column (partition window on it)
"""

CSV_SOURCE = """\
  source:
    kind: csv
    path: sample_exports/pos/*.csv  # glob; .csv or .csv.gz; ${ENV_VAR} expanded
    encoding: utf-8
    delimiter: ","
    date_from: filename  # the day in the file name places it in a partition
"""

SQL_PARAMS = """\
    email: {column: email, transform: [strip, lower]}
    loyaltyTier: {column: tier, transform: lower}
"""

CSV_PARAMS = """\
    lastStore: store
    lastPurchaseAmount: {column: amount, type: decimal, format: "0.00"}
"""

MAPPING_YAML = """\
# A source mapping: the keys of a file in mappings/ (see the connector's README).
type: {type_name}

attributes:
  name: {name}  # unique; the Dagster asset key prefix
  description: {description}
{source}  destination: target  # target | copernica
  identity:
    column: customer_id
    type: thirdPartyId  # pcId | thirdPartyId (Copernica: the match field)
  params:  # profile param name -> column, or a spec
{params}"""

DELIVERY_YAML = """\
# The connector's delivery: each destination's outbox, submissions and status report for every
# SourceMappingComponent of this project, the jobs, schedules, sensors and the `connector`
# resource. Settings (ledger, endpoints, off-peak window, quota) come from the environment
# (CONNECTOR_*), .env or connector.toml, as for the `connector` CLI.
type: {type_name}

attributes:
  include_mappings_dir: false  # true: also the mappings in CONNECTOR_MAPPINGS_DIR
  force_window: false  # true: submit outside the off-peak window
  poll_timeout_s: 0  # how long a status report run waits for open batches
"""


class MappingScaffoldParams(BaseModel):
    """`dg scaffold defs ... --kind csv` starts from a CSV source instead of an SQL table."""

    kind: Literal["sql", "csv"] = Field(default="sql", description="sql | csv")


def mapping_name(folder: str) -> str:
    """A valid mapping name (`[A-Za-z0-9_]`) from the folder the component is scaffolded in."""
    return re.sub(r"[^A-Za-z0-9_]", "_", folder)[:120] or "mapping"


class SourceMappingScaffolder(dg.Scaffolder[MappingScaffoldParams]):
    """Writes a valid example mapping named after its folder."""

    @classmethod
    def get_scaffold_params(cls) -> type[MappingScaffoldParams]:
        return MappingScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[MappingScaffoldParams]) -> None:
        if request.scaffold_format != "yaml":
            dg.scaffold_component(request, {})
            return
        name = mapping_name(request.target_path.name)
        csv = request.params.kind == "csv"
        text = MAPPING_YAML.format(
            type_name=request.type_name,
            name=name,
            description=f"what {name} reads, in a line",
            source=CSV_SOURCE if csv else SQL_SOURCE,
            params=CSV_PARAMS if csv else SQL_PARAMS,
        )
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / "defs.yaml").write_text(text, encoding="utf-8")


class DeliveryScaffolder(dg.Scaffolder):
    """Writes the delivery component's `defs.yaml` with its defaults spelled out."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        if request.scaffold_format != "yaml":
            dg.scaffold_component(request, {})
            return
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / "defs.yaml").write_text(
            DELIVERY_YAML.format(type_name=request.type_name), encoding="utf-8"
        )
