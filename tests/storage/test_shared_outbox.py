"""The outbox on an object store, shared by processes that share nothing else but the ledger.

As in a deployment where every run has its own container: the extract-and-write step runs in
one process with its local state folder, the drain and the poll in two more, each with its
own empty folder; they share only a PostgreSQL ledger and an S3 bucket (moto in server mode,
a real HTTP endpoint), and deliver to the sandbox (Target and Copernica).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from sqlalchemy import select

from connector import delivery, storage
from connector.destinations.target import TargetClient
from connector.ledger import COMPLETE, QUEUED, Batch, Delivered, Ledger
from connector.outbox.files import BatchFileMissing
from connector.sandbox.testing import SandboxHandle, running_sandbox
from tests.conftest import S3Server
from tests.delivery.helpers import (
    make_ledger,
    make_settings,
    profiles,
    queue,
    write_export,
    write_mapping,
)
from tests.storage.proxy import SlowProxy

ROOT = Path(__file__).resolve().parents[2]
PARTITION = "2026-06-01"
BATCH_SUFFIXES = (".batch", ".jsonl", ".manifest.parquet")


def _env(
    tmp_path: Path, step: str, sb_url: str, ledger_url: str, outbox: str, s3: dict[str, str]
) -> dict[str, str]:
    """A process's environment: its own state folder, the shared ledger and outbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTOR_", "AWS_"))}
    env.update(s3)
    env.update(
        PYTHONPATH=str(ROOT),
        CONNECTOR_STATE_DIR=str(tmp_path / f"{step}-state"),
        CONNECTOR_STATE_DB_URL=ledger_url,
        CONNECTOR_OUTBOX_URL=outbox,
        CONNECTOR_MAPPINGS_DIR=str(tmp_path / "mappings"),
        CONNECTOR_OFF_PEAK="always",
        CONNECTOR_TIMEZONE="Europe/Amsterdam",
        CONNECTOR_TARGET__BASE_URL=sb_url,
        CONNECTOR_TARGET__CLIENT_CODE="demo",
        CONNECTOR_TARGET__CALLS_PER_MINUTE="100000",
        CONNECTOR_TARGET__POLL_INTERVAL_S="0.05",
        CONNECTOR_TARGET__VERIFY_SAMPLE="5",
        CONNECTOR_TARGET__MAX_BATCH_ROWS="100",
        CONNECTOR_COPERNICA__BASE_URL=f"{sb_url}/v3",
        CONNECTOR_COPERNICA__DATABASE="shop",
    )
    return env


def _step(tmp_path: Path, step: str, env: dict[str, str]) -> dict[str, Any]:
    """Run one driver step in its own process (cwd: an empty folder of its own)."""
    cwd = tmp_path / f"{step}-cwd"
    cwd.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "tests.storage.driver", step, PARTITION],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"{step} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _exports(tmp_path: Path, sb_url: str, target: pa.Table, copernica: pa.Table) -> None:
    """The two mappings and their exports of PARTITION, on the writer's disk."""
    local = make_settings(tmp_path, sb_url)
    write_mapping(local, ["tier", "city"], name="crm")
    write_export(local, "crm", PARTITION, target)
    write_mapping(
        local, ["tier", "city"], name="shop", destination="copernica", identity_type="customerid"
    )
    write_export(local, "shop", PARTITION, copernica)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _copernica_profiles(sb: SandboxHandle) -> dict[str, dict[str, str]]:
    """customerid -> fields of every profile in the sandbox's database ``shop``."""
    out: dict[str, dict[str, str]] = {}
    start = 0
    while True:
        page = httpx.get(
            f"{sb.url}/v3/database/shop/profiles",
            params={"start": start, "limit": 1000},
            timeout=30,
        ).json()
        for profile in page["data"]:
            fields = {k.lower(): v for k, v in profile["fields"].items()}
            out[fields["customerid"]] = fields
        start += page["count"]
        if start >= page["total"]:
            return out


