"""Everything the sandbox lets you configure: documented limits, timings and injected faults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from connector.sandbox.copernica_schema import parse_schema

# Same defaults as connector.settings (not imported: the sandbox stays independent).
MAX_BATCH_BYTES = 50 * 1000 * 1000  # a body of this size or more is refused ("< 50 MB")
MAX_BATCH_ROWS = 500_000
MAX_PROFILE_BYTES = 64 * 1024
DAILY_QUOTA = 1_000_000
CALLS_PER_MINUTE = 50
STATUS_WINDOW = 10
STATUS_TTL_S = 24 * 3600.0
MAX_THIRD_PARTY_ID_CHARS = 256


@dataclass
class Faults:
    """Injected faults; every rate is a share of calls in [0, 1], drawn from a seeded RNG."""

    fail_rate: float = 0.0  # HTTP 500 or 502
    throttle_rate: float = 0.0  # HTTP 429 with Retry-After, or 503
    latency_ms: int = 0  # added to every API call
    drop_rate: float = 0.0  # connection closed without any response
    drop_when: Literal["before", "after"] = "before"  # "after": the call is handled, then dropped
    stuck_rate: float = 0.0  # accepted Target batches that never complete
    retry_after_s: int = 1

    def update(self, **changes: Any) -> None:
        """Change some faults in place; unknown names raise ``TypeError``."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(
                f"unknown fault option(s): {', '.join(unknown)} (have: {sorted(names)})"
            )
        for name, value in changes.items():
            setattr(self, name, value)
        self.validate()

    def validate(self) -> None:
        for name in ("fail_rate", "throttle_rate", "drop_rate", "stuck_rate"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms!r}")
        if self.drop_when not in ("before", "after"):
            raise ValueError(f"drop_when must be 'before' or 'after', got {self.drop_when!r}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SandboxOptions:
    """All configurable limits, timings, auth and faults of one sandbox server."""

    # Adobe Target limits
    max_batch_bytes: int = MAX_BATCH_BYTES
    max_batch_rows: int = MAX_BATCH_ROWS
    daily_quota: int = DAILY_QUOTA  # rows per client per UTC day
    calls_per_minute: int = CALLS_PER_MINUTE  # per client, all /m2 endpoints together
    max_profile_bytes: int = MAX_PROFILE_BYTES
    max_third_party_id_chars: int = MAX_THIRD_PARTY_ID_CHARS
    status_window: int = STATUS_WINDOW  # batch statuses kept per client
    status_ttl_s: float = STATUS_TTL_S
    processing_delay_s: float = 0.2  # incomplete -> complete after this long
    status_base_url: str | None = None  # host put in batchStatus URLs (default: the one posted to)
    # The docs print the status URL's "&" raw inside the XML (not well-formed); default: "&amp;".
    status_url_raw_ampersand: bool = False
    # v2's "consecutive batches override" caveat: by default a v2 row replaces what earlier v2
    # rows set for the profile since its last mbox call (the worst case); True merges instead.
    v2_merge: bool = False
    # Auth: when set, Target wants "Authorization: Bearer" or "access_token" header,
    # Copernica wants ?access_token= (v1-v3) or "Authorization: Bearer" (v4).
    token: str | None = None
    # Copernica: database name -> known field names (None = accept any field)
    copernica_databases: dict[str, list[str] | None] = field(default_factory=dict)
    # Copernica: typed declarations, {name: {"fields": {...}, "collections": {...}}}
    # (copernica_schema.py); these win over copernica_databases for the same name
    copernica_schema: dict[str, object] = field(default_factory=dict)
    copernica_autocreate: bool = True
    # Persistence: SQLite in this directory (None = memory only)
    data_dir: Path | None = None
    # Faults
    seed: int | None = None
    faults: Faults = field(default_factory=Faults)

    def validate(self) -> None:
        for name in (
            "max_batch_bytes",
            "max_batch_rows",
            "daily_quota",
            "calls_per_minute",
            "max_profile_bytes",
            "max_third_party_id_chars",
            "status_window",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.processing_delay_s < 0 or self.status_ttl_s <= 0:
            raise ValueError("processing_delay_s must be >= 0 and status_ttl_s > 0")
        parse_schema(self.copernica_schema)  # SchemaError (a ValueError) names the bad part
        self.faults.validate()


def build_options(**kwargs: Any) -> SandboxOptions:
    """SandboxOptions from keyword arguments; fault names (fail_rate, ...) may be given flat."""
    fault_names = {f.name for f in dataclasses.fields(Faults)}
    option_names = {f.name for f in dataclasses.fields(SandboxOptions)}
    fault_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in fault_names}
    unknown = sorted(set(kwargs) - option_names)
    if unknown:
        raise TypeError(f"unknown sandbox option(s): {', '.join(unknown)}")
    options = SandboxOptions(**kwargs)
    if fault_kwargs:
        options.faults = dataclasses.replace(options.faults, **fault_kwargs)
    if options.data_dir is not None:
        options.data_dir = Path(options.data_dir)
    options.validate()
    return options
