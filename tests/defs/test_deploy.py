"""Deployment: the webserver serves the code location over GraphQL; runs on PostgreSQL storage."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connector.defs import build_definitions
from connector.defs.jobs import NIGHTLY
from tests.defs.conftest import ROOT, make_connector


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_webserver_serves_the_assets_over_graphql(workdir: Path) -> None:
    shutil.copy(ROOT / "definitions.py", workdir / "definitions.py")
    shutil.copy(ROOT / "workspace.yaml", workdir / "workspace.yaml")
    port = _free_port()
    env = {
        **os.environ,
        "CONNECTOR_STATE_DIR": str(workdir / "state"),
        "DAGSTER_HOME": str(workdir / "dagster_home"),
    }
    webserver = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    query = "{ assetNodes { assetKey { path } } }"
    try:
        deadline = time.monotonic() + 120
        nodes = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, (
                proc.stderr.read().decode()[-2000:] if proc.stderr else "exited"
            )
            try:
                reply = httpx.post(
                    f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=10
                )
                nodes = reply.json()["data"]["assetNodes"]
                if nodes:
                    break
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                pass
            time.sleep(1)
        assert nodes, "webserver did not serve the asset graph within 120 s"
        paths = {"/".join(n["assetKey"]["path"]) for n in nodes}
        for mapping in ("crm_customers", "pos_purchases", "crm_copernica"):
            for stage in ("source_rows", "profile_updates", "rejects", "profile_changes"):
                assert f"{mapping}/{stage}" in paths
        for destination in ("target", "copernica"):
            for asset in ("outbox", "submissions", "status_report"):
                assert f"{destination}/{asset}" in paths
        assert not any(p.endswith("/batch_files") for p in paths), paths
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def dagster_pg_url(postgres_url: str):  # type: ignore[no-untyped-def]
    """A fresh PostgreSQL database for Dagster's storage, dropped afterwards."""
    name = f"dagster_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(drivername="postgresql+psycopg2", database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_definitions_run_on_postgres_storage(workdir: Path, dagster_pg_url: str) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    config["storage"]["postgres"]["postgres_url"] = dagster_pg_url
    connector = make_connector(workdir)
    defs = build_definitions(connector.settings(), connector)
    job = defs.resolve_job_def(NIGHTLY)
    selection = [
        dg.AssetKey(["crm_customers", s]) for s in ("source_rows", "profile_updates", "rejects")
    ]
    with dg.instance_for_test(overrides={"storage": config["storage"]}) as instance:
        result = job.execute_in_process(
            partition_key="2026-11-21", instance=instance, asset_selection=selection
        )
        assert result.success
        stored = instance.get_run_by_id(result.run_id)
        assert stored is not None and stored.is_success
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        record = instance.get_latest_materialization_event(
            dg.AssetKey(["crm_customers", "source_rows"])
        )
        assert record is not None
