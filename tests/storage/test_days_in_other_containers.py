"""Days of one POS mapping, each synced by `connector sync` in a process of its own with an
empty state folder of its own, as runs in separate containers are: they share only the
ledger (PostgreSQL) and an object store (moto's S3), which holds the POS exports, the outbox,
the profile store snapshots and the reports.

Day 2 finds day 1's profile store through the ledger (a value only day 1 held is still sent,
and only the profiles day 2 changed are); a changed export (a new ETag) is read again, the
same bytes are not; the reports land in the bucket; no export, batch file or report is left
on a local disk (a state folder keeps only its stage and the profile snapshots it read, a
cache)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from connector.ledger import Batch, IngestedFile, Ledger
from connector.mapping import SourceMapping, load_mappings
from connector.sandbox.testing import SandboxHandle, running_sandbox
from connector.settings import Settings
from connector.sources.arrival_cursor import ArrivalCursor
from connector.sources.arrivals import new_source_files
from connector.storage import Location
from tests.conftest import S3Server
from tests.ledger.conftest import fresh_postgres_url  # noqa: F401 - a database of its own

ROOT = Path(__file__).resolve().parents[2]
D1, D2 = "2026-11-19", "2026-11-20"
START = dt.date(2026, 11, 1)
NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)  # both days are over
MAPPING = """name: pos
source: {{kind: csv, path: "{exports}/pos_*.csv"}}
destination: target
identity: {{column: customer_id, type: thirdPartyId}}
params:
  lastStore: store
  lastAmount: amount
