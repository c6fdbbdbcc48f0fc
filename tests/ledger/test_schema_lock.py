"""Two processes starting at once on a new ledger (two syncs of a fresh install) both bring
it to the current schema: the schema changes run one after the other under a lock."""

from __future__ import annotations

import multiprocessing as mp

from sqlalchemy import create_engine, inspect, text

from connector.ledger import Ledger

PROCESSES = 4


def _open(url: str, how: str, start: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    ledger = Ledger(url)
    try:
        ledger.upgrade() if how == "upgrade" else ledger.create_all()
    finally:
        ledger.dispose()


def test_processes_migrating_a_new_ledger_at_once_all_succeed(ledger_url: str) -> None:
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_open, args=(ledger_url, "upgrade" if i % 2 else "create_all", start))
        for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    engine = create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            assert "batches" in inspect(conn).get_table_names()
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert len(versions) == 1, versions
