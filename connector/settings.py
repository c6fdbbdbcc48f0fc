"""Settings from the environment (prefix ``CONNECTOR_``, nested with ``__``), ``.env`` or ``connector.toml``.

Secrets are ``SecretStr``: their value is only read where a request is built.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from connector.planner import parse_off_peak
from connector.storage import Location

# Documented limits (shared/api/PROTOCOLS.md). Defaults stay strictly within them.
MAX_BATCH_BYTES = 50 * 1000 * 1000 - 1  # "< 50 MB"
MAX_BATCH_ROWS = 500_000
MAX_PROFILE_BYTES = 64 * 1024
DAILY_QUOTA = 1_000_000
CALLS_PER_MINUTE = 50
STATUS_WINDOW = 10  # "only the previous 10 statuses are stored"


class TargetSettings(BaseModel):
    """Adobe Target Bulk Profile Update API."""

    base_url: str = Field(
        "http://127.0.0.1:8765",
        description="Base URL of the Adobe Target API, `https://<client code>.tt.omtrdc.net` "
        "(the default is the local sandbox).",
    )
    client_code: str = Field(
        "demo",
        description="Adobe Target client code: the account whose batches, quota and "
        "calls are counted.",
    )
    api_version: Literal["v1", "v2"] = Field(
        "v2",
        description="Bulk profile API version: `v1` only updates profiles Target already "
        "has, `v2` also creates them.",
    )
    token: SecretStr | None = Field(
        None,
        description="Token sent to Target as `Authorization: Bearer` (unset: no "
        "Authorization header).",
    )
    max_batch_rows: int = Field(
        MAX_BATCH_ROWS,
        gt=0,
        le=MAX_BATCH_ROWS,
        description="Rows per batch file at most (Adobe's limit is 500,000).",
    )
    max_batch_bytes: int = Field(
        MAX_BATCH_BYTES,
        gt=1024,
        le=MAX_BATCH_BYTES,
        description="Bytes per batch file at most (Adobe's limit is under 50 MB).",
    )
    max_profile_bytes: int = Field(
        MAX_PROFILE_BYTES,
        gt=0,
        le=MAX_PROFILE_BYTES,
        description="Bytes of attributes per profile at most; a larger profile is rejected "
        "with its reason (Adobe's limit is 64 KB).",
    )
    calls_per_minute: int = Field(
        CALLS_PER_MINUTE,
        gt=0,
        description="Target API calls per minute per client code, counted in the ledger "
        "across every process and container that shares it (Adobe allows about 50).",
    )
    max_in_flight: int = Field(
        STATUS_WINDOW,
        gt=0,
        le=STATUS_WINDOW,
        description="Batches per client code submitted and not yet final at once (Target "
        "keeps only the last 10 statuses).",
    )
    timeout_s: float = Field(
        60.0,
        gt=0,
        description="Seconds one Target request may take before it counts as failed and "
        "is retried.",
    )
    poll_interval_s: float = Field(
        30.0,
        ge=0,
        description="The longest wait between two status polls of open batches: a waiting "
        "poll asks at once, then after 1, 2, 4, ... seconds up to this (the status_poll "
        "sensor launches a poll run at most this often).",
    )
    pending_timeout_h: float = Field(
        24.0,
        gt=0,
        description="Hours a submitted batch may stay pending before it is marked stuck "
        "and its rows are re-queued.",
    )
    verify_sample: int = Field(
        20,
        ge=0,
        description="Profiles of each completed batch read back from Target to check that "
        "their values landed (the `landing_rate` check); 0 turns the read-back off.",
    )
    verify_tls: bool = Field(
        True,
        description="Verify Target's TLS certificate; `false` is logged as a warning "
        "whenever a client starts.",
    )


class CopernicaSettings(BaseModel):
    """Copernica REST API (bulk profile edit)."""

    base_url: str = Field(
        "http://127.0.0.1:8765/v3",
        description="Base URL of the Copernica REST API, e.g. `https://api.copernica.com/v3` "
        "(the default is the local sandbox).",
    )
    database: str = Field(
        "demo",
        description="Copernica database (its id or its name) the profiles are written to.",
    )
    access_token: SecretStr | None = Field(
        None,
        description="Copernica access token (a query parameter up to API v3, a Bearer "
        "header for v4).",
    )
    api_version: Literal["v1", "v2", "v3", "v4"] = Field(
        "v3",
        description="Copernica API version the base URL serves; it decides how the token "
        "and the fields are sent.",
    )
    concurrency: int = Field(
        8,
        gt=0,
        le=256,
        description="Profile PUT requests sent to Copernica at once when a batch starts; the "
        "number grows while Copernica answers fast and OK and halves when it throttles "
        "(429, 503, 504).",
    )
    max_concurrency: int = Field(
        64,
        gt=0,
        le=256,
        description="Profile PUT requests in flight at most, however fast Copernica answers "
        "(also the connections kept open to it).",
    )
    max_requests_per_s: int | None = Field(
        None,
        gt=0,
        description="Requests per second at most to the account (its base URL and token), "
        "for a contractual limit: shared by every client of the account in one process, "
        "each request counted from its start until a second after its answer (unset: no "
        "ceiling but Copernica's own throttling). Several processes delivering to one "
        "account at once each get their own ceiling.",
    )
    max_retry_after_s: float = Field(
        60.0,
        ge=0,
        description="Seconds at most that a throttle's `Retry-After` holds back every PUT "
        "to Copernica (and the throttled PUT's retry).",
    )
    timeout_s: float = Field(
        30.0,
        gt=0,
        description="Seconds one Copernica request may take before it counts as failed and "
        "is retried.",
    )
    verify_tls: bool = Field(
        True,
        description="Verify Copernica's TLS certificate; `false` is logged as a warning "
        "whenever a client starts.",
    )


class Settings(BaseSettings):
    """Everything the connector reads from its environment.

    Sources, first wins: the environment, ``.env``, ``connector.toml`` (both in the working
    directory). Every field carries a ``description``: ``connector.settings_reference``
    turns them into the README's table of settings.
    """

    model_config = SettingsConfigDict(
        env_prefix="CONNECTOR_",
        env_nested_delimiter="__",
        env_file=".env",
        toml_file="connector.toml",
        extra="ignore",
    )

    state_dir: Path = Field(
        Path(".connector"),
        description="Folder of the local state: the SQLite ledger (unless "
        "CONNECTOR_STATE_DB_URL is set), outbox, stage files, reports and the CLI's "
        "Dagster home.",
    )
    state_db_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the ledger, the state of record (unset: SQLite at "
        "`<state_dir>/ledger.db`); use PostgreSQL when more than one machine runs the "
        "connector.",
    )
    mappings_dir: Path = Field(
        Path("mappings"), description="Folder of the source mapping files (`*.yaml`)."
    )
    outbox_url: str | None = Field(
        None,
        description="Where the batch files and their manifests live: a folder, or an object "
        "store URL (`s3://bucket/prefix`, `gs://...`, `az://...`; credentials from the "
        "environment, `AWS_*` / `GOOGLE_*` / `AZURE_*`) that every process of a deployment "
        "reads (unset: CONNECTOR_OUTBOX_DIR, else `<state_dir>/outbox`).",
    )
    outbox_dir: Path | None = Field(
        None,
        description="The outbox as a local folder (the older name; CONNECTOR_OUTBOX_URL "
        "takes a folder too, and the two may not both be set).",
    )
    profiles_url: str | None = Field(
        None,
        description="Where the profile stores' snapshots live: a folder or an object-store "
        "URL (`s3://bucket/prefix`, `gs://`, `az://`) that every run of a deployment reaches "
        "(unset: `<state_dir>/profiles`); with a URL, `<state_dir>/profiles` is a cache.",
    )
    reports_url: str | None = Field(
        None,
        description="Where the status reports (HTML, CSV) are written: a folder or an "
        "object-store URL (unset: `<state_dir>/reports`).",
    )
    off_peak: str = Field(
        "22:00-06:00",
        description="Window in which batches are submitted, `HH:MM-HH:MM` in "
        "CONNECTOR_TIMEZONE (it may span midnight) or `always`; outside it they wait queued.",
    )
    timezone: str = Field(
        "UTC",
        description="IANA time zone of the partition days, the off-peak window, the "
        "schedules and naive timestamps in sources.",
    )
    daily_quota: int = Field(
        DAILY_QUOTA,
        gt=0,
        description="Rows a Target client code may be sent in any 24 hours (a rolling "
        "window, as Adobe counts its million a day); the rest waits queued.",
    )
    partition_start: dt.date = Field(
        dt.date(2026, 1, 1),
        description="First daily partition: earlier days cannot be synced or backfilled, "
        "and POS files of earlier days are not picked up.",
    )
    max_attempts: int = Field(
        3,
        gt=0,
        description="Times a profile's row is submitted (the first included) before a "
        "failure dead-letters it with the reason.",
    )
    chunk_rows: int = Field(
        100_000,
        gt=0,
        description="Rows read from a source at a time (memory grows with it); a "
        "mapping's `source.chunk_rows` overrides it.",
    )
    reject_rate_warn: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Share of a partition's rows rejected (0 to 1) above which the "
        "`reject_rate` asset check warns.",
    )
    reject_rate_error: float = Field(
        0.10,
        ge=0,
        le=1,
        description="Share of a partition's rows rejected (0 to 1) above which the "
        "`reject_rate` asset check fails with severity ERROR.",
    )
    claim_lease_s: float = Field(
        15 * 60,
        gt=0,
        description="Seconds a batch may stay claimed before a drain takes it back from its "
        "owner, taken for dead; keep it longer than the longest submit with all its retries, "
        "or a batch still being sent is sent again.",
    )
    record_runs: Literal["background", "wait"] = Field(
        "background",
        description="How `connector sync` records its runs in the Dagster instance after "
        "its work: `background` returns at once and leaves a recorder process behind; "
        "`wait` returns once they are recorded (a container that ends with the command).",
    )
    dagster_url: str = Field(
        "http://127.0.0.1:3000",
        description="The Dagster UI's address: the status report links each run to "
        "{dagster_url}/runs/{run_id}.",
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

    @field_validator("outbox_url", "profiles_url", "reports_url")
    @classmethod
    def _storage_location(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return str(Location.parse(value))

    @field_validator("outbox_dir")
    @classmethod
    def _one_outbox(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("outbox_url") is not None:
            raise ValueError(
                "CONNECTOR_OUTBOX_URL is set too: set only one of the two (OUTBOX_URL also "
                "takes a folder)"
            )
        return value

    @field_validator("dagster_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("not a web address (use http://HOST:PORT of the Dagster UI)")
        return value.rstrip("/")

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def ledger_url(self) -> str:
        return self.state_db_url or f"sqlite:///{self.state_dir / 'ledger.db'}"

    @property
    def outbox(self) -> Location:
        """Where batch files and manifests live (CONNECTOR_OUTBOX_URL, CONNECTOR_OUTBOX_DIR or
        ``<state_dir>/outbox``)."""
        return Location.parse(self.outbox_url or self.outbox_dir or self.state_dir / "outbox")

    @property
    def work_dir(self) -> Path:
        """This machine's working area: files being written before they are published."""
        return self.state_dir / "work"

    @property
    def cache_dir(self) -> Path:
        """This machine's cache of objects read from a store (each use removes its copies)."""
        return self.state_dir / "cache"

    @property
    def stage_dir(self) -> Path:
        return self.state_dir / "stage"

    @property
    def profiles(self) -> Location:
        """Where the profile store snapshots live (``profiles_url``, else a local folder)."""
        return Location.parse(self.profiles_url or self.profiles_cache)

    @property
    def profiles_cache(self) -> Path:
        """The local folder of the profile snapshots: the store itself when ``profiles_url``
        is unset; with an object-store URL, where snapshots are written before they are
        uploaded and where copies of the objects are read from (a cache)."""
        return self.state_dir / "profiles"

    @property
    def reports(self) -> Location:
        """Where the status reports are written (``reports_url``, else ``reports_dir``)."""
        return Location.parse(self.reports_url or self.reports_dir)

    @property
    def reports_dir(self) -> Path:
        """The local reports folder (the reports themselves unless ``reports_url`` is set)."""
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
