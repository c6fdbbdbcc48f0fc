"""deploy/dagster.yaml as it ships, on PostgreSQL, and the pools `connector deploy init`
creates on it before any run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from connector.cli import main
from tests.defs.conftest import ROOT

POOLS = ["copernica-shop", "target-acme"]


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


def _init(workdir: Path) -> str:
    result = CliRunner().invoke(main, ["deploy", "init"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def accounts(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample mappings, fed to the Target client code `acme` and the database `shop`."""
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(workdir / "mappings"))
    monkeypatch.setenv("CONNECTOR_STATE_DIR", str(workdir / "state"))
    monkeypatch.setenv("CONNECTOR_TARGET__CLIENT_CODE", "acme")
    monkeypatch.setenv("CONNECTOR_COPERNICA__DATABASE", "shop")


@pytest.mark.usefixtures("accounts")
def test_deploy_init_creates_each_accounts_pool_once(workdir: Path, deploy_home: Path) -> None:
    first = _init(workdir)
    assert first.splitlines()[1:] == [f"{pool}: created, limit 1" for pool in POOLS]
    with dg.DagsterInstance.from_config(str(deploy_home)) as instance:
        limits = {p.name: p for p in instance.event_log_storage.get_pool_limits()}
        assert sorted(limits) == POOLS
        assert all(p.limit == 1 and not p.from_default for p in limits.values())
    again = _init(workdir)
    assert again.splitlines()[1:] == [f"{pool}: limit 1 already" for pool in POOLS]


@pytest.mark.usefixtures("accounts")
def test_deploy_init_fixes_a_pool_a_run_created_at_the_default(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a local instance (SQLite) too: a pool a run created lazily, at the default limit
    of the instance's config, gets its own limit."""
    home = workdir / "dagster_home"
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 3\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.event_log_storage.initialize_concurrency_limit_to_default("target-acme")
    output = _init(workdir)
    assert output.splitlines() == [
        f"Dagster instance at {home}",
        "copernica-shop: created, limit 1",
        "target-acme: limit 3 (the instance's default) -> 1",
    ]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        limits = {
            p.name: (p.limit, p.from_default) for p in instance.event_log_storage.get_pool_limits()
        }
    assert limits == {"copernica-shop": (1, False), "target-acme": (1, False)}