@pytest.mark.postgres
def test_write_drain_and_poll_in_three_processes_share_only_ledger_and_bucket(
    tmp_path: Path, s3_env: S3Server, fresh_postgres_url: str
) -> None:
    s3_server = s3_env  # its environment is set here too: this process lists the bucket
    outbox = f"s3://{s3_server.new_bucket('outbox')}/connector/outbox"
    target_rows, copernica_rows = profiles(250), profiles(120, prefix="shop")
    with running_sandbox(calls_per_minute=100_000, processing_delay_s=0.05) as sb:
        _exports(tmp_path, sb.url, target_rows, copernica_rows)

        def env(step: str) -> dict[str, str]:
            return _env(tmp_path, step, sb.url, fresh_postgres_url, outbox, s3_server.env)

        written = _step(tmp_path, "write", env("write"))
        assert len(written["target"]) == 3 and len(written["copernica"]) == 1
        drained = _step(tmp_path, "drain", env("drain"))
        assert sorted(drained["target"]) == sorted(written["target"])
        assert drained["copernica"] == written["copernica"]
        polled = _step(tmp_path, "poll", env("poll"))
        assert polled["still_open"] == 0
        sb.wait_idle()

        ledger = Ledger(fresh_postgres_url)
        try:
            with ledger.session() as session:
                batches = list(session.scalars(select(Batch)))
                delivered = {
                    (d.destination_key, d.identity) for d in session.scalars(select(Delivered))
                }
        finally:
            ledger.dispose()
        assert {b.state for b in batches} == {COMPLETE}
        # the ledger names objects in the bucket, and the bucket holds every one of them
        in_store = {info.url for info in storage.location(outbox).list()}
        for batch in batches:
            assert batch.path.startswith(f"{outbox}/") and batch.path in in_store
            assert batch.manifest_path in in_store
        target_ids = target_rows.column("_identity").to_pylist()
        shop_ids = copernica_rows.column("_identity").to_pylist()
        assert {i for k, i in delivered if k.startswith("target")} == set(target_ids)
        assert {i for k, i in delivered if k.startswith("copernica")} == set(shop_ids)

        # every profile read back from the sandbox, value by value
        with TargetClient(make_settings(tmp_path / "reader", sb.url).target) as client:
            for row in target_rows.to_pylist():
                stored = client.fetch_profile(row["_identity"], "thirdPartyId")
                assert stored is not None, row["_identity"]
                for name in ("tier", "city"):
                    if row[name] not in (None, ""):
                        assert stored.get(name) == row[name], (row["_identity"], name)
        at_copernica = _copernica_profiles(sb)
        for row in copernica_rows.to_pylist():
            fields = at_copernica[row["_identity"]]
            for name in ("tier", "city"):
                if row[name] not in (None, ""):
                    assert fields.get(name) == row[name], (row["_identity"], name)

    # no batch file or manifest on any local disk: the writer's copies went with the upload,
    # the drain and poll streamed and copied into caches they removed
    for step in ("drain", "poll"):
        assert _files(tmp_path / f"{step}-state") == [], step
    writer = tmp_path / "write-state"
    assert [p for p in _files(writer) if p.name.endswith(BATCH_SUFFIXES)] == []
    assert _files(writer / "work") == [] and _files(writer / "cache") == []
    assert [p for p in _files(tmp_path) if p.name.endswith(BATCH_SUFFIXES)] == []


