"""A source mapping as pydantic models: SourceMapping and its parts, each field validated.

A mapping names a source (an SQL table or query, or a folder of CSV exports), a
destination, the identity column and the profile params. Every rule about one mapping
is checked when the model is built, so that a mistake is reported once, with the file
and the field (``connector.mapping.loader``), before anything is read or delivered.
Rules across mappings live in ``connector.mapping.accounts``.

Decisions (documented in the README's "adding a mapping"):

- Param names are ``[A-Za-z][A-Za-z0-9_]*`` (at most 128 characters): conservative, so
  a name is the same in a Target batch header, a Copernica field and a Dagster
  metadata key, and never needs URL-encoding. ``profile.`` prefixes, a leading ``_``
  and the identity header are refused.
- ``${VAR}`` in ``source.url`` / ``source.path`` is expanded from the environment when
  the file is loaded; a missing variable is an error naming it. ``$$`` is a literal ``$``.
- Relative paths (a CSV glob, an ``sqlite:///relative.db`` URL) resolve against the
  current directory, i.e. the project root where ``connector`` and Dagster run.
- A param's ``default`` must type as the param's type (``connector.mapping.values``).
"""

from __future__ import annotations

import codecs
import datetime as dt
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connector.mapping.file_days import DEFAULT_DATE_PATTERN, compile_date_pattern
from connector.mapping.values import ParamType, type_value

NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,120}$")
PARAM_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
COPERNICA_FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
DECIMAL_FORMAT_RE = re.compile(r"^0+(\.0+)?$")
ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Identity headers of a Target batch file (and the mbox alias of thirdPartyId).
TARGET_ID_HEADERS = ("pcId", "thirdPartyId", "mbox3rdPartyId")

Transform = Literal["lower", "upper", "strip", "sha256"]


