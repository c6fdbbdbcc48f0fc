"""Real Dagster runs of the sample mappings against the sandbox: sync, rerun, backfill, window."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from pathlib import Path

import dagster as dg
import httpx
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from connector.cli import main
from connector.defs.resources import ConnectorResource
from connector.defs.runner import run_sync
from connector.exit_codes import ExitCode
from connector.ledger import IN_FLIGHT_STATES, Batch, Delivered, RowOutcome, destination_key
from connector.partitions import check_in_range, expand_partitions
from connector.profiles import store as profile_store
from connector.reporting import SyncSummary
from connector.sandbox.testing import running_sandbox
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


def test_a_day_outside_the_partitions_names_the_range() -> None:
    first, last = dt.date(2026, 1, 1), dt.date(2026, 12, 5)
    check_in_range(["2026-01-01", "2026-12-05"], first, last, "Europe/Amsterdam")
    with pytest.raises(ValueError) as raised:
        check_in_range(["2026-12-05", "2026-12-06"], first, last, "Europe/Amsterdam")
    assert str(raised.value).startswith(
        "partition 2026-12-06 does not exist: the partitions are 2026-01-01..2026-12-05"
    )


def test_sync_of_a_day_to_come_is_a_usage_error_not_a_traceback(workdir: Path) -> None:
    # the day after tomorrow has ended in no time zone (this machine's today may have ended
    # in one ahead of it)
    today = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    result = CliRunner().invoke(main, ["sync", "--partition", today, "--dry-run"])
    assert result.exit_code == 2, result.output
    assert f"partition {today} does not exist: the partitions are" in result.output
    assert "Traceback" not in result.output and "Dagster" not in result.output


def _new_batches(connector: ConnectorResource, first_id: int) -> list[Batch]:
    with connector.ledger().session() as session:
        return list(session.scalars(select(Batch).where(Batch.id >= first_id)))


def _next_batch_id(connector: ConnectorResource) -> int:
    with connector.ledger().session() as session:
        return (session.scalar(select(func.max(Batch.id))) or 0) + 1


def _store_identities(connector: ConnectorResource, destination: str) -> set[str]:
    """Every identity the account's profile stores hold (its mappings' union)."""
    settings, ledger = connector.settings(), connector.ledger()
    ids: set[str] = set()
    for ref in profile_store.stores(ledger, destination_key(destination, settings)):
        ids |= set(pq.read_table(ref.path, columns=["_identity"]).column(0).to_pylist())
    return ids


def test_backfill_of_three_days_twice_delivers_nothing_new_the_second_time(
    workdir: Path, sandbox
) -> None:
    connector = make_connector(workdir, sandbox.url, force_window=True)
    with dg.instance_for_test() as instance:
        first = run_sync(connector, partitions=[DAYS], instance=instance)
        assert first.ok, first.failures
        assert sum(c["read"] for c in first.per_mapping.values()) > 0
        assert set(first.per_account) == {"target", "copernica"}
        settings, ledger = connector.settings(), connector.ledger()
        with ledger.session() as session:
            delivered = {
                key: set(
                    session.scalars(
                        select(Delivered.identity).where(Delivered.destination_key == key)
                    )
                )
                for key in (destination_key(d, settings) for d in ("target", "copernica"))
            }
        for destination, counts in first.per_account.items():
            # one row per profile of the account, whatever number of its mappings changed it
            profiles = _store_identities(connector, destination)
            assert counts["changed"] == counts["queued"] == len(profiles) > 0, counts
            assert counts["confirmed"] == counts["queued"] and counts["failed"] == 0, counts
            assert delivered[destination_key(destination, settings)] == profiles
        # both target mappings fed profiles; some profiles were fed by both in one row each
        target = first.per_account["target"]
        fed = first.per_mapping["crm_customers"]["changed"]
        assert target["changed"] < fed + first.per_mapping["pos_purchases"]["changed"]
        accepted = _accepted_batches(sandbox.url)
        assert accepted > 0
        assert first.reports and all(Path(p).exists() for p in first.reports.values())

        second = run_sync(connector, partitions=[DAYS], instance=instance)
        assert second.ok, second.failures
        assert sum(c["changed"] for c in second.per_mapping.values()) == 0
        for counts in second.per_account.values():
            assert counts["changed"] == counts["queued"] == counts["submitted"] == 0, counts
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
    for destination, counts in summary.per_account.items():
        assert counts["queued"] == counts["changed"] > 0, (destination, counts)
        assert counts["submitted"] == counts["confirmed"] == 0, (destination, counts)
    assert _accepted_batches(sandbox.url) == 0


def test_dry_run_writes_no_batches(workdir: Path, sandbox) -> None:
    connector = make_connector(workdir, sandbox.url, force_window=True)
    with dg.instance_for_test() as instance:
        summary = run_sync(connector, partitions=["2026-11-21"], dry_run=True, instance=instance)
    assert summary.ok, summary.failures
    assert sum(c["changed"] for c in summary.per_mapping.values()) > 0
    with connector.ledger().session() as session:
        assert session.scalars(select(Batch)).all() == []
    # nor does it touch the profile stores: a real sync afterwards still finds every change
    settings, ledger = connector.settings(), connector.ledger()
    for destination in ("target", "copernica"):
        assert profile_store.stores(ledger, destination_key(destination, settings)) == []
    assert _accepted_batches(sandbox.url) == 0


def _check_identities(connector: ConnectorResource, summary: SyncSummary, first_id: int) -> None:
    """per mapping: read = rejected + merged + unchanged + outdated + changed;
    per account: changed = already_sent + queued, queued = confirmed + failed + superseded +
    not final, over the rows this sync queued (from the ledger: the batches it wrote and
    their retries, not retries of an earlier sync's batches)."""
    for name, c in summary.per_mapping.items():
        accounted = c["rejected"] + c["merged"] + c["unchanged"] + c["outdated"] + c["changed"]
        assert c["read"] == accounted, (name, c)
    own: dict[int, Batch] = {}
    for b in sorted(_new_batches(connector, first_id), key=lambda b: b.id):
        if b.parent_id is None or b.parent_id in own:
            own[b.id] = b
    with connector.ledger().session() as session:
        superseded_rows = dict(
            session.execute(
                select(Batch.destination, func.count())
                .join(RowOutcome, RowOutcome.batch_id == Batch.id)
                .where(Batch.id.in_(list(own)), RowOutcome.status == "superseded")
                .group_by(Batch.destination)
            ).all()
        )
    for destination, c in summary.per_account.items():
        assert c["changed"] == c["already_sent"] + c["queued"], (destination, c)
        pending = sum(
            b.row_count
            for b in own.values()
            if b.destination == destination and b.state in IN_FLIGHT_STATES
        )
        superseded = superseded_rows.get(destination, 0)
        assert (c["superseded"], c["not_final"]) == (superseded, pending), (destination, c)
        assert c["queued"] == c["confirmed"] + c["failed"] + superseded + pending, (destination, c)


def _receipt_of_one(path: Path) -> tuple[str, list[str]]:
    """A customer with exactly one receipt in ``path``, all its fields filled: (header, line)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = list(csv.reader(lines))
    header, body = rows[0], rows[1:]
    who = header.index("customer_id")
    counts = Counter(r[who] for r in body)
    for line, row in zip(lines[1:], body, strict=True):
        if counts[row[who]] == 1 and all(row[header.index(c)] for c in POS_FIELDS):
            return lines[0], [line]
    raise AssertionError(f"{path}: no customer with one complete receipt")


POS_FIELDS = ("receipt_id", "store", "purchased_at", "amount", "items")


def test_summary_accounts_for_every_row_read(workdir: Path, sandbox) -> None:
    connector = make_connector(workdir, sandbox.url, force_window=True)
    pos = workdir / "sample_exports" / "pos"
    with dg.instance_for_test() as instance:
        first_id = _next_batch_id(connector)
        first = run_sync(connector, partitions=[DAYS], instance=instance)
        assert first.ok, first.failures
        _check_identities(connector, first, first_id)

        # a customer's receipt of the 21st is overridden on the 22nd and back on the 23rd; a
        # new customer buys on the 23rd. Days 19-21 run again: their rows are unchanged or
        # outdated by later days, the store changes three times, the account by one profile
        # (the other one's row is the one already confirmed).
        header, (line,) = _receipt_of_one(pos / "pos_2026-11-21.csv")
        row = next(csv.reader([line]))
        who = header.split(",").index("customer_id")
        other = [
            "R-22",
            row[who],
            "Elsewhere",
            "2026-11-22 10:00:00",
            "1.00",
            "EUR",
            "1",
            "",
        ]
        assert header == "receipt_id,customer_id,store,purchased_at,amount,currency,items,comment"
        with (pos / "pos_2026-11-22.csv").open("w", encoding="utf-8", newline="") as fh:
            fh.write(header + "\n")
            csv.writer(fh, lineterminator="\n").writerow(other)
        new_customer = "R-23,C-NEW-1,Delft,2026-11-23 09:00:00,2.50,EUR,2,"
        (pos / "pos_2026-11-23.csv").write_text(f"{header}\n{line}\n{new_customer}\n")

        second_id = _next_batch_id(connector)
        second = run_sync(connector, partitions=["2026-11-19..2026-11-23"], instance=instance)
        assert second.ok, second.failures
        _check_identities(connector, second, second_id)
        pos_counts = second.per_mapping["pos_purchases"]
        assert pos_counts["changed"] == 3, pos_counts  # 22nd, back on the 23rd, the new one
        assert pos_counts["outdated"] > 0, pos_counts  # the 19th and 20th after the 21st
        assert second.per_mapping["crm_customers"]["changed"] == 0
        target = second.per_account["target"]
        assert (target["changed"], target["already_sent"], target["queued"]) == (2, 1, 1)
        assert target["confirmed"] == 1, target
        (sent,) = _new_batches(connector, second_id)
        assert pq.read_table(sent.manifest_path).column("_identity").to_pylist() == ["C-NEW-1"]
        assert second.per_account["copernica"]["changed"] == 0


def test_a_retry_of_an_earlier_syncs_batch_is_not_counted_as_this_syncs_rows(
    workdir: Path,
) -> None:
    """A sync's poll re-queues a batch an earlier sync sent (the service gave up on it after
    that sync ended): those rows were queued and submitted by the earlier sync, so this one,
    which changed nothing, counts none of them, and its identities still hold."""
    with running_sandbox(processing_delay_s=60) as sb:
        connector = make_connector(workdir, sb.url, force_window=True, poll_timeout_s=0.0)
        with dg.instance_for_test() as instance:
            first = run_sync(connector, partitions=["2026-11-21"], instance=instance)
            assert first.ok, first.failures
            target = first.per_account["target"]
            assert target["queued"] == target["submitted"] > 0 and target["confirmed"] == 0
            open_ids = {b.id for b in _new_batches(connector, 1) if b.destination == "target"}
            for accepted in sb.state.target.batches["demo"]:
                accepted.stuck = True  # the service reports them stuck from now on

            second_id = _next_batch_id(connector)
            second = run_sync(connector, partitions=["2026-11-21"], instance=instance)
            assert second.ok, second.failures
            retries = [b for b in _new_batches(connector, second_id) if b.parent_id in open_ids]
            assert retries and all(b.state == "queued" for b in retries)
            _check_identities(connector, second, second_id)
            assert second.per_account["target"] == dict.fromkeys(second.per_account["target"], 0)
            # they are the earlier sync's rows this one polled: not final, so exit code 5
            earlier = second.earlier["target"]
            assert earlier["rows"] == earlier["not_final"] == sum(b.row_count for b in retries)
            assert second.exit_code == ExitCode.NOT_FINAL


def test_materialize_one_mapping_partition_with_the_resource_handed_in(
    workdir: Path, sandbox
) -> None:
    """The Dagster testing idiom: `materialize(assets, partition_key=..., resources=...)`.

    A mapping's assets end in its profile store; the account's outbox asset writes the files."""
    from connector.defs.assets import (
        build_destination_assets,
        build_mapping_assets,
        daily_partitions,
        mapping_key,
    )
    from connector.mapping import load_mapping

    connector = make_connector(workdir, sandbox.url)
    settings, ledger = connector.settings(), connector.ledger()
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
        event = instance.get_latest_materialization_event(
            dg.AssetKey(["crm_customers", "profile_changes"])
        )
        assert event is not None
        changes = event.asset_materialization.metadata  # type: ignore[union-attr]
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert checks == {"reject_rate": True, "deleted_at_source": True}
        store = profile_store.find_store(ledger, destination_key("target", settings), mapping.name)
        assert store is not None and store.version == changes["store_version"].value
        # a first merge: every identity of the day is new to the store, so changed
        assert changes["dagster/row_count"].value == store.identities > 0
        assert changes["store_identities"].value == store.identities
        with ledger.session() as session:
            assert session.scalars(select(Batch)).all() == []  # no files before the outbox

        upstream = [mapping_key(mapping, "profile_changes")]
        destination = build_destination_assets("target", upstream, "target-test")
        outbox_key = dg.AssetKey(["target", "outbox"])
        built = dg.materialize(
            [*assets, *destination],
            selection=[outbox_key],
            resources={"connector": connector},
            instance=instance,
        )
        assert built.success
        event = instance.get_latest_materialization_event(outbox_key)
    assert event is not None
    outbox = event.asset_materialization.metadata  # type: ignore[union-attr]
    checks = {c.check_name: c.passed for c in built.get_asset_check_evaluations()}
    assert checks == {"within_caps": True, "identities_valid": True}
    assert outbox["changed_profiles"].value == store.identities
    assert outbox["already_sent"].value == 0
    assert outbox["mappings"].value == "crm_customers"
    with ledger.session() as session:
        queued = session.scalars(select(Batch)).all()
    assert {(b.state, b.mapping, b.destination) for b in queued} == {
        ("queued", "crm_customers", "target")
    }
    assert sum(b.row_count for b in queued) == outbox["dagster/row_count"].value == store.identities
    assert _accepted_batches(sandbox.url) == 0  # only the outbox ran: nothing submitted
