"""Claims: two real OS processes never take the same batch (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from connector.ledger import (
    CLAIMED,
    QUEUED,
    Batch,
    Ledger,
    claim_batches,
    counts_by_state,
    register_batch,
)

DEST = "target:demo"


def _seed(ledger: Ledger, n: int, *, dest: str = DEST, mapping: str = "crm") -> list[int]:
    ids = []
    for i in range(n):
        b = register_batch(
            ledger,
            batch_key=f"{mapping}-{dest}-{i:05d}",
            mapping=mapping,
            partition="2026-01-02",
            destination="target",
            destination_key=dest,
            path=f"/outbox/{i}.batch",
            manifest_path=f"/outbox/{i}.manifest.parquet",
            sha256=f"{mapping}{dest}{i:058d}"[-64:],
            row_count=10,
            byte_size=100,
        )
        ids.append(b.id)
    return ids


def _claimer(url: str, owner: str, start, out) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(url)
    start.wait()
    mine = []
    while True:
        got = claim_batches(ledger, DEST, 3, owner)
        if not got:
            break
        mine += [b.id for b in got]
    out.put((owner, mine))
    ledger.dispose()


def test_two_processes_never_claim_the_same_batch(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.upgrade()
    ids = _seed(ledger, 150)
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(ledger_url, f"p{i}", start, out)) for i in range(2)]
    for p in procs:
        p.start()
    start.set()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    a, b = results["p0"], results["p1"]
    assert not set(a) & set(b)
    assert sorted(a + b) == sorted(ids)
    assert len(a + b) == len(set(a + b))
    with ledger.session() as session:
        owners = {bt.id: bt.claimed_by for bt in session.query(Batch)}
    assert all(owners[i] == "p0" for i in a) and all(owners[i] == "p1" for i in b)
    assert counts_by_state(ledger) == {CLAIMED: {"batches": 150, "rows": 1500, "bytes": 15000}}
    ledger.dispose()


def test_claims_are_oldest_first_and_scoped(sqlite_ledger_url: str) -> None:
    ledger = Ledger(sqlite_ledger_url)
    ledger.create_all()
    ids = _seed(ledger, 5)
    other = _seed(ledger, 2, dest="target:other", mapping="pos")
    got = claim_batches(ledger, DEST, 2, "me")
    assert [b.id for b in got] == ids[:2]
    assert all(b.state == CLAIMED and b.claimed_by == "me" for b in got)
    assert [b.id for b in claim_batches(ledger, DEST, 10, "me")] == ids[2:]
    assert claim_batches(ledger, DEST, 10, "me") == []
    assert counts_by_state(ledger, destination_key="target:other")[QUEUED]["batches"] == 2
    assert [b.id for b in claim_batches(ledger, "target:other", 10, "x", mapping="pos")] == other


def test_claim_inside_a_callers_session(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.create_all()
    ids = _seed(ledger, 2)
    with ledger.session() as session:
        got = claim_batches(session, DEST, 5, "me")
    assert [b.id for b in got] == ids


@pytest.mark.parametrize("limit", [0, -1])
def test_no_claim_for_no_limit(sqlite_ledger_url: str, limit: int) -> None:
    ledger = Ledger(sqlite_ledger_url)
    ledger.create_all()
    _seed(ledger, 1)
    assert claim_batches(ledger, DEST, limit, "me") == []
