"""Reading mapping files: YAML text -> SourceMapping, or every problem of the file with its line.

A file is checked whole: its YAML syntax (which stops the reading: the first error is the
only one), then every key given twice, unknown, missing, of the wrong type or with a bad
value, and every rule between fields (``connector.mapping.model``), each one
``MappingError`` reading ``file:line: field.path: message; hint``. The line is the line of
the offending key (``connector.mapping.yaml_lines``); an unknown key gets a hint
(``connector.mapping.hints``). A folder is checked file by file, then across its files:
names used twice and the account rules (``connector.mapping.accounts``).
Relative paths are shown relative to the current directory, the project root.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from connector.mapping.accounts import account_conflicts
from connector.mapping.errors import MappingError, MappingsInvalid
from connector.mapping.hints import closest_value_hint, quoted_values, unknown_key_hint
from connector.mapping.model import CsvSource, Identity, ParamSpec, SourceMapping, SqlSource
from connector.mapping.yaml_lines import LinedYaml, read_yaml

# what pydantic puts in an error's path after a union-typed field to name the arm it tried
_ARM_PREFIXES = ("literal[", "list[", "function-")
_MODEL_ARMS = frozenset(m.__name__ for m in (ParamSpec, Identity, SqlSource, CsvSource))
_SOURCE_KINDS = ("sql", "csv")


@dataclass(frozen=True)
class MappingFile:
    """One mapping file as loaded: its mapping, or every problem of it (sorted by line)."""

    path: str
    name: str | None  # the `name` the file gives (valid or not); None when it gives no text
    mapping: SourceMapping | None
    errors: tuple[MappingError, ...]
    document: LinedYaml | None = None  # None when the file is not readable YAML

    @property
    def ok(self) -> bool:
        return not self.errors

    def line_of(self, dotted_field: str) -> int | None:
        """The line of a field of a valid mapping (``params.email``), for errors found later."""
        if self.document is None or not dotted_field:
            return None
        return self.document.line_of(dotted_field.split("."))


@dataclass(frozen=True)
class MappingsCheck:
    """Every mapping file of a folder and what is wrong with them: per file, and across files
    (a name used twice, the account rules) or with the folder itself."""

    directory: str
    files: tuple[MappingFile, ...]
    across_files: tuple[MappingError, ...] = field(default=())

    @property
    def mappings(self) -> list[SourceMapping]:
        """The valid mappings, the first file of a name only."""
        kept: dict[str, SourceMapping] = {}
        for file in self.files:
            if file.mapping is not None:
                kept.setdefault(file.mapping.name, file.mapping)
        return list(kept.values())

    @property
    def errors(self) -> list[MappingError]:
        """Every error: each file's, then those across files."""
        return [e for f in self.files for e in f.errors] + list(self.across_files)


def check_text(text: str, source: str = "<string>") -> MappingFile:
    """The mapping in YAML ``text`` (shown as ``source`` in errors) and all its problems."""
    try:
        document = read_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line = mark.line + 1 if mark else None
        return MappingFile(
            source, None, None, (MappingError(source, "", f"YAML syntax: {problem}", line=line),)
        )
    except yaml.YAMLError as exc:
        return MappingFile(source, None, None, (MappingError(source, "", f"YAML syntax: {exc}"),))
    data = document.data
    if not isinstance(data, dict):
        error = MappingError(source, "", "a mapping file must be a YAML mapping (key: value)")
        return MappingFile(source, None, None, (error,), document)
    name = data.get("name") if isinstance(data.get("name"), str) else None
    errors = [
        MappingError(
            source,
            _dotted(d.path, data),
            f"duplicate key {d.path[-1]!r} (first at line {d.first_line}; the last one counts)",
            line=d.line,
        )
        for d in document.duplicates
    ]
    mapping: SourceMapping | None = None
    try:
        mapping = SourceMapping.model_validate(data)
    except ValidationError as exc:
        errors += _errors_of(exc, source, document)
    if errors:
        errors.sort(key=lambda e: e.line or 0)  # stable: pydantic's order within a line
        return MappingFile(source, name, None, tuple(errors), document)
    return MappingFile(source, name, mapping, (), document)


def check_file(path: str | Path) -> MappingFile:
    """The mapping in one YAML file and all its problems."""
    path = Path(path)
    source = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return MappingFile(source, None, None, (MappingError(source, "", f"cannot read: {exc}"),))
    return check_text(text, source)


def check_mappings(directory: str | Path) -> MappingsCheck:
    """Every ``*.yaml`` / ``*.yml`` mapping file of a folder, each checked whole, then the
    rules across them: names are unique, and the mappings of an account fit together."""
    directory = Path(directory)
    shown = _display(directory)
    if not directory.is_dir():
        return MappingsCheck(shown, (), (MappingError(shown, "", "not a folder of mappings"),))
    paths = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    files = tuple(check_file(path) for path in paths)
    across: list[MappingError] = []
    first_file: dict[str, MappingFile] = {}
    for file in files:
        if file.mapping is None:
            continue
        first = first_file.setdefault(file.mapping.name, file)
        if first is not file:
            across.append(
                MappingError(
                    file.path,
                    "name",
                    f"{file.mapping.name!r} is already used by {first.path}",
                    line=file.line_of("name"),
                )
            )
    by_path = {file.path: file for file in first_file.values()}
    for error in account_conflicts([(f.path, f.mapping) for f in first_file.values() if f.mapping]):
        across.append(error.at_line(by_path[error.source].line_of(error.field)))
    return MappingsCheck(shown, files, tuple(across))


