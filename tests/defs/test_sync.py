"""Real Dagster runs of the sample mappings against the sandbox: sync, rerun, backfill, window."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import httpx
from sqlalchemy import select

from connector.defs.runner import expand_partitions, run_sync
from connector.ledger import Batch
from tests.defs.conftest import make_connector

DAYS = "2026-11-19..2026-11-21"


def _accepted_batches(sandbox_url: str) -> int:
    state = httpx.get(f"{sandbox_url}/_sandbox/state", timeout=10).json()
    return sum(
        len(client.get("batches", []))
        for client in state.get("target", {}).get("clients", {}).values()
    )


def test_expand_partitions() -> None:
    assert expand_partitions(["2026-11-19..2026-11-21"], "x") == [
        "2026-11-19",
        "2026-11-20",
        "2026-11-21",
    ]
    assert expand_partitions([], "2026-11-21") == ["2026-11-21"]


def test_backfill_of_three_days_twice_delivers_nothing_new_the_second_time(
    workdir: Path, sandbox
) -> None:
    connector = make_connector(workdir, sandbox.url, force_window=True)
    with dg.instance_for_test() as instance:
        first = run_sync(connector, partitions=[DAYS], instance=instance)
        assert first.ok, first.failures
        totals = {
            k: sum(c[k] for c in first.per_mapping.values())
            for k in ("read", "queued", "confirmed")
        }
        assert totals["read"] > 0 and totals["queued"] > 0
        assert totals["confirmed"] == totals["queued"] - sum(
            c["failed"] for c in first.per_mapping.values()
        )
        accepted = _accepted_batches(sandbox.url)
        assert accepted > 0
        assert first.reports and all(Path(p).exists() for p in first.reports.values())

        second = run_sync(connector, partitions=[DAYS], instance=instance)
        assert second.ok, second.failures
        assert sum(c["queued"] for c in second.per_mapping.values()) == 0
        assert _accepted_batches(sandbox.url) == accepted
        runs = instance.get_runs()
        assert len(runs) == 2 * (3 + 1)


def test_outside_the_off_peak_window_nothing_is_submitted(workdir: Path, sandbox) -> None:
    now = dt.datetime.now(dt.UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Amsterdam"))
    start = (now + dt.timedelta(hours=2)).strftime("%H:00")
    end = (now + dt.timedelta(hours=3)).strftime("%H:00")
    connector = make_connector(workdir, sandbox.url, off_peak=f"{start}-{end}", poll_timeout_s=0.0)
    with dg.instance_for_test() as instance:
        summary = run_sync(connector, partitions=["2026-11-21"], instance=instance)
    assert summary.ok, summary.failures
    with connector.ledger().session() as session:
        states = {b.state for b in session.scalars(select(Batch)).all()}
    assert states == {"queued"}
    assert _accepted_batches(sandbox.url) == 0


def test_dry_run_writes_no_batches(workdir: Path, sandbox) -> None:
    connector = make_connector(workdir, sandbox.url, force_window=True)
    with dg.instance_for_test() as instance:
        summary = run_sync(connector, partitions=["2026-11-21"], dry_run=True, instance=instance)
    assert summary.ok, summary.failures
    with connector.ledger().session() as session:
        assert session.scalars(select(Batch)).all() == []
    assert _accepted_batches(sandbox.url) == 0


def test_summary_accounts_for_every_row_read(workdir: Path, sandbox) -> None:
    connector = make_connector(workdir, sandbox.url, force_window=True)
    with dg.instance_for_test() as instance:
        for _ in range(2):  # the second run finds everything unchanged or superseded
            summary = run_sync(connector, partitions=[DAYS], instance=instance)
            assert summary.ok, summary.failures
            for name, c in summary.per_mapping.items():
                accounted = (
                    c["rejected"] + c["merged"] + c["unchanged"] + c["superseded"] + c["queued"]
                )
                assert c["read"] == accounted, (name, c)
                assert c["queued"] == c["confirmed"] + c["failed"], (name, c)
                assert c["submitted"] == c["queued"], (name, c)  # all sent once, none pending


def test_materialize_one_mapping_partition_with_the_resource_handed_in(
    workdir: Path, sandbox
) -> None:
    """The Dagster testing idiom: `materialize(assets, partition_key=..., resources=...)`."""
    from connector.defs.assets import build_mapping_assets, daily_partitions
    from connector.mapping import load_mapping

    connector = make_connector(workdir, sandbox.url)
    settings = connector.settings()
    mapping = load_mapping(workdir / "mappings" / "crm_customers.yaml")
    assets = build_mapping_assets(mapping, daily_partitions(settings))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            assets,
            partition_key="2026-11-21",
            resources={"connector": connector},
            instance=instance,
        )
        assert result.success
        batch_files = instance.get_latest_materialization_event(
            dg.AssetKey(["crm_customers", "batch_files"])
        )
    assert batch_files is not None
    metadata = batch_files.asset_materialization.metadata  # type: ignore[union-attr]
    assert metadata["dagster/row_count"].value > 0
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"reject_rate": True, "within_caps": True, "identities_valid": True}
    with connector.ledger().session() as session:
        queued = session.scalars(select(Batch).where(Batch.mapping == "crm_customers")).all()
    assert {b.state for b in queued} == {"queued"}
    assert sum(b.row_count for b in queued) == metadata["dagster/row_count"].value
