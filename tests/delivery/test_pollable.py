"""Which batches a poll can advance: the rule the status_poll sensor and `poll` share."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from connector.delivery.poll import awaiting_status, pollable_batch_count
from connector.ledger import BATCH_STATES, SUBMITTED, Batch, Ledger


def _batch(account: str, state: str) -> Batch:
    return Batch(
        batch_key=f"{account}-{state}",
        mapping="crm_customers",
        partition="2026-11-21",
        destination=account.split(":")[0],
        destination_key=account,
        path="/x",
        manifest_path="/y",
        sha256=f"{account}-{state}".ljust(64, "0")[:64],
        row_count=3,
        byte_size=10,
        state=state,
    )


def test_only_submitted_batches_await_a_status(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_all()
    accounts = ("target:demo", "copernica:shop")
    try:
        with ledger.session() as session:
            session.add_all(
                [_batch(account, state) for account in accounts for state in BATCH_STATES]
            )
        assert pollable_batch_count(ledger) == len(accounts)
        with ledger.session() as session:
            found = session.execute(
                select(Batch.destination_key, Batch.state).where(awaiting_status("target:demo"))
            ).all()
        assert found == [("target:demo", SUBMITTED)]
    finally:
        ledger.dispose()
