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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from connector.mapping.file_days import DEFAULT_DATE_PATTERN, compile_date_pattern
from connector.mapping.values import ParamType, type_value
from connector.storage import is_object_url

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


# A rule across fields is a validator of the later field reading the earlier ones from
# ``info.data`` (where a field that failed is absent), not a model validator: pydantic runs
# those only when every field passed, and a mapping's problems are reported all at once.


def _problem(loc: tuple[str | int, ...], message: str, value: Any) -> InitErrorDetails:
    """A problem at ``loc`` under the field being validated (pydantic prefixes its path)."""
    return InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value)


def _rule_error(title: str, problems: list[InitErrorDetails]) -> ValidationError:
    """``problems`` as the ValidationError a validator raises."""
    return ValidationError.from_exception_data(title, problems)


def _with_problems(failed: ValidationError, problems: list[InitErrorDetails]) -> ValidationError:
    """The errors of a nested validation that failed, and ``problems``, as one error."""
    again = [
        InitErrorDetails(
            type=PydanticCustomError(e["type"], e["msg"], e.get("ctx")),
            loc=e["loc"],
            input=e["input"],
        )
        for e in failed.errors()
    ]
    return _rule_error(failed.title, again + problems)


class SqlSource(_Model):
    """An SQL table or query behind any SQLAlchemy URL, read incrementally on ``cursor``."""

    kind: Literal["sql"]
    url: str = Field(description="SQLAlchemy URL; ${VAR} expanded from the environment")
    table: str | None = Field(None, description="table name (reflected); or give `query`")
    schema_: str | None = Field(None, alias="schema", description="database schema of `table`")
    query: str | None = Field(
        None,
        validate_default=True,  # its rule runs when it is left out, too
        description="a SELECT, read as a subquery; or give `table`",
    )
    cursor: str = Field(description="incremental column: rows with it inside the partition day")
    key: str | list[str] | None = Field(
        None, description="primary key column(s) for source refs (default: the table's own)"
    )
    chunk_rows: int | None = Field(None, gt=0, description="rows per chunk (default: settings)")
    reader: Literal["auto", "arrow", "sqlalchemy"] = Field(
        "auto",
        description=(
            "how rows travel from the database: `auto` (Arrow where the dialect has an ADBC "
            "driver and the columns an exact text rule, else SQLAlchemy), `arrow` (Arrow or an "
            "error saying why not), `sqlalchemy` (always SQLAlchemy)"
        ),
    )

    @field_validator("url")
    @classmethod
    def _expand_url(cls, value: str) -> str:
        return expand_env(value)

    @field_validator("query")
    @classmethod
    def _table_or_query(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "table" in info.data and (info.data["table"] is None) == (value is None):
            raise ValueError("give exactly one of `table` or `query`")
        return value

    @property
    def key_columns(self) -> list[str]:
        if self.key is None:
            return []
        return [self.key] if isinstance(self.key, str) else list(self.key)


class CsvSource(_Model):
    """CSV exports (``.csv`` / ``.csv.gz``) matched by a glob; one day per file."""

    kind: Literal["csv"]
    path: str = Field(
        description="glob of the files; ${VAR} expanded; relative to the cwd; or the same "
        "glob in an object store: `s3://bucket/prefix/*.csv` (`gs://`, `az://`)"
    )
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
        expanded = expand_env(value)
        if "://" not in expanded:
            return expanded
        # a URL: an object store's (kept), file:// (its path); any other scheme is a mistake
        scheme, _, rest = expanded.partition("://")
        if scheme.lower() == "file":
            return rest
        if not is_object_url(expanded):
            raise ValueError(
                f"{scheme}://...: not a folder or object-store URL (use a path, or s3://, "
                "gs://, az://)"
            )
        return expanded

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
    timezone: str | None = Field(
        None,
        description="datetime: zone of naive source values and of the output (default UTC)",
    )
    # last: its rule types it as the fields above say
    default: str | None = Field(None, description="text used when the source value is empty")

    @property
    def transforms(self) -> tuple[Transform, ...]:
        return _transforms(self.transform)

    @field_validator("format")
    @classmethod
    def _format_fits_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if value is None or kind is None:
            return value
        if kind == "decimal" and not DECIMAL_FORMAT_RE.match(value):
            raise ValueError(f'decimal format {value!r} must look like "0" or "0.00"')
        if kind in ("string", "int", "bool"):
            raise ValueError(f"`format` does not apply to type {kind}")
        if kind in ("date", "datetime"):
            try:
                dt.datetime(2001, 2, 3, 4, 5, 6).strftime(value)
            except ValueError as exc:
                raise ValueError(f"{value!r}: {exc}") from exc
        return value

    @field_validator("input_format")
    @classmethod
    def _input_format_fits_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("type", "date") not in ("date", "datetime"):
            raise ValueError("`input_format` applies to types date and datetime only")
        return value

    @field_validator("transform")
    @classmethod
    def _transform_fits_type(cls, value: Any, info: ValidationInfo) -> Any:
        if "sha256" in _transforms(value) and info.data.get("type", "string") != "string":
            raise ValueError("the sha256 transform gives text: use it with type string")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if info.data.get("type", "date") not in ("datetime", "date"):
            raise ValueError("`timezone` applies to types datetime and date only")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("default")
    @classmethod
    def _default_types(cls, value: str | None, info: ValidationInfo) -> str | None:
        typing = ("type", "format", "input_format", "timezone")
        if value is None or not all(name in info.data for name in typing):
            return value  # a field it depends on failed: that is the error to fix first
        spec = cls.model_construct(**{name: info.data[name] for name in typing})
        type_value(spec, value)  # its ValueError names the value and why it does not type
        return value

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


def _identity_type_problem(destination: str | None, id_type: str) -> str | None:
    """What is wrong with an identity ``type`` for the destination, if anything."""
    if destination == "target" and id_type not in ("pcId", "thirdPartyId"):
        return f"{id_type!r} must be pcId or thirdPartyId for target"
    if destination == "copernica" and not COPERNICA_FIELD_RE.match(id_type):
        return f"{id_type!r} must be the Copernica match field's name"
    return None


def _identity_headers(destination: str | None, id_type: str | None) -> dict[str, str]:
    """Lowered header -> the identity header a param may not be named like."""
    if destination == "target":
        return {h.lower(): h for h in TARGET_ID_HEADERS}
    if destination == "copernica" and id_type:
        return {id_type.lower(): id_type}
    return {}


def _param_name_problem(name: Any, lowered: dict[str, str], headers: dict[str, str]) -> str | None:
    """What is wrong with a param name, given the names before it (lowered -> name) and the
    identity headers it may not take."""
    if not isinstance(name, str):
        return f"param name {name!r} must be text"
    if name.startswith("profile."):
        return (
            f"{name!r}: write the param without the `profile.` prefix "
            f"({name.removeprefix('profile.')!r})"
        )
    if name.startswith("_"):
        return f"{name!r}: param names cannot start with `_`"
    if not PARAM_RE.match(name):
        return (
            f"{name!r} is not a valid param name: a letter, then letters, digits or _ (at most 128)"
        )
    if name.lower() in lowered:
        return f"{name!r} and {lowered[name.lower()]!r} differ only in case"
    if name.lower() in headers:
        return f"param {name!r} clashes with the identity header {headers[name.lower()]!r}"
    return None


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

    @field_validator("identity")
    @classmethod
    def _identity_fits_destination(cls, value: Identity, info: ValidationInfo) -> Identity:
        problem = _identity_type_problem(info.data.get("destination"), value.type)
        if problem:
            raise _rule_error("Identity", [_problem(("type",), problem, value.type)])
        return value

    @field_validator("params", mode="wrap")
    @classmethod
    def _param_names(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        """Every param name checked (each problem at its name), and every spec."""
        problems: list[InitErrorDetails] = []
        if isinstance(value, dict):
            identity = info.data.get("identity")
            headers = _identity_headers(
                info.data.get("destination"), identity.type if identity else None
            )
            lowered: dict[str, str] = {}
            for name in value:
                problem = _param_name_problem(name, lowered, headers)
                if problem:
                    problems.append(_problem((name,), problem, name))
                if isinstance(name, str):
                    lowered.setdefault(name.lower(), name)
        try:
            params = handler(value)
        except ValidationError as exc:
            raise _with_problems(exc, problems) from None
        if problems:
            raise _rule_error("params", problems)
        return params

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
