"""Source mappings: the YAML files in ``CONNECTOR_MAPPINGS_DIR``, as pydantic models.

A mapping names a source (an SQL table or query, or a folder of CSV exports), a
destination, the identity column and the profile params. All validation of a mapping
happens here, so that a mistake is reported once, with the file and the field, before
anything is read or delivered.

Decisions (documented in the README's "adding a mapping"):

- Param names are ``[A-Za-z][A-Za-z0-9_]*`` (at most 128 characters): conservative, so
  a name is the same in a Target batch header, a Copernica field and a Dagster
  metadata key, and never needs URL-encoding. ``profile.`` prefixes, a leading ``_``
  and the identity header are refused.
- ``${VAR}`` in ``source.url`` / ``source.path`` is expanded from the environment when
  the file is loaded; a missing variable is an error naming it. ``$$`` is a literal ``$``.
- Relative paths (a CSV glob, an ``sqlite:///relative.db`` URL) resolve against the
  current directory, i.e. the project root where ``connector`` and Dagster run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,120}$")
PARAM_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
COPERNICA_FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
DECIMAL_FORMAT_RE = re.compile(r"^0+(\.0+)?$")
ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Identity headers of a Target batch file (and the mbox alias of thirdPartyId).
TARGET_ID_HEADERS = ("pcId", "thirdPartyId", "mbox3rdPartyId")
DEFAULT_DATE_PATTERN = r"(?P<date>\d{4}-?\d{2}-?\d{2})"

ParamType = Literal["string", "int", "decimal", "bool", "date", "datetime"]
Transform = Literal["lower", "upper", "strip", "sha256"]


class MappingError(ValueError):
    """A mapping that cannot be used; ``str()`` reads ``file: field.path: message``."""

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source = source
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"


def expand_env(value: str, environ: dict[str, str] | None = None) -> str:
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
        import codecs

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


def compile_date_pattern(pattern: str) -> re.Pattern[str]:
    """The regex locating a day in a file name (a strftime-like pattern is translated)."""
    if "%" in pattern and "(?P<" not in pattern:
        parts = {"%Y": r"(?P<Y>\d{4})", "%m": r"(?P<m>\d{2})", "%d": r"(?P<d>\d{2})"}
        out, i = [], 0
        while i < len(pattern):
            token = pattern[i : i + 2]
            if token in parts:
                out.append(parts[token])
                i += 2
            elif token == "%%":  # noqa: S105 - a strftime escape, not a secret
                out.append("%")
                i += 2
            elif pattern[i] == "%":
                raise ValueError(f"date_pattern: only %Y, %m and %d are supported, not {token!r}")
            else:
                out.append(re.escape(pattern[i]))
                i += 1
        pattern = "".join(out)
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"date_pattern is not a valid regex: {exc}") from exc
    groups = set(regex.groupindex)
    if "date" not in groups and not {"Y", "m", "d"} <= groups:
        raise ValueError("date_pattern needs a named group `date` (or groups `Y`, `m`, `d`)")
    return regex


def day_from_name(regex: re.Pattern[str], name: str) -> dt.date | None:
    """The day a file name carries, or None when the pattern does not find a valid day."""
    match = regex.search(name)
    if match is None:
        return None
    groups = match.groupdict()
    if groups.get("date"):
        digits = re.sub(r"\D", "", groups["date"])
        if len(digits) != 8:
            return None
        year, month, day = digits[:4], digits[4:6], digits[6:]
    else:
        year, month, day = groups["Y"], groups["m"], groups["d"]
    try:
        return dt.date(int(year), int(month), int(day))
    except (TypeError, ValueError):
        return None


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
            from connector.transform import type_value

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


# -- loading ------------------------------------------------------------------------------


def _field_path(loc: Iterable[Any]) -> str:
    parts: list[str] = []
    for item in loc:
        if item in ("sql", "csv") and parts == ["source"]:
            continue  # the discriminator tag pydantic puts in the path
        if item in ("str", "ParamSpec", "function-after[_consistent(), ParamSpec]"):
            continue
        if isinstance(item, str) and item.startswith(("function-", "literal[", "list[")):
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(str(item))
    return ".".join(parts).replace(".[", "[")


def _message(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "literal_error":
        return f"{value!r} is not one of {ctx.get('expected', '').replace(chr(39), '')}"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    if kind == "union_tag_invalid":
        return f"kind {ctx.get('tag')!r} is not one of sql, csv"
    if kind == "union_tag_not_found":
        return "`kind` is required (sql or csv)"
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def _errors_of(exc: ValidationError, source: str) -> list[MappingError]:
    seen: dict[str, MappingError] = {}
    for error in exc.errors():
        loc = list(error["loc"])
        # params.<name> given as a string AND as a spec: pydantic reports both union arms;
        # the spec arm is the one people mean when they wrote a mapping.
        if len(loc) >= 3 and loc[0] == "params" and loc[2] == "str":
            continue
        field = _field_path(loc)
        key = f"{field}\0{error['type']}"
        seen.setdefault(key, MappingError(source, field, _message(error)))
    return list(seen.values())


class _LineLoader(yaml.SafeLoader):
    """Refuses duplicate keys (YAML allows them silently; a mapping must not)."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    keys: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        keys.add(key)
    return loader.construct_mapping(node, deep=deep)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def parse_mapping(text: str, source: str = "<string>") -> SourceMapping:
    """A mapping from YAML text; every problem raised as one MappingError (the first)."""
    errors = _parse(text, source)
    if isinstance(errors, SourceMapping):
        return errors
    raise errors[0]


