"""Concurrency, crash recovery, expired statuses and ambiguous submits, against the sandbox."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import select, update

from connector import delivery
from connector.destinations.target import TargetClient
from connector.ledger import Batch, Delivered, RowOutcome, claim_batches
from connector.outbox import build as outbox_build
from connector.outbox import manifests
from connector.sandbox.testing import running_sandbox
from connector.settings import SettingsError

from .helpers import make_ledger, make_settings, profiles, queue, run_until_settled, stage


def accepted_bodies(sb) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.sha256 for b in sb.state.target.batches.get("demo", [])]


def test_two_drains_at_once_never_submit_the_same_batch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(calls_per_minute=100_000, latency_ms=5) as sb:
        settings = make_settings(tmp_path, sb.url, target={"max_batch_rows": 5})
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(150))  # 30 batches, in-flight limit 10
        results: list[delivery.DrainResult] = []
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(15):
                    results.append(delivery.drain(settings, ledger, destination="target"))
                    delivery.poll(settings, ledger, destination="target", wait=True, timeout_s=10)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        submitted = [i for r in results for i in r.submitted]
        assert len(submitted) == len(set(submitted)) == 30
        bodies = accepted_bodies(sb)
        assert len(bodies) == len(set(bodies)) == 30
        with ledger.session() as s:
            assert {b.state for b in s.scalars(select(Batch))} == {"complete"}
            assert len(list(s.scalars(select(Delivered)))) == 150


def test_stale_claims_are_recovered(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(calls_per_minute=100_000) as sb:
        settings = make_settings(tmp_path, sb.url, target={"max_batch_rows": 10})
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(20))
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        never_sent, maybe_sent = claim_batches(
            ledger, "target:demo", 2, "dead-process", now=long_ago
        )
        with ledger.session() as s:  # the second died between "send started" and the answer
            s.execute(update(Batch).where(Batch.id == maybe_sent.id).values(submitted_at=long_ago))
        result = delivery.drain(settings, ledger, destination="target")
        assert result.recovered == 2
        run_until_settled(settings, ledger)
        with ledger.session() as s:
            batches = {b.id: b for b in s.scalars(select(Batch))}
            reason = s.scalar(select(RowOutcome.reason).where(RowOutcome.batch_id == maybe_sent.id))
        assert batches[never_sent.id].state == "complete" and batches[never_sent.id].attempt == 1
        assert batches[maybe_sent.id].state == "superseded"
        retry = [b for b in batches.values() if b.parent_id == maybe_sent.id]
        assert len(retry) == 1 and retry[0].attempt == 2 and retry[0].state == "complete"
        assert "outcome unknown" in (reason or "")
        assert len(accepted_bodies(sb)) == 2  # the interrupted one was never really sent here


def test_the_claim_lease_is_the_setting(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A claim older than ``claim_lease_s`` is taken back; a younger one is left to its owner."""
    monkeypatch.setenv("CONNECTOR_CLAIM_LEASE_S", "60")
    with running_sandbox(calls_per_minute=100_000) as sb:
        settings = make_settings(tmp_path, sb.url, target={"max_batch_rows": 10})
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(20))
        now = dt.datetime.now(dt.UTC)
        (old,) = claim_batches(
            ledger, "target:demo", 1, "dead-process", now=now - dt.timedelta(seconds=90)
        )
        (young,) = claim_batches(
            ledger, "target:demo", 1, "live-process", now=now - dt.timedelta(seconds=30)
        )
        result = delivery.drain(settings, ledger, destination="target", now=now)
        assert result.recovered == 1
        assert result.submitted == [old.id]  # back in the queue, then sent
        with ledger.session() as s:
            batches = {b.id: b for b in s.scalars(select(Batch))}
        assert batches[young.id].state == "claimed"
        assert batches[young.id].claimed_by == "live-process"
        # past the lease, the younger claim is taken back too
        later = now + dt.timedelta(seconds=31)
        assert delivery.drain(settings, ledger, destination="target", now=later).recovered == 1


def test_the_claim_lease_must_be_a_positive_number_of_seconds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for bad in (0, -1):
        with pytest.raises(SettingsError, match="CONNECTOR_CLAIM_LEASE_S"):
            make_settings(tmp_path, "http://127.0.0.1:9", claim_lease_s=bad)
    assert make_settings(tmp_path, "http://127.0.0.1:9").claim_lease_s == 15 * 60


def test_expired_statuses_are_resolved_by_read_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(calls_per_minute=100_000, status_window=1, processing_delay_s=0.01) as sb:
        settings = make_settings(tmp_path, sb.url, target={"max_batch_rows": 4, "max_in_flight": 5})
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(20))
        drained = delivery.drain(settings, ledger, destination="target")
        assert len(drained.submitted) == 5
        sb.wait_idle()
        polled = delivery.poll(settings, ledger, destination="target")
        assert len(polled.expired) == 4
        assert polled.rows_confirmed == 20 and polled.verified_ok == polled.verified
        with ledger.session() as s:
            assert len(list(s.scalars(select(Delivered)))) == 20


def test_ambiguous_submits_are_requeued_once_per_attempt_then_dead(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(calls_per_minute=100_000, drop_rate=1.0, drop_when="after") as sb:
        settings = make_settings(tmp_path, sb.url, max_attempts=2)
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(6))
        result = delivery.drain(settings, ledger, destination="target")
        assert len(result.ambiguous) == 2  # attempt 1, then its retry attempt 2
        assert len(accepted_bodies(sb)) == 2  # each attempt reached the service exactly once
        with ledger.session() as s:
            states = sorted((b.attempt, b.state) for b in s.scalars(select(Batch)))
            dead = list(s.scalars(select(RowOutcome).where(RowOutcome.status == "dead")))
        assert states == [(1, "superseded"), (2, "dead")]
        assert len(dead) == 6 and all("attempts exhausted" in (o.reason or "") for o in dead)


