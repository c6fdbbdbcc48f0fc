"""The DAGSTER_HOME the connector makes: a dagster.yaml with telemetry off, a user's left alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector.defs.instance import (
    DEFAULT_INSTANCE_CONFIG,
    dagster_home,
    instance_for,
    prepare_dagster_home,
)
from tests.defs.conftest import ROOT
from tests.recorders import wait_for_recorders

BANNER = "Telemetry:"
NO_CONFIG_WARNING = "No dagster instance configuration file"
CONNECTOR = str(Path(sys.executable).with_name("connector"))


@pytest.fixture
def no_dagster_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


def test_the_home_under_the_state_folder_gets_telemetry_off(
    tmp_path: Path, no_dagster_home: None
) -> None:
    instance = instance_for(tmp_path / "state")
    try:
        home = tmp_path / "state" / "dagster_home"
        assert os.environ["DAGSTER_HOME"] == str(home)
        assert (home / "dagster.yaml").read_text(encoding="utf-8") == DEFAULT_INSTANCE_CONFIG
        assert instance.get_settings("telemetry") == {"enabled": False}
        assert instance.is_persistent and Path(instance.root_directory) == home
    finally:
        instance.dispose()


def test_an_existing_dagster_yaml_is_never_overwritten(
    tmp_path: Path, no_dagster_home: None
) -> None:
    home = tmp_path / "state" / "dagster_home"
    home.mkdir(parents=True)
    mine = "telemetry:\n  enabled: true\n# mine\n"
    (home / "dagster.yaml").write_text(mine, encoding="utf-8")
    prepare_dagster_home(tmp_path / "state")
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == mine


def test_a_dagster_home_the_user_made_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = tmp_path / "their_home"
    theirs.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(theirs))
    assert dagster_home(tmp_path / "state") == theirs
    assert prepare_dagster_home(tmp_path / "state") == theirs
    assert list(theirs.iterdir()) == []
    # one they named but that is not there yet, the connector creates: with its config
    new = tmp_path / "new_home"
    monkeypatch.setenv("DAGSTER_HOME", str(new))
    prepare_dagster_home(tmp_path / "state")
    assert (new / "dagster.yaml").read_text(encoding="utf-8") == DEFAULT_INSTANCE_CONFIG


def test_a_sync_prints_no_telemetry_banner_nor_instance_warning(workdir: Path) -> None:
    """`connector sync` in a fresh folder, in a process of its own: Dagster prints the banner
    once per new instance (and the warning on every start) on stderr."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env |= {"CONNECTOR_PARTITION_START": "2026-11-01", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [CONNECTOR, "sync", "--partition", "2026-11-19", "--dry-run"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert "partition 2026-11-19: crm_copernica, crm_customers, pos_purchases" in output
    assert BANNER not in output and NO_CONFIG_WARNING not in output, output[-2000:]
    # the instance is the recorder's to open, in the background (it prints nowhere): the
    # home it creates gets the connector's dagster.yaml, so no banner either
    wait_for_recorders(workdir / ".connector")
    assert (workdir / ".connector" / "dagster_home" / "dagster.yaml").is_file()
