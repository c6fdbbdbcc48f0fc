"""Sensors evaluated tick by tick with explicit cursors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest

from connector.defs import build_definitions
from connector.defs.jobs import NIGHTLY, POLL
from connector.ledger import Batch
from connector.mapping.loader import find_mapping
from connector.pipeline import prepare
from tests.defs.conftest import make_connector


def _tick(defs: dg.Definitions, name: str, cursor: str | None, instance: dg.DagsterInstance):  # type: ignore[no-untyped-def]
    sensor = defs.resolve_sensor_def(name)
    return sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    )


def test_pos_sensor_launches_new_and_changed_files_once(workdir: Path) -> None:
    connector = make_connector(workdir)
    defs = build_definitions(connector.settings(), connector)
    pos = workdir / "sample_exports" / "pos"
    with dg.instance_for_test() as instance:
        first = _tick(defs, "pos_files", None, instance)
        days = sorted(r.partition_key for r in first.run_requests)
        assert days == sorted({p.stem.removeprefix("pos_") for p in pos.glob("*.csv")})
        for request in first.run_requests:
            # the mapping's stages up to its profile store; the account's outbox is delivery's
            assert {tuple(k.path) for k in request.asset_selection} == {
                ("pos_purchases", stage)
                for stage in ("source_rows", "profile_updates", "rejects", "profile_changes")
            }
            assert request.run_key.startswith(f"pos_purchases:{request.partition_key}:")

        again = _tick(defs, "pos_files", first.cursor, instance)
        assert not again.run_requests, "an unchanged folder must not launch anything"

        newest = sorted(pos.glob("*.csv"))[-1]
        with newest.open("a", encoding="utf-8") as handle:
            handle.write(newest.read_text(encoding="utf-8").splitlines()[1] + "\n")
        shutil.copy(newest, pos / "pos_2026-11-17.csv")
        changed = _tick(defs, "pos_files", again.cursor or first.cursor, instance)
        assert sorted(r.partition_key for r in changed.run_requests) == [
            "2026-11-17",
            newest.stem.removeprefix("pos_"),
        ]
        # the cursor holds the files launched and not yet ingested, not every file seen
        waiting = json.loads(changed.cursor)["mappings"]["pos_purchases"]["waiting"]
        assert sorted(Path(p).name for p in waiting) == sorted(p.name for p in pos.glob("*.csv"))

        # the launched days run (the extract stage records each file as it listed it): the
        # next tick launches nothing and the cursor lets go of every file
        mapping = find_mapping(workdir / "mappings", "pos_purchases")
        ledger = connector.ledger()
        for day in sorted({r.partition_key for r in changed.run_requests + first.run_requests}):
            prepare(mapping, str(day), connector.settings(), ledger)
        ledger.dispose()
        settled = _tick(defs, "pos_files", changed.cursor, instance)
        assert not settled.run_requests
        assert json.loads(settled.cursor)["mappings"]["pos_purchases"]["waiting"] == {}


def _batch(key: str, state: str) -> Batch:
    return Batch(
        batch_key=key,
        mapping="crm_customers",
        partition="2026-11-21",
        destination="target",
        destination_key="target:demo",
        path="/x",
        manifest_path="/y",
        sha256=key.ljust(64, "0"),
        row_count=3,
        byte_size=10,
        state=state,
    )


def test_status_sensor_requests_a_poll_only_for_batches_a_poll_can_advance(workdir: Path) -> None:
    connector = make_connector(workdir)
    defs = build_definitions(connector.settings(), connector)
    with dg.instance_for_test() as instance:
        idle = _tick(defs, "status_poll", None, instance)
        assert not idle.run_requests and idle.skip_message == "no batch awaits a status"
        with connector.ledger().session() as session:
            session.add_all([_batch("b1", "queued"), _batch("b2", "claimed")])
        # queued (not sent) and claimed (being sent, or left by a dead process: the drain's)
        waiting = _tick(defs, "status_poll", None, instance)
        assert not waiting.run_requests and waiting.skip_message == "no batch awaits a status"
        with connector.ledger().session() as session:
            session.add(_batch("b3", "submitted"))
        busy = _tick(defs, "status_poll", None, instance)
        assert len(busy.run_requests) == 1
        soon = _tick(defs, "status_poll", busy.cursor, instance)
        assert not soon.run_requests, "polled less than poll_interval_s ago"


STARTED = dg.DagsterRunStatus.STARTED
REPORT = dg.AssetKey(["target", "status_report"])
STAGE = dg.AssetKey(["pos_purchases", "profile_changes"])


@pytest.mark.parametrize(
    ("job_name", "status", "selection"),
    [
        (POLL, dg.DagsterRunStatus.NOT_STARTED, None),
        (POLL, dg.DagsterRunStatus.STARTING, None),
        (POLL, STARTED, None),
        (NIGHTLY, STARTED, None),
        ("__ASSET_JOB", STARTED, frozenset({STAGE, REPORT})),  # a backfill taking delivery along
    ],
)
def test_status_sensor_waits_while_a_run_that_polls_is_on_its_way(
    workdir: Path,
    job_name: str,
    status: dg.DagsterRunStatus,
    selection: frozenset[dg.AssetKey] | None,
) -> None:
    """A run on its way (created, starting, waiting for its pool or polling) that
    materializes a status_report polls what the sensor sees; another run would poll nothing.
    (A queued run needs a code location's origin: the deployment test has real ones.)"""
    connector = make_connector(workdir)
    defs = build_definitions(connector.settings(), connector)
    with connector.ledger().session() as session:
        session.add(_batch("b1", "submitted"))
    with dg.instance_for_test() as instance:
        going = instance.add_run(
            dg.DagsterRun(job_name=job_name, status=status, asset_selection=selection)
        )
        held = _tick(defs, "status_poll", None, instance)
        assert not held.run_requests
        assert held.skip_message == (
            f"1 batches await a status; run {going.run_id} of {job_name} ({status.value}) "
            "polls them"
        )
        instance.report_run_failed(going)
        # runs that do not poll: another job, a backfill of a mapping's stages only
        instance.add_run(dg.DagsterRun(job_name="other_job", status=STARTED))
        instance.add_run(
            dg.DagsterRun(
                job_name="__ASSET_JOB", status=STARTED, asset_selection=frozenset({STAGE})
            )
        )
        assert len(_tick(defs, "status_poll", None, instance).run_requests) == 1