def parse_mapping(text: str, source: str = "<string>") -> SourceMapping:
    """A mapping from YAML text; its first problem raised as a MappingError
    (``check_text`` gives them all)."""
    return _mapping_or_first_error(check_text(text, source))


def load_mapping(path: str | Path) -> SourceMapping:
    """The mapping in one YAML file; its first problem raised as a MappingError
    (``file:line: field: message``; ``check_file`` gives them all)."""
    return _mapping_or_first_error(check_file(path))


def load_mappings(directory: str | Path) -> tuple[list[SourceMapping], list[MappingError]]:
    """Every valid mapping of a folder (names unique) and every error of its files."""
    check = check_mappings(directory)
    return check.mappings, check.errors


def find_mapping(directory: str | Path, name_or_path: str) -> SourceMapping:
    """A mapping by name (searched in ``directory``) or by the path of its file.

    MappingsInvalid with every problem of its file when that file is not valid; MappingError
    when no file gives that name."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        file = check_file(candidate)
        if file.mapping is None:
            raise MappingsInvalid(file.errors)
        return file.mapping
    check = check_mappings(directory)
    for mapping in check.mappings:
        if mapping.name == name_or_path:
            return mapping
    for file in check.files:
        if name_or_path in (file.name, Path(file.path).stem) and file.errors:
            raise MappingsInvalid(file.errors)
    known = ", ".join(sorted(m.name for m in check.mappings)) or "none"
    raise MappingError(check.directory, "", f"no mapping named {name_or_path!r} (have: {known})")


def _mapping_or_first_error(file: MappingFile) -> SourceMapping:
    if file.mapping is None:
        raise file.errors[0]
    return file.mapping


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _dotted(path: Iterable[Hashable], data: Any) -> str:
    """``params.amount.format``, ``identity.transform[1]``: the path as people read it."""
    text = ""
    for part in path:
        if isinstance(data, list):
            text += f"[{part}]"
            data = data[part] if isinstance(part, int) and part < len(data) else None
            continue
        text += f".{part}" if text else str(part)
        data = data.get(part) if isinstance(data, dict) else None
    return text


def _errors_of(exc: ValidationError, source: str, document: LinedYaml) -> list[MappingError]:
    """One MappingError per problem pydantic found, each with its line and any hint.

    Where a field takes one of several shapes (a param: a column name or a spec; a
    transform: one or a list), pydantic reports every shape that failed; only the errors
    of the shape the file gave are kept (the first one when it gave none of them)."""
    # a param name that is not text: the model's own check of param names reports it
    errors = [e for e in exc.errors() if "[key]" not in e["loc"]]
    placed = [(_place(e["loc"], document.data), e) for e in errors]
    given = {path[:depth] for (path, arms), _ in placed for depth, fits in arms if fits}
    reported: set[tuple[Hashable, ...]] = set()
    seen: dict[tuple[str, str], MappingError] = {}
    for (path, arms), error in placed:
        other_shape = next((path[:depth] for depth, fits in arms if not fits), None)
        if other_shape is not None:
            if other_shape in given or other_shape in reported:
                continue
            reported.add(other_shape)
        dotted = _dotted(path, document.data)
        line_path = (*path, "kind") if error["type"].startswith("union_tag") else path
        seen.setdefault(
            (dotted, error["type"]),
            MappingError(
                source,
                dotted,
                _message(error),
                line=document.line_of(line_path),
                hint=_hint(error, path, document.data),
            ),
        )
    return list(seen.values())


def _place(loc: Sequence[Any], data: Any) -> tuple[tuple[Hashable, ...], list[tuple[int, bool]]]:
    """An error's path in the file (pydantic's names of union arms taken out), and for each
    union arm on the way: the depth of its field in the path, and whether the file's value
    there has that arm's shape."""
    path: list[Hashable] = []
    arms: list[tuple[int, bool]] = []
    value = data
    for item in loc:
        if _is_arm(item, path, value):
            arms.append((len(path), _arm_fits(str(item), value)))
            continue
        path.append(item)
        if isinstance(value, dict):
            value = value.get(item)
        elif isinstance(value, list) and isinstance(item, int) and item < len(value):
            value = value[item]
        else:
            value = None
    return tuple(path), arms


def _is_arm(item: Any, path: list[Hashable], value: Any) -> bool:
    """Whether a step of pydantic's error path names a union arm, not a key of the file."""
    if not isinstance(item, str) or (isinstance(value, dict) and item in value):
        return False
    if path == ["source"] and item in _SOURCE_KINDS:
        return True
    return item == "str" or item in _MODEL_ARMS or item.startswith(_ARM_PREFIXES)


def _arm_fits(arm: str, value: Any) -> bool:
    if arm.startswith("list["):
        return isinstance(value, list)
    if arm == "str" or arm.startswith("literal["):
        return not isinstance(value, dict | list)
    if arm in _MODEL_ARMS:
        return isinstance(value, dict)
    return True


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
    if kind == "invalid_key":
        return "keys must be text"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"should be a mapping (key: value), not {_kind_of(value)}"
    if kind == "string_type":
        return f"should be text, not {_kind_of(value)}"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "should not be empty"
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Input ")


def _kind_of(value: Any) -> str:
    """What a YAML value is, in the file's terms."""
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _hint(error: ErrorDetails, path: tuple[Hashable, ...], data: Any) -> str | None:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return unknown_key_hint(data, path)
    if kind == "literal_error":
        return closest_value_hint(error.get("input"), quoted_values(str(ctx.get("expected"))))
    if kind == "union_tag_invalid":
        return closest_value_hint(ctx.get("tag"), _SOURCE_KINDS)
    if kind == "string_type" and isinstance(error.get("input"), int | float | bool):
        return "put it in quotes to keep it as text"
    return None
