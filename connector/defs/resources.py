"""Dagster resources: the connector's settings and ledger, typed and configurable."""

from __future__ import annotations

from functools import cache

import dagster as dg
from pydantic import Field

from connector.ledger import Ledger
from connector.settings import Settings, load_settings


@cache
def _ledger(url: str) -> Ledger:
    ledger = Ledger(url)
    ledger.create_all()
    return ledger


class ConnectorResource(dg.ConfigurableResource):
    """Settings for a run. A field left unset comes from the environment (CONNECTOR_*), `.env` or
    `connector.toml`, exactly as the CLI reads it.

    Secrets (the Target token, the Copernica access token) are deliberately not fields here: they
    are read by pydantic-settings from `CONNECTOR_TARGET__TOKEN` / `CONNECTOR_COPERNICA__ACCESS_TOKEN`
    inside the run, so they never appear in run config, the UI or the event log.
    """

    state_dir: str | None = Field(
        default=None, description="Folder for the ledger, outbox, stage and reports"
    )
    state_db_url: str | None = Field(default=None, description="SQLAlchemy URL of the ledger")
    mappings_dir: str | None = None
    timezone: str | None = None
    off_peak: str | None = Field(default=None, description="Submission window, e.g. 22:00-06:00")
    daily_quota: int | None = None
    target_base_url: str | None = None
    target_client_code: str | None = None
    target_api_version: str | None = None
    target_poll_interval_s: float | None = None
    copernica_base_url: str | None = None
    copernica_database: str | None = None
    force_window: bool = Field(
        default=False, description="Submit outside the off-peak window (demos, urgent runs)"
    )
    poll_timeout_s: float = Field(
        default=0.0, description="How long a status report run waits for open batches"
    )

    def settings(self) -> Settings:
        overrides: dict[str, object] = {}
        for name in (
            "state_dir",
            "state_db_url",
            "mappings_dir",
            "timezone",
            "off_peak",
            "daily_quota",
        ):
            value = getattr(self, name)
            if value is not None:
                overrides[name] = value
        base = load_settings(**overrides)
        target = {
            key: value
            for key, value in {
                "base_url": self.target_base_url,
                "client_code": self.target_client_code,
                "api_version": self.target_api_version,
                "poll_interval_s": self.target_poll_interval_s,
            }.items()
            if value is not None
        }
        copernica = {
            key: value
            for key, value in {
                "base_url": self.copernica_base_url,
                "database": self.copernica_database,
            }.items()
            if value is not None
        }
        if target:
            base = base.model_copy(update={"target": base.target.model_copy(update=target)})
        if copernica:
            base = base.model_copy(
                update={"copernica": base.copernica.model_copy(update=copernica)}
            )
        return base

    def ledger(self) -> Ledger:
        return _ledger(self.settings().ledger_url)
