"""`connector mappings validate|schema` and `connector preview MAPPING`."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from connector.cli.validate import validate_command
from connector.columns import IDENTITY, SEQ, SOURCE_REF
from connector.mapping import find_mapping, mapping_json_schema
from connector.partitions import day_window
from connector.settings import load_settings

CELL_LIMIT = 60


@click.group("mappings")
def mappings_group() -> None:
    """Validate source mappings and print their JSON Schema."""


mappings_group.add_command(validate_command)


@mappings_group.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of a mapping file."""
    click.echo(json.dumps(mapping_json_schema(), indent=2))


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value).replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= CELL_LIMIT else text[: CELL_LIMIT - 1] + "…"


def _rich_table(title: str, table: pa.Table, limit: int) -> Table:
    out = Table(title=title, show_lines=False)
    for name in table.column_names:
        out.add_column(name, overflow="fold")
    for row in table.slice(0, limit).to_pylist():
        out.add_row(*(_cell(row[name]) for name in table.column_names))
    return out


@click.command("preview")
@click.argument("mapping")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--partition",
    default=None,
    help="Day YYYY-MM-DD to read (default: yesterday in the settings timezone).",
)
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None)
def preview_command(
    mapping: str, limit: int, partition: str | None, directory: Path | None
) -> None:
    """Mapped rows and rejects of MAPPING, delivering nothing and writing nothing."""
    import datetime as dt

    # imported when the command runs: keeps `connector --help` and the other commands light
    from connector.sources import SourceError, iter_source_chunks
    from connector.transform import ColumnMissing, map_chunk

    settings = load_settings()
    # a mapping that is not valid is bad configuration, reported by the `connector` group
    found = find_mapping(directory or settings.mappings_dir, mapping)
    day = partition or (dt.datetime.now(settings.tz).date() - dt.timedelta(days=1)).isoformat()
    try:
        window = day_window(day, settings.tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--partition") from exc

    mapped_parts: list[pa.Table] = []
    reject_parts: list[pa.Table] = []
    shown = rejected = total = 0
    try:
        # registry=None: files are read whatever the ledger says, and nothing is recorded
        for chunk in iter_source_chunks(
            found, day, window, chunk_rows=max(limit, 1000), registry=None
        ):
            reject_parts.append(chunk.rejects)
            rejected += chunk.rejects.num_rows
            if chunk.table.num_rows:
                mapped, rejects = map_chunk(
                    found, chunk.table, max_profile_bytes=settings.target.max_profile_bytes
                )
                total += mapped.num_rows
                rejected += rejects.num_rows
                reject_parts.append(rejects)
                if shown < limit:
                    mapped_parts.append(mapped.slice(0, limit - shown))
                    shown += min(mapped.num_rows, limit - shown)
            if shown >= limit and rejected >= limit:
                break
    except (SourceError, ColumnMissing) as exc:
        raise click.ClickException(str(exc)) from exc

    console = Console()
    if mapped_parts:
        mapped_all = pa.concat_tables(mapped_parts).drop_columns([SEQ])
        console.print(_rich_table(f"{found.name} / {day}: mapped rows", mapped_all, limit))
    else:
        console.print(f"{found.name} / {day}: no rows")
    rejects_all = [t for t in reject_parts if t.num_rows]
    if rejects_all:
        console.print(
            _rich_table(f"{found.name} / {day}: rejects", pa.concat_tables(rejects_all), limit)
        )
    console.print(
        f"{total} rows mapped, {rejected} rejects (first {limit} of each shown; "
        f"identity column {IDENTITY!r}, refs in {SOURCE_REF!r}). Nothing was delivered."
    )
