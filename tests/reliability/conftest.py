"""Reliability suite: ``--run-soak`` enables the long ``soak`` variants; figures are collected
into ``tests/reliability/results/summary.json`` (one entry per scenario)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

RESULTS = Path(__file__).with_name("results")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-soak", action="store_true", default=False, help="run the long soak scenarios"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long reliability scenario (make soak / --run-soak)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-soak"):
        return
    skip = pytest.mark.skip(reason="soak scenario: run with --run-soak (make soak)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


def record_figures(scenario: str, figures: dict[str, Any]) -> None:
    """Merge one scenario's figures into results/summary.json (xdist workers share the file)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{scenario}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(figures, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
    summary: dict[str, Any] = {}
    for part in sorted(RESULTS.glob("*.json")):
        if part.name == "summary.json":
            continue
        try:
            summary[part.stem] = json.loads(part.read_text())
        except ValueError:
            continue
    out = RESULTS / "summary.json"
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
    os.replace(tmp, out)


@pytest.fixture
def figures_recorder():  # type: ignore[no-untyped-def]
    return record_figures
