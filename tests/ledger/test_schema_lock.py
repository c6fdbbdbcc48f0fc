"""Two processes starting at once on a new ledger (two syncs of a fresh install) both bring
it to the current schema: the schema changes run one after the other under a lock."""

from __future__ import annotations

import multiprocessing as mp

from sqlalchemy import create_engine, inspect, text

from connector.ledger import Ledger
from connector.ledger.store import head_revision

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


def _upgrade(url: str, start: object, applied: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    ledger = Ledger(url)
    try:
        applied.put(ledger.upgrade())  # type: ignore[attr-defined]
    finally:
        ledger.dispose()


def test_processes_upgrading_a_new_postgresql_ledger_at_once_apply_the_migrations_once(
    fresh_postgres_url: str,
) -> None:
    """Pods starting together after a release: one applies every migration, the others find
    them applied; none fails."""
    ctx = mp.get_context("spawn")
    start, applied = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_upgrade, args=(fresh_postgres_url, start, applied))
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    start.set()
    results = [applied.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    winners = [r for r in results if r]
    assert len(winners) == 1, results
    assert winners[0][0] == "0001" and winners[0][-1] == head_revision(), winners
    ledger = Ledger(fresh_postgres_url)
    try:
        assert ledger.revision() == head_revision()
    finally:
        ledger.dispose()
