"""`connector sync` of the sample Copernica mapping against a typed sandbox database: params
in another casing and a param the database lacks are warned of and delivered; a wrong
database id ends the command with one clear error and a non-zero exit code, its batches
left queued (no per-row failures)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from connector.ledger import QUEUED, Batch, Delivered, Ledger, RowOutcome
from connector.sample_data import ensure_sample_db
from connector.sandbox.testing import SandboxHandle, running_sandbox

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-20"
# the sample mapping crm_copernica sends customerid, email, firstname, lastname, city, newsletter
SCHEMA = {
    "Newsletter": {
        "fields": {
            "CustomerID": "text",
            "Email": "email",
            "FirstName": "text",
            "LastName": "text",
            "City": "text",
        }
    }
}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    ensure_sample_db(ROOT / "sample_exports" / "crm.db")
    shutil.copytree(ROOT / "sample_exports", tmp_path / "sample_exports")
    (tmp_path / "mappings").mkdir()
    shutil.copy(ROOT / "mappings" / "crm_copernica.yaml", tmp_path / "mappings")
    (tmp_path / "dagster_home").mkdir()
    return tmp_path


def sync(workdir: Path, sb: SandboxHandle, database: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        CONNECTOR_STATE_DIR=str(workdir / "state"),
        CONNECTOR_MAPPINGS_DIR=str(workdir / "mappings"),
        CONNECTOR_TARGET__BASE_URL=sb.url,
        CONNECTOR_COPERNICA__BASE_URL=f"{sb.url}/v3",
        CONNECTOR_COPERNICA__DATABASE=database,
        CONNECTOR_OFF_PEAK="00:00-24:00",
        CONNECTOR_PARTITION_START="2026-11-01",
        DAGSTER_HOME=str(workdir / "dagster_home"),
        COLUMNS="200",
    )
    return subprocess.run(
        [str(Path(sys.executable).parent / "connector"), "sync", "--partition", DAY, "--wait", "0"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def ledger_of(workdir: Path) -> Ledger:
    return Ledger(f"sqlite:///{workdir / 'state' / 'ledger.db'}")


def test_sync_warns_of_casing_and_missing_fields_and_delivers(workdir: Path) -> None:
    with running_sandbox(copernica_schema=SCHEMA, copernica_autocreate=False) as sb:
        done = sync(workdir, sb, "Newsletter")
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-4000:]
        assert output.count("param 'firstname' is field 'FirstName'") == 1, output[-4000:]
        assert output.count("(silently dropped by the API): newsletter") == 1
        landed = sb.snapshot()["copernica"]["databases"][0]
        assert landed["name"] == "Newsletter" and landed["profiles"] > 0
    ledger = ledger_of(workdir)
    try:
        with ledger.session() as s:
            assert len(list(s.scalars(select(Delivered)))) == landed["profiles"]
    finally:
        ledger.dispose()


def test_sync_to_a_wrong_database_id_stops_with_one_configuration_error(workdir: Path) -> None:
    with running_sandbox(copernica_schema=SCHEMA, copernica_autocreate=False) as sb:
        done = sync(workdir, sb, "99984")
        output = done.stdout + done.stderr
        assert done.returncode == 3, output[-4000:]  # bad configuration
        failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
        assert len(failed) == 1 and "copernica__submissions" in failed[0], done.stdout[-4000:]
        # the summary's line names the step's own error, not Dagster's wrapper of it
        assert "No database with supplied ID" in " ".join(done.stdout.split()), done.stdout[-4000:]
        assert (
            "ConfigurationError: copernica database '99984' at "
            f"{sb.url}/v3: No database with supplied ID (check CONNECTOR_COPERNICA__DATABASE"
        ) in output
        calls = sb.snapshot()["copernica"]["calls"]
        assert not any(key.startswith("PUT") for key in calls)
    ledger = ledger_of(workdir)
    try:
        with ledger.session() as s:
            batches = list(s.scalars(select(Batch)))
            assert batches and all(b.state == QUEUED and b.attempt == 1 for b in batches)
            assert not list(s.scalars(select(RowOutcome)))
    finally:
        ledger.dispose()
