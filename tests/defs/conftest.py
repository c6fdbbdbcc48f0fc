"""Fixtures for the Dagster layer: a private state folder, the sample mappings, a live sandbox."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.defs import build_definitions
from connector.defs.resources import (
    ConnectorResource,
    CopernicaResource,
    LedgerResource,
    TargetResource,
)
from connector.sample_data import ensure_sample_db
from connector.sandbox.testing import running_sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the sample exports and mappings; relative paths in mappings resolve here."""
    ensure_sample_db(ROOT / "sample_exports" / "crm.db")
    shutil.copytree(ROOT / "sample_exports", tmp_path / "sample_exports")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    return tmp_path


@pytest.fixture
def sandbox() -> Iterator[object]:
    with running_sandbox() as handle:
        yield handle


def make_connector(
    workdir: Path, sandbox_url: str = "http://127.0.0.1:9", **extra: object
) -> ConnectorResource:
    """Resources on a private state folder and a sandbox; `extra` sets ConnectorResource fields
    (and `copernica_base_url` when Copernica is served by another sandbox)."""
    copernica_url = str(extra.pop("copernica_base_url", f"{sandbox_url}/v3"))
    fields: dict[str, object] = {
        "mappings_dir": str(workdir / "mappings"),
        "timezone": "Europe/Amsterdam",
        "off_peak": "22:00-06:00",
        "poll_timeout_s": 60.0,
    }
    fields.update(extra)
    return ConnectorResource(
        store=LedgerResource(state_dir=str(workdir / "state")),
        target=TargetResource(base_url=sandbox_url, poll_interval_s=0.2),
        copernica=CopernicaResource(base_url=copernica_url),
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def connector_defs(workdir: Path):  # type: ignore[no-untyped-def]
    connector = make_connector(workdir)
    return build_definitions(connector.settings(), connector)
