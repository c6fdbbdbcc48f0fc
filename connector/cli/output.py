"""How the commands print: a console per stream, tables that never cut a cell, one JSON
document.

On a terminal a console has the terminal's width. Off a terminal (a pipe, a file, cron's
mail) nothing wraps: lines and tables are as wide as their content, unless ``COLUMNS`` asks
for a width. A table wider than its console is printed as one block of ``column  value``
lines per row instead, values folded, never cut with an ellipsis.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import click
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

# off a terminal: wide enough that no line of ours wraps
UNWRAPPED = 100_000


def make_console(*, stderr: bool = False, width: int | None = None) -> Console:
    """A console on stdout (or stderr) for the CLI's tables and lines (see the module doc)."""
    stream: TextIO = sys.stderr if stderr else sys.stdout
    if width is None and not stream.isatty():
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() and int(columns) > 0 else UNWRAPPED
    return Console(
        stderr=stderr, width=width, highlight=False, soft_wrap=width == UNWRAPPED, emoji=False
    )


def cell(value: object) -> Text:
    """Cell text taken literally (no rich markup from data)."""
    return Text("" if value is None else str(value))


@dataclass(frozen=True)
class Column:
    """A column of ``print_table``: its header and whether its values are numbers."""

    header: str
    numeric: bool = False


def print_table(
    console: Console,
    title: str,
    columns: Sequence[Column | str],
    rows: Sequence[Sequence[object]],
    *,
    show_header: bool = True,
) -> None:
    """``rows`` as a table when it fits ``console``'s width, else as one block per row."""
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    table = Table(title=cell(title), show_header=show_header)
    for column in cols:
        table.add_column(
            column.header, justify="right" if column.numeric else "left", overflow="fold"
        )
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    # measured unconstrained: a measure within the console's width is clamped to it
    natural = console.measure(table, options=console.options.update_width(UNWRAPPED)).maximum
    if natural <= console.width:
        console.print(table)
        return
    console.print(cell(title))
    for row in rows:
        block = Table.grid(padding=(0, 2))
        block.add_column(no_wrap=True)
        block.add_column(overflow="fold")
        for column, value in zip(cols, row, strict=True):
            if value not in (None, ""):
                block.add_row(cell(column.header), cell(value))
        console.print(Padding(block, (0, 0, 1, 2), expand=False))


def print_json(document: Mapping[str, Any]) -> None:
    """``document`` as the command's one JSON document on stdout."""
    click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))
