"""Delivery run records (SQLite and PostgreSQL ledgers) and the report built on them: the
history is kept run after run, reasons are grouped with counts and examples, every value
from data is escaped in the page, the chart has labelled axes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from connector.ledger import Batch, DeliveryRun, Ledger, Reject, RowOutcome, StageRun
from connector.reporting import record_run, run_history, run_url, write_report
from connector.reporting.chart import nice_step, runs_chart
from connector.reporting.runs import REASON_GROUPS
from connector.settings import SettingsError, load_settings
from tests.ledger.conftest import fresh_postgres_url, ledger_url, sqlite_ledger_url  # noqa: F401

KEY = "target:demo"
T0 = dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:  # noqa: F811
    ledger = Ledger(ledger_url)
    ledger.upgrade()
    yield ledger
    ledger.dispose()


def _batch(session, key: str, *, rows: int, state: str, parent: int | None = None) -> Batch:  # type: ignore[no-untyped-def]
    batch = Batch(
        batch_key=key,
        mapping="crm",
        partition="2026-11-19",
        destination="target",
        destination_key=KEY,
        path=f"/x/{key}.batch",
        manifest_path=f"/x/{key}.parquet",
        sha256=key.ljust(64, "0"),
        row_count=rows,
        byte_size=1,
        attempt=1 if parent is None else 2,
        parent_id=parent,
        state=state,
        submitted_at=T0,
    )
    session.add(batch)
    session.flush()
    return batch


def _stage(session, mapping: str, partition: str, stage: str, **counts: int) -> None:  # type: ignore[no-untyped-def]
    session.merge(
        StageRun(
            mapping=mapping,
            partition=partition,
            stage=stage,
            stats_json=json.dumps({"counts": counts}),
            finished_at=dt.datetime.now(dt.UTC),
        )
    )


def test_two_runs_keep_both_in_the_history_each_with_its_own_window(
    ledger: Ledger, tmp_path: Path
) -> None:
    with ledger.session() as s:
        _stage(s, "crm", "2026-11-19", "extract", rows_out=10, rejected=1)
        _stage(s, "crm", "2026-11-19", "transform", rejected=2, duplicates_merged=1)
        _stage(s, "crm", "2026-11-19", "profiles", rows_out=8, unchanged=1, superseded=0)
        first = _batch(s, "b1", rows=8, state="complete")
        s.add(RowOutcome(batch_id=first.id, identity="c7", status="requeued", reason="HTTP 502"))
        _batch(s, "b1-retry", rows=1, state="queued", parent=first.id)
    one = record_run(
        ledger, destination="target", destination_key=KEY, mappings=["crm"], run_id="run-1"
    )
    assert one.mappings == {
        "crm": {
            "read": 11,
            "rejected": 2,
            "merged": 1,
            "unchanged": 1,
            "outdated": 0,
            "changed": 8,
        }
    }
    # the retry's row is counted once: queued with its first batch, settled by the retry
    assert (one.account["queued"], one.account["confirmed"], one.account["failed"]) == (8, 7, 0)

    with ledger.session() as s:
        _stage(s, "crm", "2026-11-20", "extract", rows_out=3)
        _stage(s, "crm", "2026-11-20", "profiles", rows_out=2, superseded=1)
        retry = s.scalars(select(Batch).where(Batch.batch_key == "b1-retry")).one()
        retry.state = "dead"
        s.add(RowOutcome(batch_id=retry.id, identity="c7", status="dead", reason="out"))
    two = record_run(
        ledger, destination="target", destination_key=KEY, mappings=["crm"], run_id="run-2"
    )
    # only what happened since the first record
    assert two.mappings["crm"]["read"] == 3 and two.mappings["crm"]["outdated"] == 1
    assert (two.account["queued"], two.account["confirmed"]) == (0, 0)
    assert (two.account["failed"], two.account["dead"]) == (1, 1)
    assert two.totals == {"queued": 8, "submitted": 8, "confirmed": 7, "failed": 1, "dead": 1}

    report = write_report(ledger, "target", tmp_path / "reports", 1000, ["crm"])
    assert [r.run_id for r in report.runs] == ["run-2", "run-1"]
    assert report.runs[1].mappings == one.mappings  # the first run is kept as it was
    page = Path(str(report.html_path)).read_text(encoding="utf-8")
    assert page.index('href="http://127.0.0.1:3000/runs/run-2"') < page.index(
        'href="http://127.0.0.1:3000/runs/run-1"'
    )


def test_a_poll_that_found_nothing_new_is_not_kept(ledger: Ledger) -> None:
    with ledger.session() as s:
        _stage(s, "crm", "2026-11-19", "extract", rows_out=4)
    record_run(ledger, destination="target", destination_key=KEY, mappings=["crm"], run_id="r1")
    quiet = record_run(
        ledger, destination="target", destination_key=KEY, mappings=["crm"], run_id="poll"
    )
    assert quiet.quiet and quiet.read == 0
    assert [r.run_id for r in run_history(ledger, "target")] == ["r1"]
    with ledger.session() as s:  # the quiet run's window stays open for the next one
        _stage(s, "crm", "2026-11-20", "extract", rows_out=2)
    later = record_run(
        ledger, destination="target", destination_key=KEY, mappings=["crm"], run_id="r2"
    )
    assert later.read == 2 and not later.quiet
    assert [r.run_id for r in run_history(ledger, "target")] == ["r2", "r1"]


def test_a_report_run_again_in_the_same_run_replaces_its_record(ledger: Ledger) -> None:
    with ledger.session() as s:
        _stage(s, "crm", "2026-11-19", "extract", rows_out=4)
    record_run(ledger, destination="target", destination_key=KEY, mappings=["crm"], run_id="r")
    again = record_run(
        ledger, destination="target", destination_key=KEY, mappings=["crm"], run_id="r"
    )
    assert again.mappings["crm"]["read"] == 4  # counted against the record before it: none
    assert [r.run_id for r in run_history(ledger, "target")] == ["r"]


def test_reasons_are_grouped_with_counts_and_examples(ledger: Ledger) -> None:
    with ledger.session() as s:
        s.add_all(
            Reject(
                mapping="pos",
                partition="2026-11-19",
                source_ref=f"pos.csv:{line}",
                identity=f"C{line:05d}",
                param="amount",
                reason="'12,50' is not a decimal number",
            )
            for line in range(2, 191)
        )
        s.add(Reject(mapping="pos", partition="2026-11-19", source_ref="pos.csv:500", reason="x"))
        s.add(Reject(mapping="other", partition="2026-11-19", source_ref="o.csv:2", reason="y"))
        batch = _batch(s, "b1", rows=5, state="complete")
        s.add_all(
            RowOutcome(batch_id=batch.id, identity=f"P{i}", status="dead", reason="too large")
            for i in range(5)
        )
    run = record_run(
        ledger, destination="target", destination_key=KEY, mappings=["pos"], run_id="r"
    )
    grouped = [(r.kind, r.mapping, r.param, r.reason, r.count) for r in run.reasons]
    assert grouped == [
        ("rejected", "pos", "amount", "'12,50' is not a decimal number", 189),
        ("rejected", "pos", "", "x", 1),
        ("dead", "", "", "too large", 5),
    ]
    assert run.reasons[0].examples == (
        "C00002 (pos.csv:2)",
        "C00003 (pos.csv:3)",
        "C00004 (pos.csv:4)",
    )
    assert run.reasons[2].examples == ("P0", "P1", "P2")
    assert run.reasons_left_off == 0
    # the record as the ledger keeps it reads back the same
    assert run_history(ledger, "target")[0].reasons == run.reasons


def test_the_rarest_reasons_beyond_the_kept_groups_are_counted_not_listed(ledger: Ledger) -> None:
    with ledger.session() as s:
        s.add_all(
            Reject(mapping="pos", partition="d", source_ref=f"p:{i}", reason=f"reason {i:03d}")
            for i in range(REASON_GROUPS + 2)
        )
    run = record_run(
        ledger, destination="target", destination_key=KEY, mappings=["pos"], run_id="r"
    )
    assert len(run.reasons) == REASON_GROUPS and run.reasons_left_off == 2


def test_every_value_from_data_is_escaped_in_the_page(
    sqlite_ledger_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    ledger = Ledger(sqlite_ledger_url)
    ledger.create_all()
    evil = '<script>alert("x")</script>'
    with ledger.session() as s:
        s.add(
            Reject(
                mapping="pos",
                partition="d",
                source_ref='"><img src=x onerror=alert(1)>',
                identity=evil,
                param="<b>p</b>",
                reason=evil,
            )
        )
        batch = _batch(s, "b1", rows=1, state="complete")
        s.add(RowOutcome(batch_id=batch.id, identity=evil, status="dead", reason=evil))
    record_run(
        ledger,
        destination="target",
        destination_key=KEY,
        mappings=["pos"],
        run_id='"><script>run</script>',
    )
    report = write_report(ledger, "target", tmp_path / "r", 1000, ["pos"])
    page = Path(str(report.html_path)).read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page and "<b>p" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "/runs/&#34;&gt;&lt;script&gt;run&lt;/script&gt;" in page


def test_run_links_leave_credentials_out() -> None:
    assert run_url("http://127.0.0.1:3000", "abc") == "http://127.0.0.1:3000/runs/abc"
    assert run_url("https://ops:s3cret@dagster.example.com/", "abc") == (
        "https://dagster.example.com/runs/abc"
    )
    assert run_url("http://u:p@host:8080/prefix", "r1") == "http://host:8080/prefix/runs/r1"


@pytest.mark.parametrize(
    ("top", "step"), [(0, 1), (4, 1), (7, 2), (10, 2), (11, 5), (173, 50), (1_000_000, 200_000)]
)
def test_nice_step(top: int, step: int) -> None:
    assert nice_step(top) == step


def test_the_chart_has_labelled_axes_a_legend_and_one_group_per_run(
    sqlite_ledger_url: str,  # noqa: F811
) -> None:
    ledger = Ledger(sqlite_ledger_url)
    ledger.create_all()
    for i, rows in enumerate((116, 173)):
        with ledger.session() as s:
            _batch(s, f"b{i}", rows=rows, state="complete")
        record_run(
            ledger,
            destination="target",
            destination_key=KEY,
            mappings=[],
            run_id=f"run-{i}",
            ended_at=T0 + dt.timedelta(hours=i),
        )
    chart = runs_chart(run_history(ledger, "target"))
    assert chart is not None
    assert chart.y_label == "profiles (rows)" and chart.x_label.startswith("delivery run")
    assert [t.label for t in chart.y_ticks] == ["0", "50", "100", "150", "200"]
    assert [(t.label, t.note) for t in chart.x_ticks] == [
        ("11-20 01:00", "run-0"),
        ("11-20 02:00", "run-1"),
    ]
    assert [name for name, _ in chart.legend] == ["queued", "confirmed", "failed"]
    # oldest on the left; a bar's height is its value on the y axis's scale
    queued = [b for b in chart.bars if " queued: " in b.title]
    assert queued[0].x < queued[1].x
    assert queued[1].height / queued[0].height == pytest.approx(173 / 116)
    assert runs_chart([]) is None


def test_the_records_table_is_where_the_history_is_kept(ledger: Ledger) -> None:
    record_run(ledger, destination="target", destination_key=KEY, mappings=[], run_id="a")
    record_run(
        ledger, destination="copernica", destination_key="copernica:1", mappings=[], run_id="a"
    )
    with ledger.session() as s:
        kept = sorted((r.destination_key, r.run_id) for r in s.scalars(select(DeliveryRun)))
    assert kept == [("copernica:1", "a"), (KEY, "a")]
    assert [r.destination_key for r in run_history(ledger, "copernica")] == ["copernica:1"]


def test_a_dagster_url_that_is_no_web_address_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONNECTOR_DAGSTER_URL", "ops:pw@dagster.internal:3000")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "CONNECTOR_DAGSTER_URL: " in str(raised.value)
    assert "pw" not in str(raised.value)
    monkeypatch.setenv("CONNECTOR_DAGSTER_URL", "https://dagster.example.com/")
    assert load_settings().dagster_url == "https://dagster.example.com"
