"""The run records of real deliveries to the sandbox add up to what the ledger holds: two
days of a mapping staged, built, submitted and settled, one record after each."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from sqlalchemy import distinct, func, select

from connector.ledger import Batch, Delivered, Reject, RowOutcome, StageRun, destination_key
from connector.outbox import build as outbox_build
from connector.reporting import record_run, write_report
from connector.sandbox.testing import running_sandbox
from tests.delivery.helpers import make_ledger, make_settings, run_until_settled, stage

DAY1, DAY2 = "2026-06-01", "2026-06-02"
HUGE = "x" * 400  # above the sandbox's profile limit below: that profile never lands


def _day1() -> pa.Table:
    ids = [f"c{i:02d}" for i in range(12)]
    return pa.table(
        {
            "_identity": ids,
            "tier": ["gold"] * 11 + [HUGE],
            "city": [f"City {i}" for i in range(12)],
        }
    )


def _day2() -> pa.Table:
    # c00-c02 change, c03 is sent as it is, n1 and n2 are new, "bad+id" is refused
    return pa.table(
        {
            "_identity": ["c00", "c01", "c02", "c03", "n1", "n2", "bad+id"],
            "tier": ["silver", "silver", "silver", "gold", "gold", "bronze", "gold"],
            "city": ["City 0", "City 1", "City 2", "City 3", "N1", "N2", "X"],
        }
    )


def _ledger_counts(ledger, key: str, partition: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """What the ledger itself says: the stages' counts of the day, reject lines of the day,
    rows ever queued (first attempts), profiles confirmed by the day's batches, rows dead."""
    with ledger.session() as s:
        stages = {
            run.stage: json.loads(run.stats_json)["counts"]
            for run in s.scalars(
                select(StageRun).where(StageRun.mapping == "crm", StageRun.partition == partition)
            )
        }
        return {
            "read": stages["extract"]["rows_out"] + stages["extract"]["rejected"],
            "unchanged": stages["profiles"]["unchanged"],
            "changed": stages["profiles"]["rows_out"],
            "rejected": int(
                s.scalar(
                    select(func.count()).where(
                        Reject.mapping == "crm", Reject.partition == partition
                    )
                )
                or 0
            ),
            "queued": int(
                s.scalar(
                    select(func.sum(Batch.row_count)).where(
                        Batch.destination_key == key, Batch.parent_id.is_(None)
                    )
                )
                or 0
            ),
            # profiles whose last confirmed row is one of the day's batches
            "confirmed": int(
                s.scalar(
                    select(func.count())
                    .select_from(Delivered)
                    .join(Batch, Batch.id == Delivered.batch_id)
                    .where(Delivered.destination_key == key, Batch.partition == partition)
                )
                or 0
            ),
            "dead": int(
                s.scalar(
                    select(func.count(distinct(RowOutcome.identity))).where(
                        RowOutcome.status == "dead"
                    )
                )
                or 0
            ),
        }


def test_records_of_two_real_deliveries_match_the_ledger(tmp_path: Path) -> None:
    with running_sandbox(
        processing_delay_s=0.01, calls_per_minute=100_000, max_profile_bytes=200
    ) as sb:
        settings = make_settings(tmp_path, sb.url, max_attempts=1)
        ledger = make_ledger(settings)
        key = destination_key("target", settings)

        def deliver(table: pa.Table, day: str, run_id: str):  # type: ignore[no-untyped-def]
            stage(settings, ledger, table, partition=day)
            outbox_build.build(settings, ledger, "target")
            run_until_settled(settings, ledger)
            return record_run(
                ledger, destination="target", destination_key=key, mappings=["crm"], run_id=run_id
            )

        first = deliver(_day1(), DAY1, "run-1")
        after_first = _ledger_counts(ledger, key, DAY1)
        second = deliver(_day2(), DAY2, "run-2")
        after_second = _ledger_counts(ledger, key, DAY2)
        report = write_report(ledger, "target", settings.reports_dir, 1000, ["crm"])

    crm = first.mappings["crm"]
    assert (
        (crm["read"], crm["rejected"], crm["changed"])
        == (
            after_first["read"],
            after_first["rejected"],
            after_first["changed"],
        )
        == (12, 0, 12)
    )
    assert first.account["queued"] == after_first["queued"] == 12
    assert (first.account["added"], first.account["updated"]) == (12, 0)
    assert first.account["confirmed"] == after_first["confirmed"] == 11
    assert first.account["failed"] == first.account["dead"] == after_first["dead"] == 1
    (dead,) = [r for r in first.reasons if r.kind == "dead"]
    assert dead.count == 1 and dead.examples == ("c11",)
    # no batch named in the reason: the same failure in two batches is one group
    assert dead.reason == "attempts exhausted (1/1): Target's row status: failed"

    crm = second.mappings["crm"]
    assert (
        (crm["read"], crm["rejected"], crm["unchanged"], crm["changed"])
        == (
            after_second["read"],
            after_second["rejected"],
            after_second["unchanged"],
            after_second["changed"],
        )
        == (7, 1, 1, 5)
    )
    account = second.account
    assert (account["changed"], account["already_sent"]) == (5, 0)
    assert (account["added"], account["updated"]) == (2, 3)
    assert account["queued"] == after_second["queued"] - after_first["queued"] == 5
    assert account["confirmed"] == after_second["confirmed"] == 5
    assert account["failed"] == 0
    (rejected,) = [r for r in second.reasons if r.kind == "rejected"]
    assert rejected.count == 1 and rejected.examples[0].startswith("bad+id (")
    # the history adds up to the ledger
    assert [r.run_id for r in report.runs] == ["run-2", "run-1"]
    for figure in ("queued", "dead"):
        assert sum(r.account[figure] for r in report.runs) == after_second[figure]
    assert sum(r.account["confirmed"] for r in report.runs) == 11 + 5