"""
# what a state folder may keep: the stage and the profile snapshots it read or wrote (a
# cache), the storage module's working and cache folders, emptied after each use, and the
# sync's run logs until its recorder has them in the Dagster instance (docs/state.md)
LOCAL_KEEPS = {"stage", "profiles", "work", "cache", "run_logs"}


@pytest.fixture
def bucket(s3_env: S3Server) -> Location:
    return Location.parse(s3_env.url(f"deployment-{uuid.uuid4().hex[:8]}"))


def _export(bucket: Location, day: str, rows: list[tuple[str, str, str]], tmp: Path) -> None:
    local = tmp / f"pos_{day}.csv"
    lines = ["customer_id,store,amount", *(",".join(r) for r in rows)]
    local.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bucket.put_file(local, f"pos/pos_{day}.csv", move=True)


@dataclass(frozen=True)
class Deployment:
    """What every container of the deployment is given: the mappings, the ledger, the bucket,
    the destination (the sandbox) and the object store's endpoint and keys."""

    mappings: Path
    ledger_url: str
    bucket: Location
    sandbox: SandboxHandle
    s3: S3Server

    def sync(self, day: str, folder: Path) -> subprocess.CompletedProcess[str]:
        """`connector sync` of ``day`` in a new process whose disk is ``folder`` (empty)."""
        folder.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTOR_", "AWS_"))}
        env.update(self.s3.env)
        env.update(
            PYTHONPATH=str(ROOT),
            CONNECTOR_STATE_DIR=str(folder / "state"),
            CONNECTOR_STATE_DB_URL=self.ledger_url,
            CONNECTOR_MAPPINGS_DIR=str(self.mappings),
            CONNECTOR_OUTBOX_URL=self.bucket.url_of("outbox"),
            CONNECTOR_PROFILES_URL=self.bucket.url_of("profiles"),
            CONNECTOR_REPORTS_URL=self.bucket.url_of("reports"),
            CONNECTOR_TARGET__BASE_URL=self.sandbox.url,
            CONNECTOR_OFF_PEAK="always",
            CONNECTOR_PARTITION_START=START.isoformat(),
            DAGSTER_HOME=str(folder / "dagster_home"),
            COLUMNS="200",
        )
        done = subprocess.run(
            [str(Path(sys.executable).parent / "connector"), "sync", "--partition", day],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        return done

    def profile(self, identity: str) -> dict[str, str]:
        """The profile's params at the sandbox, as Target's profile API reads it back."""
        response = httpx.get(
            f"{self.sandbox.url}/rest/v1/profiles/thirdPartyId/{identity}",
            params={"client": "demo"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return {k: v["value"] for k, v in response.json()["profileAttributes"].items()}


def _rows_sent(ledger: Ledger) -> dict[str, int]:
    """Rows queued per batch partition (the newest day among the rows' sources)."""
    sent: dict[str, int] = {}
    with ledger.session() as session:
        for batch in session.scalars(select(Batch)):
            sent[batch.partition] = sent.get(batch.partition, 0) + batch.row_count
    return sent


def parse_mappings(folder: Path) -> list[SourceMapping]:
    mappings, errors = load_mappings(folder)
    assert not errors, errors
    return mappings


def _local_leftovers(folder: Path) -> list[str]:
    """What a run left on its disk beyond its stage and profile cache: any export, batch
    file, manifest or report; any file in the storage module's work or cache folders."""
    state = folder / "state"
    found = [p.name for p in state.iterdir() if p.name not in LOCAL_KEEPS]
    for sub in ("work", "cache"):
        found += [str(p) for p in (state / sub).rglob("*") if p.is_file()]
    for pattern in ("pos_*", "*.batch", "*.manifest.parquet", "*_status.html", "*_rows.csv"):
        found += [str(p) for p in folder.rglob(pattern)]
    return found


def test_each_day_in_its_own_container_shares_only_the_ledger_and_the_bucket(
    tmp_path: Path,
    bucket: Location,
    s3_env: S3Server,
    fresh_postgres_url: str,  # noqa: F811
) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "pos.yaml").write_text(MAPPING.format(exports=bucket.url_of("pos")))
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    _export(bucket, D1, [("C1", "A", "10"), ("C2", "B", "20"), ("C3", "C", "30")], uploads)
    # day 2: C1 as it was, C2 at another store with no amount (the day-1 amount stays), C4 new
    _export(bucket, D2, [("C1", "A", "10"), ("C2", "B2", ""), ("C4", "D", "40")], uploads)
    ledger = Ledger(fresh_postgres_url)
    try:
        with running_sandbox(processing_delay_s=0.0) as sb:
            deployment = Deployment(mappings, fresh_postgres_url, bucket, sb, s3_env)
            deployment.sync(D1, tmp_path / "container-1")
            deployment.sync(D2, tmp_path / "container-2")
            # day 2 sent the two profiles it changed, each whole: C2 keeps day 1's amount,
            # which only day 1's snapshot held
            assert _rows_sent(ledger) == {D1: 3, D2: 2}
            assert deployment.profile("C2") == {"lastStore": "B2", "lastAmount": "20"}
            assert deployment.profile("C4") == {"lastStore": "D", "lastAmount": "40"}
            assert deployment.profile("C1") == {"lastStore": "A", "lastAmount": "10"}

            # day 1's export changes (a new ETag), day 2's is uploaded again with the same
            # bytes (its ETag as it was): a POS sensor starting afresh (an empty cursor)
            # launches day 1 only (day 2's ETag is in the registry: not downloaded)
            _export(bucket, D1, [("C1", "A", "10"), ("C2", "B", "20"), ("C3", "C", "31")], uploads)
            _export(bucket, D2, [("C1", "A", "10"), ("C2", "B2", ""), ("C4", "D", "40")], uploads)
            (pos,) = parse_mappings(mappings)
            settings = Settings(state_dir=tmp_path / "sensor", partition_start=START)
            fresh = new_source_files([pos], settings, ArrivalCursor(), NOW, ledger)
            assert list(fresh.runs) == [("pos", D1)]
            # a third container runs it: the changed export read again, one profile sent
            deployment.sync(D1, tmp_path / "container-3")
            assert deployment.profile("C3") == {"lastStore": "C", "lastAmount": "31"}
            assert deployment.profile("C2") == {"lastStore": "B2", "lastAmount": "20"}
        # the third build's rows: C3 only (its newest day is day 2, the store's latest)
        assert sum(_rows_sent(ledger).values()) == 6
        with ledger.session() as session:
            files = list(session.scalars(select(IngestedFile).order_by(IngestedFile.id)))
        assert [(f.path.rsplit("/", 1)[-1], f.partition) for f in files] == [
            (f"pos_{D1}.csv", D1),
            (f"pos_{D2}.csv", D2),
            (f"pos_{D1}.csv", D1),
        ]
        assert all(f.path.startswith(bucket.url) and f.etag for f in files)
        assert files[0].etag != files[2].etag and files[0].sha256 != files[2].sha256
    finally:
        ledger.dispose()
    # the reports are in the bucket; the snapshots too, named there by the ledger
    names = {info.name for info in bucket.list()}
    assert {"reports/target_status.html", "reports/target_failed_rows.csv"} <= names
    assert any(n.startswith("profiles/target_demo/pos/v") for n in names)
    for container in ("container-1", "container-2", "container-3"):
        assert _local_leftovers(tmp_path / container) == [], container
