"""Soak: simulated nights of CRM changes and POS files against a sandbox with every fault on,
a quarter of the nights' processes dying at a random batch state change (before or after its
commit), and re-runs of random earlier days by an operator.

The clock is simulated (no sleeping); the invariant is checked after every night, and once more
after a final fault-free settle, when every profile at each account must hold, read back, its
mappings' latest source values (under the sandbox's v2 "consecutive batches override" rule).
"""

from __future__ import annotations

import contextlib
import gc
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connector.ledger import BATCH_STATES, Batch, Ledger, RowOutcome
from connector.sandbox.testing import running_sandbox

from . import invariant
from .harness import (
    FakeClock,
    Figures,
    SimulatedCrash,
    crash_at_state_change,
    deliver,
    make_clients,
    open_batches,
    prepare_all,
    run_night,
)
from .world import World, make_settings

FAULTS = dict(
    fail_rate=0.08,
    throttle_rate=0.08,
    drop_rate=0.05,
    stuck_rate=0.05,
    latency_ms=1,
)
QUOTA = 45  # below a night's first load: the backlog carries over to the next day
CRASH_SHARE = 0.25  # nights whose process dies at a batch state change (random state, timing)
RERUN_SHARE = 0.2  # nights after which an earlier day is prepared and delivered again


def _restart(
    ledger: Ledger, clients: Any, settings: Any, clock: FakeClock, seed: int
) -> tuple[Ledger, Any]:
    """What a crashed process leaves: its connections and clients gone; a new one opens."""
    clients.close()
    gc.collect()  # the crashed unit of work's connection goes back to the pool
    ledger.dispose()
    ledger = Ledger(settings.ledger_url)
    return ledger, make_clients(settings, clock, ledger, seed=seed)


def soak(tmp_path: Path, nights: int, customers: int, seed: int, recorder) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    clock = FakeClock()
    world = World(tmp_path / "world", seed=seed, customers=customers)
    with running_sandbox(
        clock=clock, seed=seed, daily_quota=QUOTA, processing_delay_s=20, **FAULTS
    ) as sb:
        settings = make_settings(
            tmp_path, sb.url, daily_quota=QUOTA, mappings_dir=world.root / "mappings"
        )
        ledger = Ledger(settings.ledger_url)
        ledger.create_all()
        clients = make_clients(settings, clock, ledger, seed=seed)
        figures = Figures()
        figures.retry_sleeps_s = 0.0
        reports = []
        rng = random.Random(seed)
        crashes: list[str] = []
        reruns: list[str] = []
        try:
            for night in range(nights):
                sb.set_faults(drop_when="after" if night % 2 else "before")
                crash = None
                if rng.random() < CRASH_SHARE:  # this night's process dies at a state change
                    crash = crash_at_state_change(
                        ledger,
                        rng.choice(BATCH_STATES),
                        rng.choice(["before", "after"]),
                        rng.randint(1, 3),
                    )
                try:
                    with crash or contextlib.nullcontext():
                        run_night(world, settings, ledger, clients, clock, figures, night)
                except SimulatedCrash as exc:
                    crashes.append(f"night {night}: {exc}")
                    # a new process, the next night, past the dead one's claim lease
                    ledger, clients = _restart(ledger, clients, settings, clock, seed)
                    clock.to_next_day()
                if night and rng.random() < RERUN_SHARE:  # an operator re-runs an earlier day
                    day = world.day(rng.randrange(night))
                    reruns.append(day)
                    figures.add_builds(prepare_all(world, settings, ledger, day))
                    deliver(settings, ledger, clients, clock, figures)
                report = invariant.check(ledger, settings, sandbox=sb, expected=world.expected)
                reports.append(report)
                assert report.ok, f"night {night} (crashes {crashes}): {report}"
            # a fault-free settle: everything must land with its latest values. The quota lets
            # at least one batch through a day (max_batch_rows <= QUOTA), so the backlog is
            # gone within as many days as it has batches (a night's profiles are one batch of
            # ~27 rows and two do not fit 45: the long soak keeps ~10 days of backlog)
            sb.set_faults(fail_rate=0, throttle_rate=0, drop_rate=0, stuck_rate=0, latency_ms=0)
            assert settings.target.max_batch_rows <= QUOTA, "a batch would never fit a day"
            backlog = open_batches(ledger)
            settle_days = 0
            for _ in range(backlog + 10):
                settle_days += 1
                if deliver(settings, ledger, clients, clock, figures) == 0:
                    break
                clock.to_next_day()  # quota of a new day
            final = invariant.check(
                ledger, settings, sandbox=sb, expected=world.expected, settled=True
            )
            assert final.ok, f"final: {final}"
            # the transform outputs and the stores were found and read (a renamed output or
            # store would check nothing)
            assert final.updates_rows > 0 and final.profiles > 0
            # a row runs out of attempts only after max_attempts real sends of it
            with ledger.session() as s:
                dead = s.scalars(select(RowOutcome).where(RowOutcome.status == "dead")).all()
                sends = {b.id: b for b in s.scalars(select(Batch))}
            for outcome in dead:
                chain = [sends[outcome.batch_id]]
                while chain[-1].parent_id is not None:
                    chain.append(sends[chain[-1].parent_id])
                sent = [b for b in chain if b.submitted_at is not None]
                assert len(sent) >= settings.max_attempts, (outcome.identity, outcome.reason)
        finally:
            clients.close()
            ledger.dispose()
    figures.retry_sleeps_s = round(clock.slept, 1)
    summary = {
        "scenario": f"soak, {nights} simulated nights, all faults on",
        "nights": nights,
        "source_rows_written": world.rows_written,
        "faults_injected": final.sandbox_faults,
        "faults_total": sum(final.sandbox_faults.values()),
        "backlog_batches_at_settle": backlog,
        "settle_days": settle_days,
        "connector": figures.__dict__,
        "final": final.as_dict(),
        "crashes": crashes,
        "reruns_of_earlier_days": reruns,
        "invariant_held_every_night": all(r.ok for r in reports) and final.ok,
        "wall_s": round(time.monotonic() - started, 1),
    }
    recorder(f"soak_{nights}_nights", summary)
    print(f"\nsoak figures ({nights} nights):\n{json.dumps(summary, indent=2, default=str)}")
    assert final.sandbox_faults, "the sandbox injected no faults: the soak proved nothing"
    assert crashes and reruns, "no crash or no re-run: the soak proved less than it says"
    assert final.delivered > 0 and final.retried_rows > 0


def test_soak_twenty_nights(tmp_path: Path, figures_recorder) -> None:  # type: ignore[no-untyped-def]
    soak(tmp_path, nights=20, customers=40, seed=11, recorder=figures_recorder)


@pytest.mark.soak
def test_soak_long(tmp_path: Path, figures_recorder) -> None:  # type: ignore[no-untyped-def]
    soak(tmp_path, nights=90, customers=400, seed=5, recorder=figures_recorder)
