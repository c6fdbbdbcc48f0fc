"""Concurrency, crash recovery, expired statuses and ambiguous submits, against the sandbox."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import select, update

from connector import delivery
from connector.ledger import Batch, Delivered, RowOutcome, claim_batches
from connector.sandbox.testing import running_sandbox

from .helpers import make_ledger, make_settings, profiles, queue, run_until_settled


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


def test_rows_held_back_for_a_later_partition_keep_their_attempts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # max_attempts=1: a hold-back that counted as an attempt would dead-letter rows that were
    # never sent and that no newer batch carries
    with running_sandbox(calls_per_minute=100_000) as sb:
        settings = make_settings(tmp_path, sb.url, max_attempts=1)
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(4), partition="2026-06-01")
        queue(settings, ledger, profiles(4).slice(0, 1), partition="2026-06-02")
        run_until_settled(settings, ledger)
        with ledger.session() as s:
            outcomes = {(o.identity, o.status) for o in s.scalars(select(RowOutcome))}
            delivered = {d.identity for d in s.scalars(select(Delivered))}
            held = [b for b in s.scalars(select(Batch)) if b.partition == "2026-06-01"]
        assert ("cust-00000", "superseded") in outcomes
        assert not [o for o in outcomes if o[1] == "dead"], outcomes
        assert delivered == {f"cust-{i:05d}" for i in range(4)}
        # the re-queued rows kept the held-back batch's attempt
        assert sorted(b.attempt for b in held) == [1, 1]
