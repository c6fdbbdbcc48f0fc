"""The status_report asset's page is the report's summary: a real sync of the sample day
against the sandbox, its materialization read back from the Dagster instance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from connector.defs.runner import run_sync
from connector.reporting import ACCOUNT_COUNTS, MAPPING_COUNTS
from tests.defs.conftest import make_connector

REPORT = dg.AssetKey(["target", "status_report"])


def test_status_report_metadata_is_typed_and_matches_the_sync(
    workdir: Path, sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a UI behind a login: the link names the host, never the password
    monkeypatch.setenv("CONNECTOR_DAGSTER_URL", "http://ops:pw-x1y2@dagster.internal:3000/")
    connector = make_connector(workdir, sandbox.url, force_window=True)
    with dg.instance_for_test() as instance:
        summary = run_sync(connector, partitions=["2026-11-19"], instance=instance)
        assert summary.ok, summary.failures
        event = instance.get_latest_materialization_event(REPORT)
        assert event is not None and event.asset_materialization is not None
        metadata = event.asset_materialization.metadata
        run_id = event.run_id
        checks = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    landing = [
        c.event_log_entry.dagster_event.event_specific_data  # type: ignore[union-attr]
        for c in checks
        if c.event_log_entry.dagster_event.event_specific_data.check_name == "landing_rate"  # type: ignore[union-attr]
        and c.event_log_entry.dagster_event.event_specific_data.asset_key == REPORT  # type: ignore[union-attr]
    ]

    html = metadata["report_html"]
    assert isinstance(html, dg.PathMetadataValue) and Path(html.path).exists()
    assert html.path == summary.reports["target"]
    link = metadata["report_url"]
    assert isinstance(link, dg.UrlMetadataValue)
    assert link.url == Path(html.path).resolve().as_uri()
    run = metadata["dagster_run"]
    assert isinstance(run, dg.UrlMetadataValue)
    assert run.url == f"http://dagster.internal:3000/runs/{run_id}"
    assert "pw-x1y2" not in repr(metadata) and "pw-x1y2" not in Path(html.path).read_text()

    rate = metadata["landing_rate_pct"]
    assert isinstance(rate, dg.FloatMetadataValue) and rate.value == 100.0
    assert "landing_rate" not in metadata  # the bare share (1.0) read as "1" in the UI
    (check,) = landing
    assert check.metadata["landing_rate_pct"] == dg.MetadataValue.float(100.0)
    assert isinstance(metadata["duration_s"], dg.FloatMetadataValue)

    per_mapping = metadata["per_mapping"]
    assert isinstance(per_mapping, dg.TableMetadataValue)
    assert [c.name for c in per_mapping.schema.columns] == ["mapping", *MAPPING_COUNTS]
    assert all(c.description for c in per_mapping.schema.columns[1:])
    rows = {r.data["mapping"]: r.data for r in per_mapping.records}
    # the run record (from the ledger) counts what the sync summary (from Dagster's events) did
    assert set(rows) == {"crm_customers", "pos_purchases"}
    for mapping, row in rows.items():
        assert {k: row[k] for k in MAPPING_COUNTS} == summary.per_mapping[mapping], mapping

    at_account = metadata["at_account"]
    assert isinstance(at_account, dg.TableMetadataValue)
    assert [c.name for c in at_account.schema.columns] == ["account", *ACCOUNT_COUNTS]
    (account,) = at_account.records
    synced = summary.per_account["target"]
    for figure in ("changed", "already_sent", "queued", "submitted", "confirmed", "failed"):
        assert account.data[figure] == synced[figure], figure
    assert account.data["added"] == synced["queued"] > 0  # a first delivery: every row is new
    count = metadata["dagster/row_count"]
    assert isinstance(count, dg.IntMetadataValue)
    assert count.value == synced["confirmed"] + synced["failed"]
    for figure in ACCOUNT_COUNTS:
        assert isinstance(metadata[figure], dg.IntMetadataValue)

    reasons = metadata["reasons"]
    assert isinstance(reasons, dg.TableMetadataValue)
    assert [c.name for c in reasons.schema.columns] == [
        "what",
        "where",
        "reason",
        "rows",
        "examples",
    ]
    assert not [k for k in metadata if k.startswith("rows_")]  # the poll's own tallies