def test_stuck_batches_are_requeued(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(calls_per_minute=100_000, stuck_rate=1.0) as sb:
        settings = make_settings(tmp_path, sb.url, max_attempts=3, target={"pending_timeout_h": 1})
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(5))
        delivery.drain(settings, ledger, destination="target")
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        polled = delivery.poll(settings, ledger, destination="target", now=later)
        assert len(polled.stuck) == 1 and polled.rows_requeued == 5
        sb.set_faults(stuck_rate=0.0)
        run_until_settled(settings, ledger)
        with ledger.session() as s:
            assert len(list(s.scalars(select(Delivered)))) == 5


def _day(rows: Mapping[str, tuple[str | None, str | None]]) -> pa.Table:
    """A day's export: identity -> (tier, city); None is an empty field."""
    return pa.table(
        {
            "_identity": pa.array(list(rows), pa.string()),
            "tier": pa.array([t for t, _ in rows.values()], pa.string()),
            "city": pa.array([c for _, c in rows.values()], pa.string()),
        }
    )


def _sent_rows(batch: Batch) -> dict[str, dict[str, str | None]]:
    """identity -> the params as written in the batch file."""
    table = manifests.with_values(batch.path, manifests.read(batch.manifest_path))
    return {r["_identity"]: {"tier": r["tier"], "city": r["city"]} for r in table.to_pylist()}


def test_a_requeue_sends_current_values_and_leaves_newer_batches_rows_to_them(
    tmp_path: Path,
) -> None:
    """An old batch fails after newer values were learnt: its re-queue sends each profile as it
    stands now, and rows a newer batch already carries are superseded, not sent again (an old
    row landing after the newer one would overwrite newer values at the destination)."""
    with running_sandbox(calls_per_minute=100_000, stuck_rate=1.0) as sb:
        settings = make_settings(tmp_path, sb.url, max_attempts=3, target={"pending_timeout_h": 1})
        ledger = make_ledger(settings)
        ids = [f"cust-{i:05d}" for i in range(4)]
        day1 = {i: (f"t{n}", f"City {n}") for n, i in enumerate(ids)}
        (old,) = queue(settings, ledger, _day(day1), partition="2026-06-01")
        delivery.drain(settings, ledger, destination="target")  # submitted; the service sits on it
        # day 2: newer values of two profiles go out in a newer batch (each row whole)
        (newer,) = queue(
            settings,
            ledger,
            _day({ids[0]: ("gold", None), ids[1]: (None, "Utrecht")}),
            partition="2026-06-02",
        )
        assert _sent_rows(newer) == {
            ids[0]: {"tier": "gold", "city": "City 0"},
            ids[1]: {"tier": "t1", "city": "Utrecht"},
        }
        # day 3: a newer value of a third profile is in its store, not yet in any batch
        stage(settings, ledger, _day({ids[2]: ("platinum", None)}), partition="2026-06-03")

        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        polled = delivery.poll(settings, ledger, destination="target", now=later)
        assert polled.stuck == [old.id] and polled.rows_requeued == 2

        with ledger.session() as s:
            outcomes = {
                o.identity: o
                for o in s.scalars(select(RowOutcome).where(RowOutcome.batch_id == old.id))
            }
            (retry,) = s.scalars(select(Batch).where(Batch.parent_id == old.id)).all()
        assert {i: o.status for i, o in outcomes.items()} == {
            ids[0]: "superseded",
            ids[1]: "superseded",
            ids[2]: "requeued",
            ids[3]: "requeued",
        }
        assert newer.batch_key in (outcomes[ids[0]].reason or "")
        # the re-queue carries the profiles' current values, not the failed row's copy
        assert retry.attempt == 2 and retry.state == "queued"
        assert _sent_rows(retry) == {
            ids[2]: {"tier": "platinum", "city": "City 2"},
            ids[3]: {"tier": "t3", "city": "City 3"},
        }

        sb.set_faults(stuck_rate=0.0)
        run_until_settled(settings, ledger)
        # the day-3 change is on its way already: the next build queues nothing
        rebuilt = outbox_build.build(settings, ledger, "target")
        assert (rebuilt.candidates, rebuilt.unchanged, rebuilt.batches) == (1, 1, [])
        sb.wait_idle()
        with ledger.session() as s:
            states = {b.id: b.state for b in s.scalars(select(Batch))}
            delivered = {d.identity: d.batch_id for d in s.scalars(select(Delivered))}
            later_batches = [b for b in s.scalars(select(Batch).where(Batch.id > newer.id))]
        assert states == {old.id: "superseded", newer.id: "complete", retry.id: "complete"}
        assert delivered == {ids[0]: newer.id, ids[1]: newer.id, ids[2]: retry.id, ids[3]: retry.id}
        # no batch after the newer one carried the profiles it holds
        assert all(not {ids[0], ids[1]} & set(_sent_rows(b)) for b in later_batches)
        with TargetClient(settings.target) as client:
            stored = {i: client.fetch_profile(i, "thirdPartyId") for i in ids}
        assert stored == {
            ids[0]: {"tier": "gold", "city": "City 0"},
            ids[1]: {"tier": "t1", "city": "Utrecht"},
            ids[2]: {"tier": "platinum", "city": "City 2"},
            ids[3]: {"tier": "t3", "city": "City 3"},
        }
