"""`connector mappings validate`: every problem of every mapping file, in one pass.

Each mapping file is checked whole (``connector.mapping.check_mappings``), then, unless
``--offline``, each valid mapping's source is probed (``connector.sources.probe``), then the
rules across files. Text: ``ok  <name>: ...`` per good file on stdout, one line per problem
on stderr (``file:line: field: message; hint``). ``--json``: one document on stdout, its
shape in ``docs/mappings-validate.md`` (``"schema": "connector.mappings-validate/1"``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from connector.mapping import MappingError, MappingFile, MappingsCheck, check_mappings
from connector.settings import load_settings

EXIT_OK = 0
# DESIGN.md's CLI contract: `mappings validate` exits 1 with file:field errors (its finding);
# settings that keep the command from starting exit 3, as in every command
EXIT_INVALID = 1
JSON_SCHEMA = "connector.mappings-validate/1"


@dataclass(frozen=True)
class Validation:
    """A folder's check with the problems its sources' probes found (file path -> errors)."""

    check: MappingsCheck
    probed: dict[str, list[MappingError]]
    offline: bool

    def file_errors(self, file: MappingFile) -> list[MappingError]:
        """The file's own errors, then what stops its source from being read."""
        return [*file.errors, *self.probed.get(file.path, [])]

    def across_files(self) -> list[MappingError]:
        """Errors across files or of the folder; a folder without mappings is one."""
        errors = list(self.check.across_files)
        if not self.check.files and not errors:
            errors.append(
                MappingError(self.check.directory, "", "no mapping files (*.yaml, *.yml)")
            )
        return errors

    def file_ok(self, file: MappingFile) -> bool:
        """No error of the file itself, and none across files naming it first."""
        return not self.file_errors(file) and all(
            e.source != file.path for e in self.check.across_files
        )

    @property
    def errors(self) -> list[MappingError]:
        return [e for f in self.check.files for e in self.file_errors(f)] + self.across_files()

    @property
    def exit_code(self) -> int:
        return EXIT_INVALID if self.errors else EXIT_OK


def validate(folder: Path, *, offline: bool) -> Validation:
    """Check ``folder``'s mapping files and, unless ``offline``, probe their sources."""
    check = check_mappings(folder)
    return Validation(check, {} if offline else _probe(check), offline)


def _probe(check: MappingsCheck) -> dict[str, list[MappingError]]:
    """File path -> what stops its mapping's source from being read (each naming the file)."""
    from connector.sources import probe  # imported when the command runs: keeps start-up light

    settings = load_settings()
    usable = {id(m) for m in check.mappings}  # the first file of a name
    return {
        file.path: [MappingError(file.path, "", p) for p in probe(file.mapping, settings)]
        for file in check.files
        if file.mapping is not None and id(file.mapping) in usable
    }


def _error_json(error: MappingError) -> dict[str, Any]:
    return {
        "line": error.line,
        "field": error.field or None,
        "message": error.message,
        "hint": error.hint,
    }


def validation_json(validation: Validation) -> dict[str, Any]:
    """The ``--json`` document (``docs/mappings-validate.md``)."""
    check = validation.check
    return {
        "schema": JSON_SCHEMA,
        "directory": check.directory,
        "offline": validation.offline,
        "ok": validation.exit_code == EXIT_OK,
        "exit_code": validation.exit_code,
        "error_count": len(validation.errors),
        "files": [
            {
                "path": file.path,
                "mapping": file.name,
                "ok": validation.file_ok(file),
                "errors": [_error_json(e) for e in validation.file_errors(file)],
            }
            for file in check.files
        ],
        "cross_file_errors": [
            {"path": e.source, **_error_json(e)} for e in validation.across_files()
        ],
    }


@click.command("validate")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of mapping files (default: CONNECTOR_MAPPINGS_DIR, else mappings/).",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Check the mapping files only, not their sources (no database or export access).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document (docs/mappings-validate.md) instead of text.",
)
def validate_command(directory: Path | None, offline: bool, as_json: bool) -> None:
    """Check every mapping file and, unless --offline, that its source can be read (the table
    or query with the mapped columns, each CSV export's header), then the rules across files.

    Every problem of every file is listed, one per line: file:line: field: message (and a
    hint). Exit codes: 0 all valid; 1 any problem; 2 a usage error; 3 settings that do not
    validate (the command cannot start).
    """
    folder = directory or load_settings().mappings_dir
    validation = validate(folder, offline=offline)
    if as_json:
        click.echo(json.dumps(validation_json(validation), indent=2))
    else:
        _print_text(validation)
    raise SystemExit(validation.exit_code)


def _print_text(validation: Validation) -> None:
    console = Console(highlight=False)
    for file in validation.check.files:
        if validation.file_ok(file) and file.mapping is not None:
            mapping = file.mapping
            console.print(
                f"ok  {mapping.name}: {mapping.source.kind} -> {mapping.destination}, "
                f"{len(mapping.params)} params"
            )
    errors = validation.errors
    for error in errors:
        click.echo(str(error), err=True)
    if errors:
        click.echo(f"{len(errors)} error(s) in {validation.check.directory}", err=True)
