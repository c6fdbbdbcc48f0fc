"""Status reports from a real (SQLite) ledger: the rows that did not land and the rejected
rows as safe CSV, the backlog, an HTML page."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from connector.ledger import Batch, Ledger, Reject, RowOutcome
from connector.reporting import safe_cell, write_report
from connector.storage import Location, open_stream
from tests.conftest import S3Server


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_all()
    return ledger


def _batch(key: str, partition: str, state: str, rows: int, attempt: int = 1) -> Batch:
    return Batch(
        batch_key=key,
        mapping="m",
        partition=partition,
        destination="target",
        destination_key="target:demo",
        path=f"/x/{key}.batch",
        manifest_path=f"/x/{key}.parquet",
        sha256=key.ljust(64, "0"),
        row_count=rows,
        byte_size=100,
        attempt=attempt,
        state=state,
        remote_batch_id=f"demo-{key}",
    )


def _csv_rows(path: str | None) -> list[dict[str, str]]:
    return list(csv.DictReader(Path(str(path)).read_text(encoding="utf-8").splitlines()))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        ("", ""),
        (None, ""),
    ],
)
def test_safe_cell(value: object, expected: str) -> None:
    assert safe_cell(value) == expected


def test_report_lists_rows_not_landed_and_rejected_rows(ledger: Ledger, tmp_path: Path) -> None:
    with ledger.session() as session:
        done = _batch("a", "2026-11-20", "complete", 10)
        open_ = _batch("b", "2026-11-21", "submitted", 5)
        queued = _batch("c", "2026-11-21", "queued", 7)
        dead = _batch("d", "2026-11-21", "dead", 2, attempt=3)
        session.add_all([done, open_, queued, dead])
        session.flush()
        session.add_all(
            [
                RowOutcome(
                    batch_id=done.id,
                    identity='=HYPERLINK("x")',
                    status="not_found",
                    reason="error",
                    source_ref="f.csv:3",
                ),
                RowOutcome(batch_id=done.id, identity="id-2", status="requeued", reason="error"),
                RowOutcome(batch_id=dead.id, identity="id-3", status="dead", reason="out"),
            ]
        )
        # one source row with two bad values, one with one; another mapping's reject is not ours
        session.add_all(
            [
                Reject(
                    mapping="m",
                    partition="2026-11-21",
                    source_ref="f.csv:7",
                    param="a",
                    reason="bad a",
                    raw="@SUM(1)",
                ),
                Reject(
                    mapping="m",
                    partition="2026-11-21",
                    source_ref="f.csv:7",
                    param="b",
                    reason="bad b",
                ),
                Reject(mapping="m", partition="2026-11-22", source_ref="f.csv:9", reason="ragged"),
                Reject(mapping="other", partition="2026-11-21", source_ref="g.csv:1", reason="x"),
            ]
        )
    report = write_report(ledger, "target", tmp_path / "reports", daily_quota=4, mappings=["m"])
    rejected = _csv_rows(report.rejects_csv_path)
    assert [(r["source_ref"], r["param"], r["raw"]) for r in rejected] == [
        ("f.csv:7", "a", "'@SUM(1)"),
        ("f.csv:7", "b", ""),
        ("f.csv:9", "", ""),
    ]
    assert report.queued_rows == 7
    assert report.backlog_days == 2
    rows = _csv_rows(report.csv_path)
    # a re-queued row is on its way again: not among the rows that did not land
    assert [(r["identity"], r["status"]) for r in rows] == [
        ('\'=HYPERLINK("x")', "not_found"),
        ("id-3", "dead"),
    ]
    assert rows[0]["source_ref"] == "f.csv:3"
    page = Path(str(report.html_path)).read_text(encoding="utf-8")
    assert "No delivery run recorded yet." in page
    assert 'href="target_failed_rows.csv"' in page and 'href="target_rejected_rows.csv"' in page
    assert "Rows queued: 7" in page


def test_report_written_to_an_object_store_leaves_no_local_file(
    ledger: Ledger, tmp_path: Path, s3_env: S3Server
) -> None:
    with ledger.session() as session:
        session.add(_batch("d", "2026-11-21", "dead", 2, attempt=3))
        session.flush()
        dead = session.scalars(select(Batch)).one()
        session.add(RowOutcome(batch_id=dead.id, identity="id-3", status="dead", reason="out"))
    reports = Location.parse(s3_env.url(f"reports-{uuid.uuid4().hex[:8]}"))
    work = tmp_path / "state"
    report = write_report(ledger, "target", reports, daily_quota=4, mappings=["m"], work_dir=work)
    assert report.html_path == f"{reports}/target_status.html"
    assert report.csv_path == f"{reports}/target_failed_rows.csv"
    assert [info.name for info in reports.list()] == [
        "target_failed_rows.csv",
        "target_rejected_rows.csv",
        "target_status.html",
    ]
    page = b"".join(open_stream(report.html_path)).decode("utf-8")
    assert 'href="target_failed_rows.csv"' in page
    failed = b"".join(open_stream(report.csv_path)).decode("utf-8")
    assert [(r["identity"], r["status"]) for r in csv.DictReader(failed.splitlines())] == [
        ("id-3", "dead")
    ]
    # written in a working folder, uploaded, and gone from the local disk
    assert work.is_dir() and not any(work.rglob("*"))
    # the next report replaces each object whole
    with ledger.session() as session:
        session.execute(delete(RowOutcome))
    again = write_report(ledger, "target", reports, daily_quota=4, mappings=["m"], work_dir=work)
    assert (
        list(csv.DictReader(b"".join(open_stream(str(again.csv_path))).decode().splitlines())) == []
    )
    assert not any(work.rglob("*"))
