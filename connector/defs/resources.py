"""Dagster resources: the ledger, each destination, and the connector's run settings.

Every field left unset comes from the environment (``CONNECTOR_*``), ``.env`` or
``connector.toml``, exactly as the CLI reads it, so a deployment configures the connector in
one place. Tests and demos hand in resources pointing at a temporary folder and a sandbox.

Secrets (the Target token, the Copernica access token) are deliberately not fields: they are
read by pydantic-settings from ``CONNECTOR_TARGET__TOKEN`` / ``CONNECTOR_COPERNICA__ACCESS_TOKEN``
inside the run, so they never appear in run config, the UI or the event log.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
from pydantic import Field

from connector.defs import run_log
from connector.defs.direct import open_ledger
from connector.ledger import Ledger
from connector.settings import Settings, load_settings

T = TypeVar("T")


@cache
def _replay_logs(path: str) -> list[run_log.RunLog]:
    return run_log.read(Path(path))


def _set(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class LedgerResource(dg.ConfigurableResource):
    """The ledger database and the state folder (outbox, stage, reports)."""

    state_dir: str | None = Field(default=None, description="Folder for outbox, stage and reports")
    state_db_url: str | None = Field(default=None, description="SQLAlchemy URL of the ledger")

    def overrides(self) -> dict[str, Any]:
        return _set(state_dir=self.state_dir, state_db_url=self.state_db_url)


class TargetResource(dg.ConfigurableResource):
    """Adobe Target Bulk Profile Update API (v1/v2): endpoint, client code, status polling."""

    base_url: str | None = Field(default=None, description="e.g. https://CLIENT.tt.omtrdc.net")
    client_code: str | None = None
    api_version: str | None = Field(default=None, description="v1 (updates only) or v2")
    poll_interval_s: float | None = None

    def overrides(self) -> dict[str, Any]:
        return _set(
            base_url=self.base_url,
            client_code=self.client_code,
            api_version=self.api_version,
            poll_interval_s=self.poll_interval_s,
        )


class CopernicaResource(dg.ConfigurableResource):
    """Copernica REST API: endpoint (with its version prefix) and database."""

    base_url: str | None = Field(default=None, description="e.g. https://api.copernica.com/v3")
    database: str | None = None

    def overrides(self) -> dict[str, Any]:
        return _set(base_url=self.base_url, database=self.database)


class ConnectorResource(dg.ConfigurableResource):
    """What a run needs: the ledger, the destinations, and the run-wide settings."""

    store: LedgerResource
    target: TargetResource
    copernica: CopernicaResource
    mappings_dir: str | None = None
    timezone: str | None = None
    off_peak: str | None = Field(default=None, description="Submission window, e.g. 22:00-06:00")
    daily_quota: int | None = None
    force_window: bool = Field(
        default=False, description="Submit outside the off-peak window (demos, urgent runs)"
    )
    poll_timeout_s: float = Field(
        default=0.0, description="How long a status report run waits for open batches"
    )

    replay: str | None = Field(
        default=None,
        description="A run log of `connector sync` (connector.defs.run_log): each step "
        "returns the output it had there instead of running again (the run is recorded)",
    )

    def step(self, context: dg.AssetExecutionContext, compute: Callable[[], T]) -> T:
        """``compute()``, the step's work; when replaying a run log, the output it had."""
        if self.replay is None:
            return compute()
        step = context.op_execution_context.op.name
        found: T = run_log.replayed(_replay_logs(self.replay), context.run.run_id, step)
        return found

    @classmethod
    def from_env(cls, **fields: Any) -> ConnectorResource:
        """Everything from the environment; `fields` are this resource's own fields."""
        return cls(
            store=LedgerResource(), target=TargetResource(), copernica=CopernicaResource(), **fields
        )

    def settings(self) -> Settings:
        base = load_settings(
            **self.store.overrides(),
            **_set(
                mappings_dir=self.mappings_dir,
                timezone=self.timezone,
                off_peak=self.off_peak,
                daily_quota=self.daily_quota,
            ),
        )
        target, copernica = self.target.overrides(), self.copernica.overrides()
        if target:
            base = base.model_copy(update={"target": base.target.model_copy(update=target)})
        if copernica:
            base = base.model_copy(
                update={"copernica": base.copernica.model_copy(update=copernica)}
            )
        return base

    def ledger(self) -> Ledger:
        return open_ledger(self.settings().ledger_url)
