"""`connector sync` runs its steps without Dagster and has its runs recorded in the Dagster
instance afterwards by a background process (``connector.defs.recorder``): the runs, their
materializations and check results show up under the sync's run ids; a recording that fails
changes nothing of the sync and is reported, then done, by the next sync."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from connector.defs import run_log
from connector.sandbox.testing import running_sandbox
from tests.recorders import wait_for_recorders

from .conftest import DAY, document, point_at, run


def _instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home))


def test_a_syncs_runs_and_materializations_show_up_in_the_dagster_instance(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_sandbox() as sb:
        point_at(monkeypatch, sb.url, sb.url)
        done = run("sync", "--partition", DAY, "--json")
    assert done.exit_code == 0, done.output[-4000:]
    doc = document(done)
    wait_for_recorders(workdir / "state")
    instance = _instance(workdir / "dagster_home")
    mapping_run, delivery_run = doc["run_ids"]
    for run_id in (mapping_run, delivery_run):
        recorded = instance.get_run_by_id(run_id)
        assert recorded is not None and recorded.status == dg.DagsterRunStatus.SUCCESS
        assert recorded.job_name == "nightly_sync"
    assert instance.get_run_by_id(mapping_run).tags["connector/trigger"] == "sync"  # type: ignore[union-attr]
    # the mapping run's materializations carry the sync's figures
    event = instance.get_latest_materialization_event(dg.AssetKey(["crm_copernica", "source_rows"]))
    assert event is not None and event.run_id == mapping_run
    metadata = event.asset_materialization.metadata  # type: ignore[union-attr]
    assert metadata["rows_out"].value == doc["mappings"]["crm_copernica"]["read"] == 50
    # the delivery run's outbox names the batches the sync wrote, with its checks
    outbox = instance.get_latest_materialization_event(dg.AssetKey(["target", "outbox"]))
    assert outbox is not None and outbox.run_id == delivery_run
    checks = [
        e
        for e in instance.all_logs(delivery_run, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    assert {e.dagster_event.event_specific_data.check_name for e in checks} >= {  # type: ignore[union-attr]
        "within_caps",
        "identities_valid",
        "landing_rate",
    }


def test_a_recording_that_fails_changes_nothing_of_the_sync_and_the_next_sync_records_it(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = workdir / "dagster_home"
    not_a_folder = workdir / "not_a_folder"
    not_a_folder.write_text("a file where the instance should be")
    monkeypatch.setenv("DAGSTER_HOME", str(not_a_folder))
    first = run("sync", "--partition", DAY, "--dry-run", "--json")
    assert first.exit_code == 0, first.output[-4000:]
    first_doc = document(first)
    assert first_doc["mappings"]["crm_copernica"]["changed"] == 50  # the sync's own result
    wait_for_recorders(workdir / "state", none_failed=False)
    (failed,) = run_log.failed(workdir / "state")
    assert "not_a_folder" in failed.with_suffix(run_log.WHY).read_text()
    # the next sync, with a usable instance, says so and records both syncs' runs
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    second = run("sync", "--partition", DAY, "--dry-run", "--json")
    assert second.exit_code == 0, second.output[-4000:]
    assert "were not recorded in the Dagster instance" in second.stderr
    assert str(failed.with_suffix(run_log.WHY)) in second.stderr
    wait_for_recorders(workdir / "state")
    instance = _instance(home)
    for run_id in [*first_doc["run_ids"], *document(second)["run_ids"]]:
        recorded = instance.get_run_by_id(run_id)
        assert recorded is not None and recorded.tags["connector/trigger"] == "sync dry-run"


def test_a_pending_log_left_by_a_recorder_that_did_not_finish_is_recorded_again(
    tmp_path: Path,
) -> None:
    folder = run_log.logs_dir(tmp_path)
    folder.mkdir(parents=True)
    left = folder / f"left{run_log.PENDING}"
    fresh = folder / f"fresh{run_log.PENDING}"
    failed = folder / f"failed{run_log.FAILED}"
    for path in (left, fresh, failed):
        path.write_bytes(b"")
    long_ago = time.time() - run_log.STALE_PENDING_S - 60
    os.utime(left, (long_ago, long_ago))
    # the failed one back to pending, and the stale one; the one being recorded now is not
    assert run_log.retry_failed(tmp_path) == [folder / f"failed{run_log.PENDING}", left]


def test_with_record_runs_wait_the_sync_returns_once_its_runs_are_recorded(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a container that ends with the command: nothing may be left for a later sync
    monkeypatch.setenv("CONNECTOR_RECORD_RUNS", "wait")
    done = run("sync", "--partition", DAY, "--dry-run", "--json")
    assert done.exit_code == 0, done.output[-4000:]
    folder = run_log.logs_dir(workdir / "state")
    assert list(folder.glob("*")) == []  # no log pending or failed: recorded before the return
    instance = _instance(workdir / "dagster_home")
    for run_id in document(done)["run_ids"]:
        assert instance.get_run_by_id(run_id) is not None


def test_with_record_runs_wait_a_failed_recording_is_named_and_changes_nothing(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR_RECORD_RUNS", "wait")
    not_a_folder = workdir / "not_a_folder"
    not_a_folder.write_text("a file where the instance should be")
    monkeypatch.setenv("DAGSTER_HOME", str(not_a_folder))
    done = run("sync", "--partition", DAY, "--dry-run", "--json")
    assert done.exit_code == 0, done.output[-4000:]
    assert document(done)["mappings"]["crm_copernica"]["changed"] == 50
    (failed,) = run_log.failed(workdir / "state")
    assert f"runs were not recorded in the Dagster instance ({failed})" in done.stderr
