"""The reference of every setting, generated from the settings model so that it cannot drift.

One row per field of ``connector.settings.Settings`` (nested models flattened): its environment
variable, its key in ``connector.toml``, its type with the model's bounds, its default, and the
field's ``description``. Secrets are marked as such and show no default. A field without a
description, or of a type this module cannot name, is an error: the reference is complete or
it is not generated.

The README holds the table between ``BEGIN`` and ``END``; ``tests/docs`` fails when the two
differ. To regenerate it::

    python -m connector.settings_reference --write README.md

Without ``--write`` the table is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from connector.settings import Settings, env_name

BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"
REGENERATE = "python -m connector.settings_reference --write README.md"
NO_DEFAULT_SHOWN = "—"  # a secret's default is never shown

_TYPE_NAMES: dict[object, str] = {
    str: "text",
    Path: "path",
    int: "integer",
    float: "number",
    bool: "`true` or `false`",
    dt.date: "date (YYYY-MM-DD)",
}
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


@dataclass(frozen=True)
class SettingRow:
    """One setting as the reference shows it."""

    env: str  # CONNECTOR_TARGET__BASE_URL
    toml_key: str  # target.base_url
    type: str
    default: str
    description: str
    secret: bool


def setting_rows(model: type[BaseModel] = Settings, loc: tuple[str, ...] = ()) -> list[SettingRow]:
    """Every leaf field of ``model`` in declaration order, nested models flattened."""
    rows: list[SettingRow] = []
    for name, info in model.model_fields.items():
        here = (*loc, name)
        nested = _nested_model(info.annotation)
        if nested is not None:
            rows.extend(setting_rows(nested, here))
            continue
        if not info.description:
            raise ValueError(
                f"{env_name(here)}: the settings field {'.'.join(here)} has no description "
                "(add Field(description=...) in connector/settings.py)"
            )
        base = _base_type(info, here)
        secret = base is SecretStr
        rows.append(
            SettingRow(
                env=env_name(here),
                toml_key=".".join(here),
                type=_type_text(base, info),
                default=NO_DEFAULT_SHOWN if secret else _default_text(info),
                description=" ".join(info.description.split()),
                secret=secret,
            )
        )
    return rows


def markdown_table(rows: Sequence[SettingRow] | None = None) -> str:
    """The reference as a Markdown table, with a line saying how it is regenerated."""
    rows = setting_rows() if rows is None else rows
    lines = [
        f"<!-- generated from connector/settings.py by `{REGENERATE}`; do not edit -->",
        "| environment variable | `connector.toml` key | type | default | description |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        cells = (f"`{row.env}`", f"`{row.toml_key}`", row.type, row.default, row.description)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def embedded_table(text: str) -> str:
    """The table between the markers of ``text`` (a README)."""
    start, end = _marker_span(text)
    return text[start:end].strip("\n")


def embed(text: str, table: str) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    start, end = _marker_span(text)
    return f"{text[:start]}\n{table}\n{text[end:]}"


def _marker_span(text: str) -> tuple[int, int]:
    begin = text.find(BEGIN)
    end = text.find(END)
    if begin < 0 or end < begin:
        raise ValueError(f"no {BEGIN} ... {END} markers (in this order) to hold the table")
    return begin + len(BEGIN), end


def _nested_model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _base_type(info: FieldInfo, loc: tuple[str, ...]) -> object:
    """The field's type without ``| None``; one type, or the reference cannot name it."""
    annotation = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"{env_name(loc)}: cannot describe the type {annotation}")
        annotation = members[0]
    if annotation is SecretStr or get_origin(annotation) is Literal or annotation in _TYPE_NAMES:
        return annotation
    raise TypeError(f"{env_name(loc)}: cannot describe the type {annotation}")


def _type_text(base: object, info: FieldInfo) -> str:
    if base is SecretStr:
        return "**secret**"
    if get_origin(base) is Literal:
        *others, last = (f"`{value}`" for value in get_args(base))
        return f"{', '.join(others)} or {last}" if others else last
    bounds = [
        f"{sign} {_number(limit)}"
        for meta in info.metadata
        for attr, sign in _BOUNDS
        if (limit := getattr(meta, attr, None)) is not None
    ]
    name = _TYPE_NAMES[base]
    return f"{name} ({', '.join(bounds)})" if bounds else name


def _default_text(info: FieldInfo) -> str:
    value = info.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, int | float):
        return f"`{_number(value)}`"
    if isinstance(value, dt.date):
        return f"`{value.isoformat()}`"
    return f"`{value}`"


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connector.settings_reference",
        description="Print the settings reference, or replace it between the markers of a file.",
    )
    parser.add_argument(
        "--write", type=Path, metavar="FILE", help="rewrite the table in FILE (README.md)"
    )
    args = parser.parse_args(argv)
    table = markdown_table()
    if args.write is None:
        print(table)
        return 0
    text = args.write.read_text(encoding="utf-8")
    updated = embed(text, table)
    if updated != text:
        args.write.write_text(updated, encoding="utf-8")
        print(f"{args.write}: settings table updated")
    else:
        print(f"{args.write}: settings table already current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
