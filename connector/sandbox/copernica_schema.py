"""A Copernica database's structure: typed fields with defaults, collections, value conversion.

A schema is declared as JSON (``--copernica-schema FILE``, ``POST /_sandbox/copernica/schema``
or ``SandboxOptions.copernica_schema``)::

    {"Shop": {"fields": {"Email": {"type": "email"},
                         "FirstName": "text",
                         "Points": {"type": "integer", "value": "-1"},
                         "Birthdate": {"type": "empty_date"}},
              "collections": {"Orders": {"fields": {"Total": {"type": "float"}}}}}}

A field given as a string is its type. Field names keep their casing; the API matches them
case-insensitively (``Schema.lookup``). Values are stored as the strings the live API returns:
``convert`` turns what a request body holds into that string for the field's type.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

TEXT_TYPES = frozenset({"text", "email", "select", "big", "phone", "phone_fax", "phone_gsm"})
NUMBER_TYPES = frozenset({"integer", "float", "foreign_key"})
DATE_TYPES = frozenset({"date", "empty_date", "datetime", "empty_datetime"})
FIELD_TYPES = TEXT_TYPES | NUMBER_TYPES | DATE_TYPES

_LEADING_INT = re.compile(r"^\s*([+-]?\d+)")
_LEADING_FLOAT = re.compile(r"^\s*([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)")
_DATETIME = re.compile(
    r"^(\d{4})-(\d{1,2})(?:-(\d{1,2}))?(?:[ tT](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d+)?)?)?$"
)


class SchemaError(ValueError):
    """A schema declaration that cannot be read; the message names the offending part."""


@dataclass(frozen=True)
class FieldSpec:
    """One field: its name as declared, its type and its default (``value`` in the API)."""

    id: int
    name: str
    type: str = "text"
    value: str = ""

    def default(self) -> str:
        """What a profile holds for this field until it is given a value."""
        if self.type in NUMBER_TYPES:
            return convert(self.value or "0", self)
        if self.type == "date":
            return "0000-00-00"
        if self.type == "datetime":
            return "0000-00-00 00:00:00"
        if self.type in DATE_TYPES:
            return ""
        return self.value

    def as_json(self) -> dict[str, object]:
        """The field as ``GET database/{id}/fields`` lists it."""
        return {
            "ID": str(self.id),
            "name": self.name,
            "type": self.type,
            "value": self.value,
            "displayed": False,
            "ordered": False,
            "length": 255 if self.type in TEXT_TYPES else 0,
            "textlines": 0,
            "hidden": False,
            "index": False,
        }

    def as_declared(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}


@dataclass
class Schema:
    """The fields (in declared order) and collections of one database.

    ``open``: fields are added on first use (as text), for a database declared by name only.
    """

    fields: list[FieldSpec] = field(default_factory=list)
    collections: dict[str, list[FieldSpec]] = field(default_factory=dict)
    open: bool = False

    def lookup(self, name: str) -> FieldSpec | None:
        """The field called ``name``, compared case-insensitively, as the live API does."""
        wanted = name.lower()
        for spec in self.fields:
            if spec.name.lower() == wanted:
                return spec
        return None

    def add_field(self, name: str, type_: str = "text", value: str = "") -> FieldSpec:
        spec = FieldSpec(next_field_id(self), name, type_, value)
        self.fields.append(spec)
        return spec

    def as_declared(self) -> dict[str, object]:
        return {
            "fields": {f.name: f.as_declared() for f in self.fields},
            "collections": {
                name: {"fields": {f.name: f.as_declared() for f in specs}}
                for name, specs in self.collections.items()
            },
        }


def next_field_id(schema: Schema) -> int:
    ids = [f.id for f in schema.fields]
    ids += [f.id for specs in schema.collections.values() for f in specs]
    return max(ids, default=0) + 1


def _fields(where: str, raw: object, first_id: int) -> list[FieldSpec]:
    if raw is None:
        return []
    if isinstance(raw, list):  # names only: text fields
        raw = {str(name): "text" for name in raw}
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{where}: fields must be an object of name -> type or spec")
    specs: list[FieldSpec] = []
    seen: set[str] = set()
    for offset, (name, spec) in enumerate(raw.items()):
        decl = {"type": spec} if isinstance(spec, str) else spec
        if not isinstance(decl, Mapping):
            raise SchemaError(f"{where}.{name}: expected a type or {{'type': ..., 'value': ...}}")
        type_ = str(decl.get("type", "text"))
        if type_ not in FIELD_TYPES:
            raise SchemaError(
                f"{where}.{name}: unknown type {type_!r} (have: {', '.join(sorted(FIELD_TYPES))})"
            )
        if not name or name.lower() in seen:
            raise SchemaError(f"{where}: field {name!r} is empty or declared twice (any casing)")
        seen.add(name.lower())
        value = decl.get("value", "")
        specs.append(FieldSpec(first_id + offset, name, type_, "" if value is None else str(value)))
    return specs


def parse_database(name: str, raw: object) -> Schema:
    """One database's declaration: ``{"fields": ..., "collections": ...}``, or a list of names,
    or None (an open database: fields made on first use)."""
    if raw is None:
        return Schema(open=True)
    if isinstance(raw, list):
        return Schema(_fields(name, raw, 1))
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{name}: expected {{'fields': ..., 'collections': ...}}")
    schema = Schema(_fields(f"{name}.fields", raw.get("fields"), 1))
    collections = raw.get("collections") or {}
    if not isinstance(collections, Mapping):
        raise SchemaError(f"{name}.collections: expected an object of name -> {{'fields': ...}}")
    for cname, craw in collections.items():
        cfields = craw.get("fields") if isinstance(craw, Mapping) else craw
        schema.collections[str(cname)] = _fields(
            f"{name}.collections.{cname}", cfields, next_field_id(schema)
        )
    return schema


def parse_schema(raw: object) -> dict[str, Schema]:
    """Every database of a declaration ``{name: database}``."""
    if not isinstance(raw, Mapping):
        raise SchemaError("a Copernica schema is an object of database name -> declaration")
    return {str(name): parse_database(str(name), decl) for name, decl in raw.items()}


# -- values ------------------------------------------------------------------------------------


def _php_number(text: str, integer: bool) -> float:
    match = (_LEADING_INT if integer else _LEADING_FLOAT).match(text)
    return float(match.group(1)) if match else 0.0


def _number_text(number: float) -> str:
    if not math.isfinite(number):
        return "0"
    if number == int(number):
        return str(int(number))
    return repr(number)


def _date(text: str, with_time: bool) -> str | None:
    match = _DATETIME.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) if g else None for g in match.groups())
    try:
        moment = dt.datetime(year or 0, month or 1, day or 1, hour or 0, minute or 0, second or 0)
    except ValueError:
        return None
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_time else "%Y-%m-%d")


def convert(value: object, spec: FieldSpec) -> str:
    """What the live API stores for ``value`` (a JSON value or form string) in field ``spec``.

    Text: booleans as "1"/"", numbers as written, objects and lists as "". Integer and float:
    the leading number of a string (else 0), booleans as 1/0, a non-empty list or object as 1.
    Dates: ``Y-m-d[ H:i[:s]]`` (a ``T`` may stand for the space); anything else is empty
    (``date`` and ``datetime``: the zero date).
    """
    if spec.type in NUMBER_TYPES:
        integer = spec.type != "float"
        if isinstance(value, int | float):  # bool included: 1 / 0
            number = float(value)
        elif isinstance(value, str):
            number = _php_number(value, integer)
        elif isinstance(value, list | dict):
            number = 1.0 if value else 0.0
        else:
            number = 0.0
        return _number_text(float(math.trunc(number)) if integer else number)
    if spec.type in DATE_TYPES:
        with_time = spec.type.endswith("datetime")
        text = value if isinstance(value, str) else ""
        found = _date(text, with_time) if text else None
        if found is not None:
            return found
        if spec.type == "date":
            return "0000-00-00"
        if spec.type == "datetime":
            return "0000-00-00 00:00:00"
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, int | float):
        return _number_text(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    return ""
