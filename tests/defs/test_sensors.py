"""Sensors evaluated tick by tick with explicit cursors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg

from connector.defs import build_definitions
from connector.ledger import Batch
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
        seen = json.loads(changed.cursor)
        assert any(key.endswith("pos_2026-11-17.csv") for key in seen)


def test_status_sensor_requests_polls_only_while_batches_are_open(workdir: Path) -> None:
    connector = make_connector(workdir)
    defs = build_definitions(connector.settings(), connector)
    with dg.instance_for_test() as instance:
        idle = _tick(defs, "status_poll", None, instance)
        assert not idle.run_requests and idle.skip_message == "no open batches"
        with connector.ledger().session() as session:
            session.add(
                Batch(
                    batch_key="b1",
                    mapping="crm_customers",
                    partition="2026-11-21",
                    destination="target",
                    destination_key="target:demo",
                    path="/x",
                    manifest_path="/y",
                    sha256="0" * 64,
                    row_count=3,
                    byte_size=10,
                    state="submitted",
                )
            )
        busy = _tick(defs, "status_poll", None, instance)
        assert len(busy.run_requests) == 1
        soon = _tick(defs, "status_poll", busy.cursor, instance)
        assert not soon.run_requests, "polled less than poll_interval_s ago"
