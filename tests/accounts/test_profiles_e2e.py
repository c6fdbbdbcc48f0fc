"""A profile at an account, end to end: two mappings (SQL and CSV) feeding one Target client
or Copernica database, against the sandbox with Target v2's "consecutive batches override"
rule on (its default), faults on; every profile read back, every param of both mappings
equal to the source's latest value."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.destinations.copernica import CopernicaClient
from connector.destinations.target import TargetClient
from connector.reporting import account_profiles
from connector.sandbox.testing import running_sandbox

from .world import World, make_ledger

DAYS = ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"]
FAULTS = dict(fail_rate=0.1, drop_rate=0.1, drop_when="after", stuck_rate=0.1)


def _fill(world: World, *, seed: int, people: int = 40) -> list[str]:
    """Random days of CRM updates and POS receipts: some identities in both sources, some in
    one; repeats within a day; empty values; returns every identity."""
    rng = random.Random(seed)
    ids = [f"C{i:04d}" for i in range(people)]
    crm_only, pos_only = set(ids[:10]), set(ids[10:20])
    for day in DAYS:
        crm_rows, pos_rows = [], []
        for ident in rng.sample(ids, 18):
            if ident in pos_only:
                continue
            email = f"{ident.lower()}.{day[-2:]}@example.com" if rng.random() < 0.8 else None
            tier = rng.choice(["gold", "silver", "", "bronze & co", "a,b"])
            crm_rows.append((ident, email, tier))
        for ident in rng.sample(ids, 22) + rng.sample(ids, 4):  # a few receipts twice
            if ident in crm_only:
                continue
            store = rng.choice(["Zürich HB", "Utrecht, Hoog Catharijne", "", "100% Store"])
            amount = f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}"
            pos_rows.append((ident, store, amount if rng.random() < 0.9 else ""))
        world.crm(day, crm_rows)
        world.pos(day, pos_rows)
    return ids


def _read_back(world: World, settings: Any, ident: str) -> dict[str, str]:
    if world.destination == "target":
        with TargetClient(settings.target) as client:
            return client.fetch_profile(ident, world.id_type) or {}
    with CopernicaClient(settings.copernica, match_field=world.id_type) as client:
        found = client.find_profiles(ident)
    assert len(found) <= 1, found
    return {k: v for k, v in (found[0] if found else {}).items() if v != ""}


def _assert_every_profile_current(world: World, settings: Any, ledger: Any, ids: list[str]) -> None:
    managed = ("email", "tier", "lastStore", "lastAmount")
    for ident in ids:
        expected = world.expected_values(ident)
        if not expected:
            continue
        stored = _read_back(world, settings, ident)
        held = {p: stored[p] for p in managed if p in stored}
        assert held == expected, ident
        (profile,) = account_profiles(ledger, ident)
        assert profile.current, (ident, "the ledger's confirmed row is not the current one")


def _faults_seen(sb: Any) -> dict[str, int]:
    """Faults the sandbox injected, by kind (fail_500 counts as fail), over every client."""
    seen: dict[str, int] = {}
    for per_key in sb.snapshot()["faults"]["injected"].values():
        for kind, n in per_key.items():
            seen[kind.split("_")[0]] = seen.get(kind.split("_")[0], 0) + n
    return seen


def _retried_batches(ledger: Any) -> int:
    from connector.ledger import Batch

    with ledger.session() as s:
        return s.query(Batch).filter(Batch.attempt > 1).count()


def _overridden(sb: Any) -> int:
    return int(
        sum(c.get("v2_overridden_values", 0) for c in sb.snapshot()["target"]["clients"].values())
    )


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_two_mappings_one_target_client_every_param_lands_under_faults(
    tmp_path: Path, version: str
) -> None:
    with running_sandbox(seed=11, processing_delay_s=0.02, calls_per_minute=100_000) as sb:
        world = World(tmp_path, sb.url, api_version=version)
        ids = _fill(world, seed=5)
        settings = world.settings(target={"max_batch_rows": 15})
        ledger = make_ledger(settings)
        if version == "v1":
            # v1 never creates profiles: every profile exists before (made through v2)
            body = "batch=thirdPartyId,seeded\n" + "\n".join(f"{i},yes" for i in ids)
            httpx.post(sb.target_url("demo", "v2"), content=body.encode()).raise_for_status()
            sb.wait_idle()
        sb.set_faults(**FAULTS)
        # two nights one at a time, then two days together (a catch-up)
        world.sync(settings, ledger, DAYS[:1])
        world.sync(settings, ledger, DAYS[1:2])
        world.sync(settings, ledger, DAYS[2:])
        sb.set_faults(fail_rate=0, drop_rate=0, stuck_rate=0)
        sb.wait_idle()
        # the faults did happen, and some rows went out again as a later attempt
        assert _faults_seen(sb).keys() >= {"fail", "drop"}, _faults_seen(sb)
        assert _retried_batches(ledger) > 0
        _assert_every_profile_current(world, settings, ledger, ids)
        # every row carried the whole profile: the override rule dropped nothing
        assert _overridden(sb) == 0


def test_two_mappings_one_copernica_database_every_field_lands_under_faults(
    tmp_path: Path,
) -> None:
    fields = ["customerid", "email", "tier", "lastStore", "lastAmount"]
    with running_sandbox(seed=3, copernica_databases={"shop": fields}) as sb:
        world = World(tmp_path, sb.url, destination="copernica", id_type="customerid")
        ids = _fill(world, seed=8)
        settings = world.settings()
        ledger = make_ledger(settings)
        sb.set_faults(fail_rate=0.1, drop_rate=0.1, drop_when="after")
        world.sync(settings, ledger, DAYS[:2])
        world.sync(settings, ledger, DAYS[2:])
        sb.set_faults(fail_rate=0, drop_rate=0)
        assert _faults_seen(sb).keys() >= {"fail", "drop"}, _faults_seen(sb)
        _assert_every_profile_current(world, settings, ledger, ids)


def _batches_sent(ledger: Any) -> list[Any]:
    from connector.ledger import Batch

    with ledger.session() as s:
        return list(s.query(Batch).filter(Batch.submitted_at.isnot(None)).order_by(Batch.id))


@pytest.mark.parametrize("grouping", ["together", "nightly", "reverse backfill"])
def test_a_on_day_one_and_b_on_day_two_ends_with_both(tmp_path: Path, grouping: str) -> None:
    """The issue's case: the profile's end state does not depend on how days were grouped."""
    with running_sandbox(processing_delay_s=0.01, calls_per_minute=100_000) as sb:
        world = World(tmp_path, sb.url)
        world.pos("2026-12-04", [("X1", "small", "")])
        world.pos("2026-12-05", [("X1", "", "small2")])
        settings = world.settings()
        ledger = make_ledger(settings)
        runs = {
            "together": [["2026-12-04", "2026-12-05"]],
            "nightly": [["2026-12-04"], ["2026-12-05"]],
            "reverse backfill": [["2026-12-05"], ["2026-12-04"]],
        }[grouping]
        for days in runs:
            world.sync(settings, ledger, days)
        sb.wait_idle()
        stored = _read_back(world, settings, "X1")
        assert stored.get("lastStore") == "small"
        assert stored.get("lastAmount") == "small2"
        assert _overridden(sb) == 0


def test_a_newer_day_is_never_overwritten_by_an_older_one(tmp_path: Path) -> None:
    with running_sandbox(processing_delay_s=0.01, calls_per_minute=100_000) as sb:
        world = World(tmp_path, sb.url)
        world.pos("2026-12-04", [("X1", "old store", "1.00")])
        world.pos("2026-12-05", [("X1", "new store", "")])
        settings = world.settings()
        ledger = make_ledger(settings)
        world.sync(settings, ledger, ["2026-12-05"])
        world.sync(settings, ledger, ["2026-12-04"])  # a backfill, after
        sb.wait_idle()
        stored = _read_back(world, settings, "X1")
        assert (stored.get("lastStore"), stored.get("lastAmount")) == ("new store", "1.00")


@pytest.mark.parametrize("requeue", ["before day two", "after day two"])
def test_a_change_in_each_mapping_with_a_requeue_between(tmp_path: Path, requeue: str) -> None:
    """Mapping A changes the profile on day 1, its batch is stuck and re-queued; mapping B
    changes it on day 2: the destination ends with both, current."""
    with running_sandbox(processing_delay_s=0.01, calls_per_minute=100_000) as sb:
        world = World(tmp_path, sb.url)
        world.crm("2026-12-01", [("X1", "x1@example.com", "gold"), ("X2", "x2@example.com", "")])
        world.pos("2026-12-02", [("X1", "Zürich HB", "12.50")])
        settings = world.settings()
        ledger = make_ledger(settings)
        world.prepare(settings, ledger, ["2026-12-01"])
        world.build(settings, ledger)
        sb.set_faults(stuck_rate=1.0)
        world.submit(settings, ledger)  # the service will call this batch stuck
        sb.wait_idle()
        sb.set_faults(stuck_rate=0)
        if requeue == "before day two":
            world.poll(settings, ledger)  # stuck: re-queued as attempt 2, day one's values
            world.prepare(settings, ledger, ["2026-12-02"])
        else:
            world.prepare(settings, ledger, ["2026-12-02"])
            world.poll(settings, ledger)  # re-queued now: with day two's values too
        world.build(settings, ledger)
        world.deliver(settings, ledger)
        sb.wait_idle()
        assert _read_back(world, settings, "X1") == {
            "email": "x1@example.com",
            "tier": "gold",
            "lastStore": "Zürich HB",
            "lastAmount": "12.50",
        }
        assert _read_back(world, settings, "X2") == {"email": "x2@example.com"}
        (profile,) = account_profiles(ledger, "X1")
        assert profile.current
        rows = [b.row_count for b in _batches_sent(ledger)]
        if requeue == "after day two":
            # the re-queue carried the current profile: the build had nothing more to send
            assert rows == [2, 2], rows
        else:
            # the re-queue carried day one's profile; the build then sent X1 again, whole
            assert rows == [2, 2, 1], rows


def test_changes_of_two_mappings_in_one_cycle_go_out_as_one_row(tmp_path: Path) -> None:
    with running_sandbox(processing_delay_s=0.01, calls_per_minute=100_000) as sb:
        world = World(tmp_path, sb.url)
        world.crm("2026-12-01", [("X1", "x1@example.com", "gold"), ("X2", "x2@example.com", "")])
        world.pos("2026-12-01", [("X1", "Zürich HB", "12.50"), ("X3", "Bern", "3.00")])
        settings = world.settings()
        ledger = make_ledger(settings)
        world.prepare(settings, ledger, ["2026-12-01"])
        built = world.build(settings, ledger)
        assert (built.candidates, built.rows, len(built.batches)) == (3, 3, 1)
        assert built.param_names == ["email", "tier", "lastStore", "lastAmount"]
        assert built.batches[0].mapping == "crm+pos"
        # a second build, and a re-run of the day, find nothing new to send
        assert world.build(settings, ledger).rows == 0
        world.prepare(settings, ledger, ["2026-12-01"])
        assert world.build(settings, ledger).rows == 0


def test_the_report_shows_one_row_per_profile_with_both_mappings_params(tmp_path: Path) -> None:
    from connector import reporting as reports

    with running_sandbox(processing_delay_s=0.01, calls_per_minute=100_000) as sb:
        world = World(tmp_path, sb.url)
        world.crm("2026-12-01", [("X1", "x1@example.com", "gold"), ("X2", "x2@example.com", "")])
        world.pos("2026-12-01", [("X1", "Zürich HB", "12.50")])
        settings = world.settings()
        ledger = make_ledger(settings)
        world.sync(settings, ledger, ["2026-12-01"])
        report = reports.write_report(ledger, "target", tmp_path / "reports", 1000, ["crm", "pos"])
    assert [r["_identity"] for r in report.profiles_sample] == ["X1", "X2"]
    first = report.profiles_sample[0]
    assert (first["email"], first["tier"], first["lastStore"], first["lastAmount"]) == (
        "x1@example.com",
        "gold",
        "Zürich HB",
        "12.50",
    )
    assert report.html_path is not None
    page = Path(report.html_path).read_text(encoding="utf-8")
    assert "mappings crm+pos" in page and "Zürich HB" in page and "x1@example.com" in page


def test_a_profile_is_in_one_batch_on_its_way_at_a_time(tmp_path: Path) -> None:
    """A new row for a profile waits while the service still processes an older batch that
    carries it, so an out-of-order application could never leave the older values."""
    from connector import delivery
    from connector.ledger import Batch

    with running_sandbox(processing_delay_s=3600, calls_per_minute=100_000) as sb:
        world = World(tmp_path, sb.url)
        world.crm("2026-12-01", [("X1", "old@example.com", "gold")])
        world.crm("2026-12-02", [("X1", "new@example.com", ""), ("X2", "x2@example.com", "")])
        settings = world.settings()
        ledger = make_ledger(settings)
        world.prepare(settings, ledger, ["2026-12-01"])
        world.build(settings, ledger)
        world.submit(settings, ledger)  # processing for an hour at the service
        world.prepare(settings, ledger, ["2026-12-02"])
        world.build(settings, ledger)
        with world.client(settings) as client:
            waiting = delivery.drain(settings, ledger, destination="target", client=client)
        assert waiting.stopped_because == "overlap" and waiting.submitted == []
        with ledger.session() as s:
            states = [b.state for b in s.query(Batch).order_by(Batch.id)]
        assert states == ["submitted", "queued"]
        sb.advance_clock(3601)  # the first batch completes
        world.poll(settings, ledger)
        world.submit(settings, ledger)  # now the second goes
        with ledger.session() as s:
            states = [b.state for b in s.query(Batch).order_by(Batch.id)]
        assert states == ["complete", "submitted"]
        sb.advance_clock(3601)
        world.deliver(settings, ledger)
        sb.wait_idle()
        assert _read_back(world, settings, "X1") == {"email": "new@example.com", "tier": "gold"}
        assert _read_back(world, settings, "X2") == {"email": "x2@example.com"}