def _parse(text: str, source: str) -> SourceMapping | list[MappingError]:
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = exc.problem or exc.context or "invalid YAML"
        return [MappingError(where, "", f"YAML syntax: {problem}")]
    except yaml.YAMLError as exc:
        return [MappingError(source, "", f"YAML syntax: {exc}")]
    if not isinstance(data, dict):
        return [MappingError(source, "", "a mapping file must be a YAML mapping (key: value)")]
    try:
        return SourceMapping.model_validate(data)
    except ValidationError as exc:
        return _errors_of(exc, source)


def load_mapping(path: str | Path) -> SourceMapping:
    """The mapping in one YAML file; MappingError (file: field: message) when it is not valid."""
    path = Path(path)
    source = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(source, "", f"cannot read: {exc}") from exc
    return parse_mapping(text, source)


def load_mappings(directory: str | Path) -> tuple[list[SourceMapping], list[MappingError]]:
    """Every ``*.yaml`` / ``*.yml`` mapping of a folder and every error (names unique)."""
    directory = Path(directory)
    if not directory.is_dir():
        return [], [MappingError(_display(directory), "", "not a folder of mappings")]
    mappings: list[SourceMapping] = []
    errors: list[MappingError] = []
    first_file: dict[str, str] = {}
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in files:
        source = _display(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(MappingError(source, "", f"cannot read: {exc}"))
            continue
        result = _parse(text, source)
        if isinstance(result, list):
            errors.extend(result)
            continue
        if result.name in first_file:
            errors.append(
                MappingError(
                    source, "name", f"{result.name!r} is already used by {first_file[result.name]}"
                )
            )
            continue
        first_file[result.name] = source
        mappings.append(result)
    errors += account_conflicts([(first_file[m.name], m) for m in mappings])
    return mappings, errors


def account_conflicts(mappings: Sequence[tuple[str, Any]]) -> list[MappingError]:
    """What stops ``(file, mapping)`` pairs from describing one profile per destination account.

    The mappings of one destination feed one account (its client code or database, from the
    settings), whose profile is the union of their params: one param has one owner there,
    and profiles are identified one way.
    """
    errors: list[MappingError] = []
    owner: dict[tuple[str, str], tuple[str, str]] = {}
    id_type: dict[str, tuple[str, str, str]] = {}
    for source, mapping in mappings:
        destination = str(mapping.destination)
        kind = str(mapping.identity.type)
        first = id_type.setdefault(destination, (kind, source, mapping.name))
        if first[0] != kind:
            errors.append(
                MappingError(
                    source,
                    "identity.type",
                    f"{kind!r}, but {first[1]} ({first[2]}) feeds the same {destination} account "
                    f"with {first[0]!r}: the mappings of one account identify profiles one way",
                )
            )
        for name in mapping.param_names:
            seen = owner.setdefault((destination, name), (source, mapping.name))
            if seen[1] != mapping.name:
                errors.append(
                    MappingError(
                        source,
                        f"params.{name}",
                        f"also fed to the same {destination} account by {seen[0]} ({seen[1]}): "
                        "one param has one owner at an account (rename one of them)",
                    )
                )
    return errors


def find_mapping(directory: str | Path, name_or_path: str) -> SourceMapping:
    """A mapping by name (searched in ``directory``) or by the path of its file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return load_mapping(candidate)
    mappings, errors = load_mappings(directory)
    for mapping in mappings:
        if mapping.name == name_or_path:
            return mapping
    for error in errors:
        if Path(error.source.split(":")[0]).stem == name_or_path:
            raise error
    known = ", ".join(sorted(m.name for m in mappings)) or "none"
    raise MappingError(str(directory), "", f"no mapping named {name_or_path!r} (have: {known})")


def mapping_json_schema() -> dict[str, Any]:
    """JSON Schema of a mapping file (for editors: ``# yaml-language-server: $schema=...``)."""
    schema = SourceMapping.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Profile sync connector source mapping"
    return schema


def mapping_json_schema_text() -> str:
    return json.dumps(mapping_json_schema(), indent=2, sort_keys=False)


def check_decimal_text(value: str) -> Decimal:
    """Strict decimal notation (``-12.50``); no exponent, no thousands separators."""
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", value):
        raise ValueError(f"{value!r} is not a decimal number")
    try:
        return Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the regex guards it
        raise ValueError(f"{value!r} is not a decimal number") from exc
