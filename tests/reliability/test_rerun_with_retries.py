"""A re-run of a day while its rows wait for a retry (issue: no row lost, item 1).

The README advises running ``connector sync`` for a day again after a failure. Before the
profile model, that re-run deleted the queued retry (attempt 2), rebuilt attempt 1, found
its content already sent once and queued nothing: the rows were lost with exit code 0. Here,
for each way a batch can need a retry (stuck at Target, the submit failing, retries used
up), the day is prepared and its outboxes built again while the retry waits, the fault is
lifted, and delivery runs to the end: every profile holds its latest source values at the
sandbox (read back), and no batch is left open.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from connector import delivery
from connector.ledger import QUEUED, Batch, Ledger, RowOutcome
from connector.sandbox.testing import running_sandbox

from . import invariant
from .harness import FakeClock, Figures, deliver, make_clients, prepare_all
from .world import World, make_settings

CUSTOMERS = 24


def _batches(ledger: Ledger) -> list[Batch]:
    with ledger.session() as s:
        return list(s.scalars(select(Batch).order_by(Batch.id)))


def _dead_rows(ledger: Ledger) -> list[tuple[int, str, str | None]]:
    with ledger.session() as s:
        return [
            (o.batch_id, o.identity, o.reason)
            for o in s.scalars(select(RowOutcome).where(RowOutcome.status == "dead"))
        ]


# stuck: Target accepts the batch and never completes it (re-queued after the pending
# timeout); per-row: Copernica refuses every PUT (the rows re-queued as the next attempt);
# dead: the same with two attempts only, so the rows are dead-lettered before the re-run
FAULTS = {
    "stuck": ({"stuck_rate": 1.0}, 4),
    "per-row": ({"fail_rate": 1.0}, 4),
    "dead": ({"fail_rate": 1.0}, 2),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_rerun_of_a_day_keeps_its_retries(tmp_path: Path, fault: str) -> None:
    world = World(tmp_path / "world", seed=11, customers=CUSTOMERS)
    day = world.night(0, crm_changes=CUSTOMERS, pos_rows=10)
    clock = FakeClock()
    faults, attempts = FAULTS[fault]
    with running_sandbox(processing_delay_s=0.0, seed=3, clock=clock, **faults) as sb:
        settings = make_settings(
            tmp_path,
            sb.url,
            mappings_dir=world.root / "mappings",
            pending_timeout_h=0.01,  # a stuck batch is given up on after 36 s (fake clock)
            max_attempts=attempts,
        )
        ledger = Ledger(settings.ledger_url)
        ledger.create_all()
        clients = make_clients(settings, clock, ledger)
        try:
            prepare_all(world, settings, ledger, day)
            if fault == "per-row":  # one batch: its failed rows wait as the next attempt
                delivery.drain(
                    settings,
                    ledger,
                    destination="copernica",
                    now=clock.now,
                    client=clients.copernica,
                    max_batches=1,
                )
            else:
                rounds = 8 if fault == "dead" else 2  # stuck: once given up on, not again
                deliver(settings, ledger, clients, clock, Figures(), rounds=rounds)
            before = _batches(ledger)
            dead = _dead_rows(ledger)
            if fault == "dead":
                assert dead and all(reason for _, _, reason in dead), dead
            else:
                waiting = [b for b in before if b.state == QUEUED and b.attempt > 1]
                assert waiting, [(b.id, b.destination_key, b.state, b.attempt) for b in before]
            # the operator's re-run of the day, while the retries wait
            rebuilt = prepare_all(world, settings, ledger, day)
            after = {b.id: b for b in _batches(ledger)}
            assert set(after) >= {b.id for b in before}, "a re-run deleted batches"
            assert _dead_rows(ledger) == dead, "a re-run changed dead-lettered rows"
            sb.set_faults(stuck_rate=0.0, fail_rate=0.0)
            left = deliver(settings, ledger, clients, clock, Figures(), rounds=20)
            report = invariant.check(
                ledger,
                settings,
                sandbox=sb,
                expected=None if dead else world.expected,
                settled=True,
            )
            summary = [r.summary() for r in rebuilt]
        finally:
            clients.close()
            ledger.dispose()
    assert left == 0, summary
    assert report.ok, f"{summary}\n{report}"
    if fault == "dead":
        # dead-lettered, with their reason, and counted as such: not lost, not hidden
        dead_profiles = {ident for _, ident, _ in dead}
        assert report.profile_fates.get("dead") == len(dead_profiles), str(report)
    else:
        assert set(report.profile_fates) == {"landed"}, str(report)
