"""Fixtures for the command line's tests: the sample mappings and exports in a private folder,
a real sandbox server, and the environment a `connector` command reads its settings from."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import main
from connector.sample_data import ensure_sample_db

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-20"  # a day of the sample exports (50 CRM customers, 110 POS receipts)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the sample exports and mappings; relative paths in mappings resolve here."""
    ensure_sample_db(ROOT / "sample_exports" / "crm.db")
    shutil.copytree(ROOT / "sample_exports", tmp_path / "sample_exports")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dagster_home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("CONNECTOR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(tmp_path / "mappings"))
    monkeypatch.setenv("CONNECTOR_OFF_PEAK", "00:00-24:00")
    monkeypatch.setenv("CONNECTOR_PARTITION_START", "2026-11-01")
    monkeypatch.setenv("CONNECTOR_TARGET__POLL_INTERVAL_S", "0.1")
    monkeypatch.delenv("COLUMNS", raising=False)  # off a terminal: nothing wraps
    return tmp_path


def point_at(monkeypatch: pytest.MonkeyPatch, target_url: str, copernica_url: str) -> None:
    """Send Target and Copernica calls to these base URLs."""
    monkeypatch.setenv("CONNECTOR_TARGET__BASE_URL", target_url)
    monkeypatch.setenv("CONNECTOR_COPERNICA__BASE_URL", f"{copernica_url}/v3")


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*args: str) -> Result:
    """``connector ARGS`` in process; stdout and stderr kept apart."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def document(result: Result) -> dict:  # type: ignore[type-arg]
    """The one JSON document a --json command printed: stdout holds nothing else."""
    return dict(json.loads(result.stdout))
