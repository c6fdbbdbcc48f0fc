"""Delivery end to end against the real sandbox server."""

from __future__ import annotations

import random

import pyarrow.compute as pc
import pytest
from sqlalchemy import select

from connector import delivery
from connector.destinations.http import RetryPolicy
from connector.destinations.target import TargetClient
from connector.ledger import Batch, Delivered, RowOutcome
from connector.outbox import build as outbox_build
from connector.sandbox.testing import running_sandbox

from .helpers import make_ledger, make_settings, profiles, queue, run_until_settled


def fast_client(settings) -> TargetClient:  # type: ignore[no-untyped-def]
    policy = RetryPolicy(
        max_attempts=8, base_delay_s=0.01, max_delay_s=0.1, max_total_s=30, rng=random.Random(3)
    )
    return TargetClient(settings.target, retry=policy)


def stored_target(sb, ident: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with TargetClient(make_settings_for(sb).target) as c:
        return c.fetch_profile(ident, "thirdPartyId") or {}


def make_settings_for(sb):  # type: ignore[no-untyped-def]
    import pathlib
    import tempfile

    return make_settings(pathlib.Path(tempfile.mkdtemp()), sb.url)


def assert_landed_value_by_value(sb, table) -> None:  # type: ignore[no-untyped-def]
    with TargetClient(make_settings_for(sb).target) as c:
        for row in table.to_pylist():
            stored = c.fetch_profile(row["_identity"], "thirdPartyId")
            assert stored is not None, row["_identity"]
            for name in ("tier", "city"):
                if row[name] not in (None, ""):
                    assert stored.get(name) == row[name], (row["_identity"], name)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_all_profiles_delivered_and_read_back(tmp_path, version: str) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(calls_per_minute=100_000, processing_delay_s=0.05) as sb:
        settings = make_settings(
            tmp_path, sb.url, target={"api_version": version, "max_batch_rows": 40}
        )
        ledger = make_ledger(settings)
        table = profiles(120)
        if version == "v1":
            # v1 never creates profiles: create them first through v2, then update through v1
            seed = make_settings(tmp_path / "seed", sb.url, target={"api_version": "v2"})
            seed_ledger = make_ledger(seed)
            queue(seed, seed_ledger, profiles(110, tricky=False))
            run_until_settled(seed, seed_ledger)
        queue(settings, ledger, table)
        with fast_client(settings) as client:
            run_until_settled(settings, ledger, client=client)
        sb.wait_idle()
        with ledger.session() as s:
            delivered = {d.identity for d in s.scalars(select(Delivered))}
            outcomes = {o.identity: o for o in s.scalars(select(RowOutcome))}
        if version == "v2":
            assert delivered == set(table.column("_identity").to_pylist())
            assert_landed_value_by_value(sb, table)
        else:
            missing = {f"cust-{i:05d}" for i in range(110, 120)}
            assert delivered == set(table.column("_identity").to_pylist()) - missing
            assert {i for i, o in outcomes.items() if o.status == "not_found"} == missing
            found = table.filter(pc.invert(pc.is_in(table.column("_identity"), pa_array(missing))))
            assert_landed_value_by_value(sb, found)


def pa_array(values):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    return pa.array(sorted(values), pa.string())


def test_copernica_delivery_read_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(copernica_databases={"shop": ["customerid", "tier", "city"]}) as sb:
        settings = make_settings(tmp_path, sb.url)
        ledger = make_ledger(settings)
        table = profiles(60).append_column("nickname", pq_str(60))
        queue(settings, ledger, table, destination="copernica", identity_type="customerid")
        results = run_until_settled(settings, ledger, destination="copernica")
        drained = results[0]
        # the database lacks the field: the API drops it silently, the drain warns of it
        assert len(drained.notes) == 1 and drained.notes[0].endswith(
            "dropped by the API): nickname"
        )
        from connector.destinations.copernica import CopernicaClient

        with CopernicaClient(settings.copernica, match_field="customerid") as c:
            for row in table.to_pylist():
                found = c.find_profiles(row["_identity"])
                assert len(found) == 1, row["_identity"]
                for name in ("tier", "city"):
                    if row[name] not in (None, ""):
                        assert found[0][name] == row[name]
        with ledger.session() as s:
            assert len(list(s.scalars(select(Delivered)))) == 60


def pq_str(n: int):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    return pa.array([f"nick{i}" for i in range(n)], pa.string())


def test_faults_every_row_ends_delivered_or_dead(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Faults on, and a second day's changes queued while the first day's batches are still
    failing and being re-queued: every profile ends confirmed with its current values (the
    second day's over the first's) at the sandbox, or dead with a reason. Target v2's
    override rule is on in the sandbox: a row that lacked a param would lose it there."""
    faults = dict(
        fail_rate=0.3, throttle_rate=0.2, drop_rate=0.05, stuck_rate=0.1, seed=7, retry_after_s=0
    )
    with running_sandbox(calls_per_minute=100_000, processing_delay_s=0.05, **faults) as sb:
        settings = make_settings(
            tmp_path,
            sb.url,
            max_attempts=4,
            target={"max_batch_rows": 25, "pending_timeout_h": 0.0003, "verify_sample": 3},
        )
        ledger = make_ledger(settings)
        table = profiles(300)
        queue(settings, ledger, table)
        day2 = table.filter(pc.equal(pc.bit_wise_and(pa_indices(300), 3), 0)).select(["_identity"])
        n2 = day2.num_rows
        day2 = day2.append_column(
            "tier", pa_strings([f"day2 & {i}/+%" if i % 2 else None for i in range(n2)])
        ).append_column("city", pa_strings([None if i % 2 else f"Town {i}" for i in range(n2)]))
        with fast_client(settings) as client:
            for _ in range(3):  # some first-day batches sent, failed, re-queued; others not yet
                delivery.drain(settings, ledger, destination="target", client=client)
                delivery.poll(settings, ledger, destination="target", client=client, wait=False)
            queue(settings, ledger, day2, partition="2026-06-02")
            run_until_settled(settings, ledger, client=client, rounds=400)
        with ledger.session() as s:
            delivered = {d.identity: d.digest for d in s.scalars(select(Delivered))}
            dead = {
                o.identity: o.reason
                for o in s.scalars(select(RowOutcome).where(RowOutcome.status == "dead"))
            }
            states = {b.state for b in s.scalars(select(Batch))}
        injected = sb.snapshot()["faults"]["injected"]
        kinds = {kind for per_key in injected.values() for kind in per_key}
        assert {"drop", "fail_500", "fail_502"} <= kinds or len(kinds) >= 3, injected
        ids = set(table.column("_identity").to_pylist())
        assert ids <= set(delivered) | set(dead), ids - set(delivered) - set(dead)
        assert all(reason for reason in dead.values())
        assert states <= {"complete", "superseded", "dead"}
        # the current row of every profile that never died is the one confirmed
        current = current_table(table, day2)
        _, rows = outbox_build.current_rows(settings, ledger, "target", sorted(ids))
        digests = dict(
            zip(rows.column("_identity").to_pylist(), rows.column("_digest").to_pylist())
        )
        alive = ids - set(dead)
        assert {i: delivered[i] for i in alive} == {i: digests[i] for i in alive}
        # and what is stored as delivered really is at the sandbox: the current values
        sb.wait_idle()
        sb.set_faults(fail_rate=0, throttle_rate=0, drop_rate=0)
        confirmed_current = {i for i in ids if delivered.get(i) == digests[i]}
        assert alive <= confirmed_current
        landed = current.filter(pc.is_in(current.column("_identity"), pa_array(confirmed_current)))
        assert_landed_value_by_value(sb, landed)


def pa_indices(n: int):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    return pa.array(range(n), pa.int64())


def pa_strings(values):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    return pa.array(values, pa.string())


def current_table(day1, day2):  # type: ignore[no-untyped-def]
    """Each profile's current values: the second day's non-empty ones over the first's."""
    later = {r["_identity"]: r for r in day2.to_pylist()}
    rows = []
    for row in day1.to_pylist():
        newer = later.get(row["_identity"], {})
        rows.append({k: newer.get(k) or v for k, v in row.items()})
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=day1.schema)


def test_quota_keeps_the_rest_queued_with_a_projection(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(calls_per_minute=100_000) as sb:
        # 1.2M rows against a 1M quota, scaled down 1000x: 1200 rows, quota 1000
        settings = make_settings(tmp_path, sb.url, daily_quota=1000, target={"max_batch_rows": 100})
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(1200, tricky=False))
        now = __import__("datetime").datetime(2026, 6, 1, 23, 0, tzinfo=__import__("datetime").UTC)
        submitted = 0
        with fast_client(settings) as client:
            for _ in range(5):
                r = delivery.drain(settings, ledger, destination="target", client=client, now=now)
                submitted += r.rows_submitted
                delivery.poll(
                    settings,
                    ledger,
                    destination="target",
                    client=client,
                    now=now,
                    wait=True,
                    timeout_s=20,
                )
        assert submitted == 1000
        assert r.stopped_because == "quota"
        assert (r.queued_rows, r.quota_left_today) == (200, 0)
        assert (
            r.projected_drain_date.isoformat() == "2026-06-03"
        )  # 01:00 June 2nd local -> next day
        # the next local day the rest goes
        later = now + __import__("datetime").timedelta(days=1)
        with fast_client(settings) as client:
            r2 = delivery.drain(settings, ledger, destination="target", client=client, now=later)
        assert r2.rows_submitted == 200 and r2.queued_rows == 0


def test_off_peak_window_respected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    with running_sandbox(calls_per_minute=100_000) as sb:
        settings = make_settings(tmp_path, sb.url, off_peak="22:00-06:00")
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(10))
        noon = dt.datetime(2026, 3, 29, 12, 0, tzinfo=settings.tz)
        r = delivery.drain(settings, ledger, destination="target", now=noon)
        assert r.stopped_because == "window" and not r.submitted
        assert r.next_window == dt.datetime(2026, 3, 29, 22, 0, tzinfo=settings.tz)
        assert sb.snapshot()  # nothing reached the sandbox
        forced = delivery.drain(settings, ledger, destination="target", now=noon, force=True)
        assert forced.rows_submitted == 10


