"""Settings from the environment (prefix ``CONNECTOR_``, nested with ``__``), ``.env`` or ``connector.toml``.

Secrets are ``SecretStr``: their value is only read where a request is built.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from connector.planner import parse_off_peak

# Documented limits (shared/api/PROTOCOLS.md). Defaults stay strictly within them.
MAX_BATCH_BYTES = 50 * 1000 * 1000 - 1  # "< 50 MB"
MAX_BATCH_ROWS = 500_000
MAX_PROFILE_BYTES = 64 * 1024
DAILY_QUOTA = 1_000_000
CALLS_PER_MINUTE = 50
STATUS_WINDOW = 10  # "only the previous 10 statuses are stored"


class TargetSettings(BaseModel):
    """Adobe Target Bulk Profile Update API."""

    base_url: str = "http://127.0.0.1:8765"
    client_code: str = "demo"
    api_version: Literal["v1", "v2"] = "v2"
    token: SecretStr | None = None
    max_batch_rows: int = Field(MAX_BATCH_ROWS, gt=0, le=MAX_BATCH_ROWS)
    max_batch_bytes: int = Field(MAX_BATCH_BYTES, gt=1024, le=MAX_BATCH_BYTES)
    max_profile_bytes: int = Field(MAX_PROFILE_BYTES, gt=0, le=MAX_PROFILE_BYTES)
    calls_per_minute: int = Field(CALLS_PER_MINUTE, gt=0)
    max_in_flight: int = Field(STATUS_WINDOW, gt=0, le=STATUS_WINDOW)
    timeout_s: float = Field(60.0, gt=0)
    poll_interval_s: float = Field(
        30.0,
        ge=0,
        description="The longest wait between two status polls of open batches: a waiting "
        "poll asks at once, then after 1, 2, 4, ... seconds up to this (the status_poll "
        "sensor launches a poll run at most this often).",
    )
    pending_timeout_h: float = Field(24.0, gt=0)
    verify_sample: int = Field(20, ge=0)
    verify_tls: bool = True


class CopernicaSettings(BaseModel):
    """Copernica REST API (bulk profile edit)."""

    base_url: str = "http://127.0.0.1:8765/v3"
    database: str = "demo"
    access_token: SecretStr | None = None
    api_version: Literal["v1", "v2", "v3", "v4"] = "v3"
    concurrency: int = Field(8, gt=0, le=64)
    timeout_s: float = Field(30.0, gt=0)
    verify_tls: bool = True


class Settings(BaseSettings):
    """Everything the connector reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="CONNECTOR_",
        env_nested_delimiter="__",
        env_file=".env",
        toml_file="connector.toml",
        extra="ignore",
    )

    state_dir: Path = Path(".connector")
    state_db_url: str | None = None
    mappings_dir: Path = Path("mappings")
    outbox_dir: Path | None = None
    off_peak: str = "22:00-06:00"
    timezone: str = "UTC"
    daily_quota: int = Field(DAILY_QUOTA, gt=0)
    partition_start: dt.date = dt.date(2026, 1, 1)
    max_attempts: int = Field(3, gt=0)
    chunk_rows: int = Field(100_000, gt=0)
    reject_rate_warn: float = Field(0.01, ge=0, le=1)
    reject_rate_error: float = Field(0.10, ge=0, le=1)
    claim_lease_s: float = Field(
        15 * 60,
        gt=0,
        description="Seconds a batch may stay claimed before a drain takes it back from its "
        "owner, taken for dead. Must be longer than the longest submit (the upload with all "
        "its retries): a batch taken back while its submit is still running is sent again.",
    )
    target: TargetSettings = TargetSettings()
    copernica: CopernicaSettings = CopernicaSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls),
            file_secret_settings,
        )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown timezone {value!r} (use an IANA name such as Europe/Amsterdam)"
            ) from exc
        return value

    @field_validator("off_peak")
    @classmethod
    def _valid_window(cls, value: str) -> str:
        parse_off_peak(value)
        return value

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def ledger_url(self) -> str:
        return self.state_db_url or f"sqlite:///{self.state_dir / 'ledger.db'}"

    @property
    def outbox(self) -> Path:
        return self.outbox_dir or self.state_dir / "outbox"

    @property
    def stage_dir(self) -> Path:
        return self.state_dir / "stage"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"


class SettingsError(Exception):
    """Settings that do not validate: one line per problem, each naming the environment
    variable (the same key in ``.env``; in ``connector.toml`` the name without the prefix).
    The values are not repeated: a secret may be among them."""


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable of a settings field (``("target", "client_code")`` ->
    ``CONNECTOR_TARGET__CLIENT_CODE``)."""
    return "CONNECTOR_" + "__".join(str(part).upper() for part in loc)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (tests, CLI flags) on top."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [f"{env_name(e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)]
        raise SettingsError("; ".join(problems)) from None
