"""deploy/dagster.yaml as it ships, on PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tests.defs.conftest import ROOT


@pytest.fixture
def deploy_home(tmp_path: Path, dagster_pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME holding deploy/dagster.yaml unchanged, its storage in a new database."""
    home = tmp_path / "deploy_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    return home


def test_the_shipped_instance_config_loads_on_postgresql(deploy_home: Path) -> None:
    """The whole file as the webserver and the daemon load it: Dagster 1.13 refuses run-queue
    limits under run_coordinator once `concurrency` is set, and an unknown key anywhere."""
    dagster = Path(sys.executable).with_name("dagster")
    info = subprocess.run(
        [str(dagster), "instance", "info"], capture_output=True, text=True, timeout=120
    )
    assert info.returncode == 0, info.stderr[-3000:]
    assert "run_storage: PostgresRunStorage" in info.stdout
    assert "free_slots_after_run_end_seconds" in info.stdout
    with dg.DagsterInstance.from_config(str(deploy_home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.event_log_storage.supports_global_concurrency_limits
        concurrency = instance.get_concurrency_config()
        queue = concurrency.run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 4
        assert [limit["key"] for limit in queue.tag_concurrency_limits] == ["dagster/backfill"]
        assert concurrency.pool_config.default_pool_limit == 1
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
        assert instance.run_monitoring_settings["max_resume_run_attempts"] == 0