def test_in_flight_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(calls_per_minute=100_000) as sb:
        settings = make_settings(tmp_path, sb.url, target={"max_batch_rows": 2, "max_in_flight": 3})
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(20))
        r = delivery.drain(settings, ledger, destination="target")
        assert len(r.submitted) == 3 and r.stopped_because == "in_flight"


def test_token_raw_ampersand_status_urls_and_copernica_v4(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(
        calls_per_minute=100_000, token="tok-123", status_url_raw_ampersand=True
    ) as sb:
        settings = make_settings(tmp_path, sb.url, target={"token": "tok-123"})
        ledger = make_ledger(settings)
        table = profiles(12)
        queue(settings, ledger, table)
        run_until_settled(settings, ledger)
        with ledger.session() as s:
            assert len(list(s.scalars(select(Delivered)))) == 12
        wrong = make_settings(tmp_path / "wrong", sb.url, target={"token": "nope"})
        wrong_ledger = make_ledger(wrong)
        queue(wrong, wrong_ledger, profiles(2, prefix="w"))
        r = delivery.drain(wrong, wrong_ledger, destination="target")
        assert r.stopped_because == "auth" and not r.submitted and not r.rejected
        with wrong_ledger.session() as s:
            assert [(b.state, b.attempt) for b in s.scalars(select(Batch))] == [("queued", 1)]
        # Copernica: a refused token leaves the batch queued too
        cop = make_settings(tmp_path / "cop", sb.url, copernica={"access_token": "nope"})
        cop_ledger = make_ledger(cop)
        queue(cop, cop_ledger, profiles(3), destination="copernica", identity_type="customerid")
        rc = delivery.drain(cop, cop_ledger, destination="copernica")
        assert rc.stopped_because == "auth"
        ok = make_settings(
            tmp_path / "cop",
            sb.url,
            copernica={"access_token": "tok-123", "api_version": "v4", "base_url": f"{sb.url}/v4"},
        )
        rc2 = delivery.drain(ok, cop_ledger, destination="copernica")
        assert rc2.rows_confirmed == 3


def test_in_flight_window_and_status_url_on_another_host(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(calls_per_minute=100_000) as sb:
        # the status URL names "localhost" while we post to 127.0.0.1: followed as given
        sb.state.options.status_base_url = sb.url.replace("127.0.0.1", "localhost")
        settings = make_settings(tmp_path, sb.url)
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(5))
        run_until_settled(settings, ledger)
        with ledger.session() as s:
            urls = [b.status_url for b in s.scalars(select(Batch))]
        assert all(u and u.startswith("http://localhost:") and "m2Node=00" in u for u in urls)
