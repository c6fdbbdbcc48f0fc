"""The `dg` CLI on a project that uses the connector: scaffold, list and check its components.

Runs `dg` (package `dagster-dg-cli`, in the `dev` extra) as a data engineer would, in a project
laid out in a temporary folder; `dg` reads the installed distribution's entry points, so this
needs `pip install -e .[dev]` after a change of `pyproject.toml`. No network is used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from connector.mapping import parse_mapping
from tests.defs.conftest import ROOT
from tests.defs.test_component import (
    DELIVERY_TYPE,
    MAPPING_TYPE,
    STAGES,
    mapping_defs_yaml,
    sample_mappings,
    write_project,
)


def _dg() -> str:
    beside = Path(sys.executable).with_name("dg")
    found = str(beside) if beside.exists() else shutil.which("dg")
    if found is None:
        pytest.fail(
            "the dg CLI (dagster-dg-cli, in the dev extra) is not installed: `make test` installs it"
        )
    return found


def run_dg(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # the project's package and this checkout of the connector, as an install would give
        "PYTHONPATH": os.pathsep.join([str(root / "src"), str(ROOT)]),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [_dg(), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def project(workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An empty `dg` project (no component yet); settings from the environment."""
    monkeypatch.setenv("CONNECTOR_STATE_DIR", str(workdir / "state"))
    monkeypatch.setenv("CONNECTOR_TIMEZONE", "Europe/Amsterdam")
    root = tmp_path / "project"
    root.mkdir()
    _, src = write_project(root, {}, delivery=None)
    return root, src


def test_dg_lists_the_connectors_component_types(project: tuple[Path, Path]) -> None:
    root, _ = project
    listed = json.loads(run_dg(root, "list", "components", "--json").stdout)
    keys = {item["key"] for item in listed["items"]}
    assert {MAPPING_TYPE, DELIVERY_TYPE} <= keys


def test_scaffold_then_list_defs(project: tuple[Path, Path]) -> None:
    root, src = project
    run_dg(root, "scaffold", "defs", MAPPING_TYPE, "crm_customers")
    run_dg(root, "scaffold", "defs", MAPPING_TYPE, "pos", "--kind", "csv")
    run_dg(root, "scaffold", "defs", DELIVERY_TYPE, "delivery")
    scaffolded = yaml.safe_load((src / "defs" / "pos" / "defs.yaml").read_text())
    assert scaffolded["type"] == MAPPING_TYPE
    # a scaffolded mapping is a valid one, named after its folder
    mapping = parse_mapping(yaml.safe_dump(scaffolded["attributes"]))
    assert (mapping.name, mapping.source.kind) == ("pos", "csv")
    run_dg(root, "check", "yaml")

    listed = json.loads(run_dg(root, "list", "defs", "--json").stdout)
    assets = {item["asset_key"]: item for item in listed["assets"]}
    for name in ("crm_customers", "pos"):
        assert {f"{name}/{stage}" for stage in STAGES} <= set(assets)
    assert {"target/outbox", "target/submissions", "target/status_report"} <= set(assets)
    # each definition points at the defs.yaml that declared it
    assert assets["pos/source_rows"]["source"].startswith(f"src/{src.name}/defs/pos/defs.yaml:")
    assert {item["name"] for item in listed["jobs"]} == {
        "nightly_sync",
        "drain_outbox",
        "poll_status",
    }
    assert {item["name"] for item in listed["sensors"]} == {"status_poll", "pos_files"}


def test_dg_check_yaml_names_the_file_and_line_of_a_bad_field(
    project: tuple[Path, Path],
) -> None:
    root, src = project
    text = sample_mappings()["crm_customers"].replace("destination: target", "destination: adobe")
    (src / "defs" / "crm").mkdir()
    defs_yaml = src / "defs" / "crm" / "defs.yaml"
    defs_yaml.write_text(mapping_defs_yaml(text))
    line = defs_yaml.read_text().splitlines().index("  destination: adobe") + 1
    done = run_dg(root, "check", "yaml", ok=False)
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert f"{defs_yaml}:{line}" in out
    assert "'adobe' is not one of ['target', 'copernica']" in out


def test_dg_check_defs_applies_the_rules_beyond_the_schema(project: tuple[Path, Path]) -> None:
    """A name the JSON Schema allows but the model refuses: the load names the file and line."""
    root, src = project
    text = sample_mappings()["crm_customers"].replace("name: crm_customers", "name: crm-x")
    (src / "defs" / "crm").mkdir()
    defs_yaml = src / "defs" / "crm" / "defs.yaml"
    defs_yaml.write_text(mapping_defs_yaml(text))
    run_dg(root, "check", "yaml")
    done = run_dg(root, "check", "defs", ok=False)
    assert done.returncode != 0
    line = defs_yaml.read_text().splitlines().index("  name: crm-x") + 1
    out = done.stdout + done.stderr
    assert f"{defs_yaml}:{line}" in out
    assert "'crm-x' is not a safe name" in out