@pytest.mark.postgres
def test_a_writer_killed_mid_upload_leaves_no_queued_batch_without_its_object(
    tmp_path: Path, s3_env: S3Server, fresh_postgres_url: str
) -> None:
    s3_server = s3_env  # its environment is set here too: this process reads the bucket
    bucket = s3_server.new_bucket("killed")
    outbox = f"s3://{bucket}/outbox"
    n = 100_000
    wide = profiles(n, tricky=False).set_column(
        2, "city", pa.array([f"{i:08d}" + "x" * 110 for i in range(n)])
    )
    host, port = s3_server.endpoint.removeprefix("http://").split(":")
    with (
        running_sandbox() as sb,
        SlowProxy((host, int(port)), rate=1 << 20) as proxy,
    ):
        local = make_settings(tmp_path, sb.url)
        write_mapping(local, ["tier", "city"], name="crm")
        write_export(local, "crm", PARTITION, wide)
        env = _env(tmp_path, "write", sb.url, fresh_postgres_url, outbox, s3_server.env)
        env["CONNECTOR_TARGET__MAX_BATCH_ROWS"] = str(n)  # one file of about 13 MB: 2 parts
        env["AWS_ENDPOINT_URL"] = proxy.endpoint
        cwd = tmp_path / "write-cwd"
        cwd.mkdir()
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.storage.driver", "write", PARTITION],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert proxy.part_seen.wait(180), "the writer never started a multipart upload"
            time.sleep(0.5)  # well inside the upload: a part takes seconds through the proxy
            assert writer.poll() is None, "the writer ended before it could be killed"
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(30)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait(30)
        assert writer.returncode == -signal.SIGKILL

        ledger = Ledger(fresh_postgres_url)
        try:
            with ledger.session() as session:
                batches = list(session.scalars(select(Batch)))
            assert batches == []  # the batch being uploaded was never registered
            objects = {info.url for info in storage.location(outbox).list()}
            assert not [u for u in objects if u.endswith(".batch")]  # no partial object either

            # a new writer finishes the work: then every queued batch has its objects
            rerun = _env(tmp_path, "write", sb.url, fresh_postgres_url, outbox, s3_server.env)
            rerun["CONNECTOR_TARGET__MAX_BATCH_ROWS"] = str(n)
            written = _step(tmp_path, "write", rerun)
            with ledger.session() as session:
                batches = list(session.scalars(select(Batch)))
        finally:
            ledger.dispose()
    assert [b.id for b in batches] == written["target"]
    # the killed writer's half-written files in the working area went with the next writer
    assert _files(tmp_path / "write-state" / "work") == []
    assert {b.state for b in batches} == {QUEUED} and sum(b.row_count for b in batches) == n
    for batch in batches:
        assert storage.head(batch.path).size == batch.byte_size
        assert storage.exists(batch.manifest_path)


@pytest.mark.parametrize("outbox_kind", ["s3", "local"])
@pytest.mark.parametrize("gone", ["file", "manifest"])
def test_a_missing_batch_object_fails_the_drain_naming_it(
    tmp_path: Path, request: pytest.FixtureRequest, outbox_kind: str, gone: str
) -> None:
    """Not dead-lettered quietly: the drain raises naming the batch and the URL, the batch
    stays queued with its attempt, and nothing of it is sent."""
    overrides: dict[str, Any] = {}
    if outbox_kind == "s3":
        s3: S3Server = request.getfixturevalue("s3_env")
        overrides["outbox_url"] = f"s3://{s3.new_bucket('missing')}/outbox"
    with running_sandbox(calls_per_minute=100_000) as sb:
        settings = make_settings(tmp_path, sb.url, **overrides)
        ledger = make_ledger(settings)
        (batch,) = queue(settings, ledger, profiles(20))
        url = batch.path if gone == "file" else batch.manifest_path
        assert storage.is_object_url(url) == (outbox_kind == "s3")
        storage.delete(url)

        with pytest.raises(BatchFileMissing) as caught:
            delivery.drain(settings, ledger, destination="target")
        assert f"batch {batch.id} " in str(caught.value) and url in str(caught.value)
        with ledger.session() as session:
            after = session.get(Batch, batch.id)
            assert after is not None
            assert (after.state, after.attempt) == (QUEUED, 1)
            assert "could not be read" in (after.message or "")
            assert session.scalars(select(Delivered)).first() is None
        assert sb.state.target.batch_index == {}  # nothing was sent
