"""Tables never cut a cell: too wide for the console, they become one block per row; off a
terminal nothing wraps."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from connector.cli.output import UNWRAPPED, Column, make_console, print_table

LONG = "sample_exports/pos/pos_2026-11-20.csv:117 (a reason that goes on and on and on, to the end)"


def _render(width: int, rows: list[list[object]]) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, highlight=False)
    print_table(
        console,
        "Rows of C00015",
        ["batch", "mapping", "partition", "destination", Column("attempt", numeric=True), "reason"],
        rows,
    )
    return out.getvalue()


def test_a_table_that_fits_is_a_table() -> None:
    text = _render(80, [[1, "crm", "2026-11-20", "target:demo", 1, "ok"]])
    assert "┃ batch" in text and "target:demo" in text
    assert all(len(line) <= 80 for line in text.splitlines())


def test_a_table_too_wide_becomes_blocks_with_every_value_whole() -> None:
    rows: list[list[object]] = [
        [7, "crm_customers+pos_purchases", "2026-11-20", "copernica:Newsletter", 2, LONG],
        [8, "pos_purchases", "2026-11-21", "target:demo", 1, ""],
    ]
    text = _render(80, rows)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    assert "…" not in text
    # short values on one line each, whole; the long one folded, every character kept
    for value in ("crm_customers+pos_purchases", "copernica:Newsletter", "2026-11-21"):
        assert any(value in line for line in lines), (value, text)
    assert LONG.replace(" ", "") in "".join(line.strip() for line in lines).replace(" ", "")
    assert "reason" in text and text.count("destination") == 2  # one block per row
    assert "┃" not in text


def test_off_a_terminal_nothing_wraps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    console = make_console()  # pytest's stdout is no terminal
    assert console.width == UNWRAPPED
    monkeypatch.setenv("COLUMNS", "80")
    assert make_console().width == 80  # unless COLUMNS asks for a width