def expand_env(value: str, environ: Mapping[str, str] | None = None) -> str:
    """``${VAR}`` from the environment; a missing variable is an error naming it."""
    env = os.environ if environ is None else environ

    def _sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if name not in env:
            raise ValueError(f"environment variable {name} is not set")
        return env[name]

    return ENV_RE.sub(_sub, value)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SqlSource(_Model):
    """An SQL table or query behind any SQLAlchemy URL, read incrementally on ``cursor``."""

    kind: Literal["sql"]
    url: str = Field(description="SQLAlchemy URL; ${VAR} expanded from the environment")
    table: str | None = Field(None, description="table name (reflected); or give `query`")
    schema_: str | None = Field(None, alias="schema", description="database schema of `table`")
    query: str | None = Field(None, description="a SELECT, read as a subquery; or give `table`")
    cursor: str = Field(description="incremental column: rows with it inside the partition day")
    key: str | list[str] | None = Field(
        None, description="primary key column(s) for source refs (default: the table's own)"
    )
    chunk_rows: int | None = Field(None, gt=0, description="rows per chunk (default: settings)")

    @field_validator("url")
    @classmethod
    def _expand_url(cls, value: str) -> str:
        return expand_env(value)

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table` or `query`")
        return self

    @property
    def key_columns(self) -> list[str]:
        if self.key is None:
            return []
        return [self.key] if isinstance(self.key, str) else list(self.key)


class CsvSource(_Model):
    """CSV exports (``.csv`` / ``.csv.gz``) matched by a glob; one day per file."""

    kind: Literal["csv"]
    path: str = Field(description="glob of the files; ${VAR} expanded; relative to the cwd")
    encoding: str = Field("utf-8", description="text encoding; a BOM is tolerated")
    delimiter: str = Field(",", min_length=1, max_length=1)
    date_from: Literal["filename", "mtime"] = "filename"
    date_pattern: str = Field(
        DEFAULT_DATE_PATTERN,
        description="regex with a named group `date` (or groups Y, m, d), or a strftime-like "
        "pattern such as `pos_%Y%m%d`, locating the day in the file name",
    )
    chunk_rows: int | None = Field(None, gt=0)

    @field_validator("path")
    @classmethod
    def _expand_path(cls, value: str) -> str:
        return expand_env(value)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    @field_validator("delimiter")
    @classmethod
    def _usable_delimiter(cls, value: str) -> str:
        if value in ('"', "\n", "\r"):
            raise ValueError(f"{value!r} cannot be a delimiter")
        return value

    @field_validator("date_pattern")
    @classmethod
    def _date_pattern_compiles(cls, value: str) -> str:
        compile_date_pattern(value)
        return value

    @property
    def date_regex(self) -> re.Pattern[str]:
        return compile_date_pattern(self.date_pattern)


Source = Annotated[SqlSource | CsvSource, Field(discriminator="kind")]


def _transforms(value: Transform | list[Transform] | None) -> tuple[Transform, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


class ParamSpec(_Model):
    """How one profile param is read from a source column, typed and formatted."""

    column: str = Field(min_length=1)
    type: ParamType = "string"
    format: str | None = Field(
        None,
        description='output format: decimal "0.00" (places), date/datetime strftime',
    )
    input_format: str | None = Field(
        None, description="strptime format of the source value (date/datetime; default ISO 8601)"
    )
    transform: Transform | list[Transform] | None = Field(
        None, description="applied in order before typing: lower, upper, strip, sha256"
    )
    default: str | None = Field(None, description="text used when the source value is empty")
    timezone: str | None = Field(
        None,
        description="datetime: zone of naive source values and of the output (default UTC)",
    )

    @property
    def transforms(self) -> tuple[Transform, ...]:
        return _transforms(self.transform)

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.format is not None:
            if self.type == "decimal" and not DECIMAL_FORMAT_RE.match(self.format):
                raise ValueError(f'decimal format {self.format!r} must look like "0" or "0.00"')
            if self.type in ("string", "int", "bool"):
                raise ValueError(f"`format` does not apply to type {self.type}")
            if self.type in ("date", "datetime"):
                try:
                    dt.datetime(2001, 2, 3, 4, 5, 6).strftime(self.format)
                except ValueError as exc:
                    raise ValueError(f"format {self.format!r}: {exc}") from exc
        if self.input_format is not None and self.type not in ("date", "datetime"):
            raise ValueError("`input_format` applies to types date and datetime only")
        if self.timezone is not None:
            if self.type not in ("datetime", "date"):
                raise ValueError("`timezone` applies to types datetime and date only")
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        if "sha256" in self.transforms and self.type != "string":
            raise ValueError("the sha256 transform gives text: use it with type string")
        if self.default is not None:
            try:
                type_value(self, self.default)
            except ValueError as exc:
                raise ValueError(f"default {self.default!r}: {exc}") from exc
        return self

    @property
    def decimal_places(self) -> int | None:
        if self.format is None:
            return None
        return len(self.format.partition(".")[2])


class Identity(_Model):
    """The column that identifies a profile and how the destination names it."""

    column: str = Field(min_length=1)
    type: str = Field(description="target: pcId | thirdPartyId; copernica: the match field's name")
    transform: Transform | list[Transform] | None = Field(
        None, description="e.g. [strip, lower, sha256] for a hashed e-mail identity"
    )

    @property
    def transforms(self) -> tuple[Transform, ...]:
        return _transforms(self.transform)


class SourceMapping(_Model):
    """One source mapping file."""

    name: str = Field(description="unique; [A-Za-z0-9_]+; the Dagster asset key prefix")
    description: str | None = None
    source: Source
    destination: Literal["target", "copernica"]
    identity: Identity
    params: dict[str, str | ParamSpec] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(
                f"{value!r} is not a safe name: use letters, digits and _ (at most 120)"
            )
        return value

    @field_validator("params", mode="before")
    @classmethod
    def _param_names(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        lowered: dict[str, str] = {}
        for name in value:
            if not isinstance(name, str):
                raise ValueError(f"param name {name!r} must be text")
            if name.startswith("profile."):
                raise ValueError(
                    f"{name!r}: write the param without the `profile.` prefix "
                    f"({name.removeprefix('profile.')!r})"
                )
            if name.startswith("_"):
                raise ValueError(f"{name!r}: param names cannot start with `_`")
            if not PARAM_RE.match(name):
                raise ValueError(
                    f"{name!r} is not a valid param name: a letter, then letters, digits "
                    "or _ (at most 128)"
                )
            if name.lower() in lowered:
                raise ValueError(f"{name!r} and {lowered[name.lower()]!r} differ only in case")
            lowered[name.lower()] = name
        return value

    @model_validator(mode="after")
    def _identity_fits_destination(self) -> SourceMapping:
        id_type = self.identity.type
        if self.destination == "target":
            if id_type not in ("pcId", "thirdPartyId"):
                raise ValueError(
                    f"identity.type {id_type!r} must be pcId or thirdPartyId for target"
                )
            clash = [p for p in self.params if p.lower() in {h.lower() for h in TARGET_ID_HEADERS}]
        else:
            if not COPERNICA_FIELD_RE.match(id_type):
                raise ValueError(
                    f"identity.type {id_type!r} must be the Copernica match field's name"
                )
            clash = [p for p in self.params if p.lower() == id_type.lower()]
        if clash:
            raise ValueError(f"param {clash[0]!r} clashes with the identity header {id_type!r}")
        return self

    @property
    def param_names(self) -> list[str]:
        """Param names in YAML order."""
        return list(self.params)

    def param_spec(self, name: str) -> ParamSpec:
        spec = self.params[name]
        return ParamSpec(column=spec) if isinstance(spec, str) else spec

    @property
    def param_specs(self) -> dict[str, ParamSpec]:
        return {name: self.param_spec(name) for name in self.params}

    @property
    def columns(self) -> list[str]:
        """Source columns the mapping reads (identity first), without repeats."""
        cols = [self.identity.column, *(s.column for s in self.param_specs.values())]
        return list(dict.fromkeys(cols))

    @property
    def chunk_rows(self) -> int | None:
        return self.source.chunk_rows
