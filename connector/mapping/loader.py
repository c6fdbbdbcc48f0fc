"""Reading mapping files: YAML text -> SourceMapping, or MappingErrors naming file and field.

YAML syntax errors name the file and line (``pos.yaml:7: YAML syntax: ...``); duplicate
keys are refused (YAML allows them silently; a mapping must not). Validation errors name
the file and the field path (``pos.yaml: params.city.type: ...``), one per problem.
Relative paths are shown relative to the current directory, the project root.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from connector.mapping.accounts import account_conflicts
from connector.mapping.errors import MappingError
from connector.mapping.model import SourceMapping


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


def _message(error: ErrorDetails) -> str:
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
