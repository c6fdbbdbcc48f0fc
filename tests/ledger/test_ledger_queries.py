"""Migrations match the models; delivered digests (per account and profile), rejects and
stage runs round-trip."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import inspect

from connector.ledger import (
    Batch,
    Delivered,
    Ledger,
    Reject,
    StageRun,
    export_delivered,
    record_delivered,
    record_stage_run,
    replace_rejects,
)
from connector.ledger import delivered as delivered_mod
from connector.outbox.manifests import delivered_table


def _batches(ledger: Ledger, n: int) -> list[int]:
    """Ids of ``n`` registered batches, oldest first (confirmations name their batch)."""
    with ledger.session() as session:
        rows = [
            Batch(
                batch_key=f"k{i}",
                mapping="crm+pos",
                partition="2026-01-02",
                destination="target",
                destination_key="target:demo",
                path=f"/x/{i}.batch",
                manifest_path=f"/x/{i}.manifest.parquet",
                sha256=f"{i:064d}",
                row_count=1,
                byte_size=1,
            )
            for i in range(n)
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def test_record_delivered_upserts_and_exports(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(ledger_url)
    ledger.upgrade()
    older, newer = _batches(ledger, 2)
    rows = [{"identity": f"id{i}", "digest": "a" * 64, "nonempty": "email"} for i in range(12)]
    # identities a CSV export must quote, and an empty nonempty (not NULL)
    rows += [
        {"identity": 'a,"b"\nc', "digest": "e" * 64, "nonempty": ""},
        {"identity": "Zoë ☕ \\N", "digest": "e" * 64, "nonempty": "email,tier"},
        {"identity": "", "digest": "e" * 64, "nonempty": ""},
    ]
    day = "2026-01-02"
    assert record_delivered(ledger, "target:demo", rows, chunk_rows=5, partition=day) == 15
    manifest = pa.table(
        {
            "_identity": ["id1", "id1", "new"],
            "_source_ref": ["x", "x", "y"],
            "_digest": ["b" * 64, "c" * 64, "d" * 64],
            "email": [None, "e", "f"],
            "tier": ["t", None, None],
        }
    )
    assert (
        record_delivered(ledger, "target:demo", delivered_table(manifest), partition=day) == 2
    )  # id1 twice: last wins
    # another account's profile of the same identity is its own
    record_delivered(
        ledger, "copernica:demo", [{"identity": "id1", "digest": "z" * 64}], partition=day
    )
    # one row per profile at the account, ordered by the batch that carried it
    record_delivered(
        ledger,
        "target:demo",
        [{"identity": "id2", "digest": "f" * 64}],
        batch_id=newer,
        partition=day,
    )
    # an older batch confirmed late (or a row confirmed without a batch) replaces nothing
    for late in (older, None):
        record_delivered(
            ledger,
            "target:demo",
            [{"identity": "id2", "digest": "0" * 64}],
            batch_id=late,
            partition=day,
        )
    # the batch orders confirmations, not the day: a newer batch of an older day's values wins
    record_delivered(
        ledger,
        "target:demo",
        [{"identity": "id3", "digest": "9" * 64}],
        batch_id=older,
        partition="2026-01-01",
    )
    with ledger.session() as session:
        got = {(d.destination_key, d.identity): d for d in session.query(Delivered)}
    assert got[("copernica:demo", "id1")].digest == "z" * 64
    assert got[("target:demo", "id2")].digest == "f" * 64
    assert got[("target:demo", "id2")].batch_id == newer
    assert got[("target:demo", "id3")].digest == "9" * 64
    assert got[("target:demo", "id3")].partition == "2026-01-01"
    assert len(got) == 17
    assert got[("target:demo", "id1")].digest == "c" * 64
    assert got[("target:demo", "id1")].nonempty == "email"
    assert got[("target:demo", "new")].nonempty == "email"
    out = tmp_path / "delivered.parquet"
    assert export_delivered(ledger, "target:demo", out, chunk_rows=4) == 16
    table = pq.read_table(out)
    assert table.column_names == ["identity", "digest"]
    assert {"id0", 'a,"b"\nc', "Zoë ☕ \\N", ""} <= set(table.column("identity").to_pylist())
    expected = sorted((i, d.digest) for (k, i), d in got.items() if k == "target:demo")
    # every row, whole, across chunk boundaries (SQLite: read from the driver's cursor)
    assert sorted(zip(*(table.column(c).to_pylist() for c in table.column_names))) == expected
    # only the identities asked for (a night's changes), across lookup statements; an
    # identity with no confirmed row, a repeat and a null are no trouble
    some = pa.array(["id0", 'a,"b"\nc', "never-sent", "id0", None, "id9"])
    monkeypatch.setattr(delivered_mod, "LOOKUP_CHUNK", 2)
    assert export_delivered(ledger, "target:demo", out, identities=some) == 3
    table = pq.read_table(out)
    assert sorted(zip(*(table.column(c).to_pylist() for c in table.column_names))) == [
        row for row in expected if row[0] in {"id0", 'a,"b"\nc', "id9"}
    ]
    assert export_delivered(ledger, "target:demo", out, identities=pa.array([], pa.string())) == 0
    assert export_delivered(ledger, "nowhere", tmp_path / "none.parquet") == 0
    assert pq.read_table(tmp_path / "none.parquet").num_rows == 0
    ledger.dispose()


def test_rejects_replace_and_stage_run_upsert(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.upgrade()
    replace_rejects(ledger, "crm", "2026-01-02", [{"source_ref": "a:1", "reason": "bad"}] * 3)
    replace_rejects(ledger, "crm", "2026-01-03", [{"source_ref": "a:9", "reason": "bad"}])
    assert replace_rejects(ledger, "crm", "2026-01-02", [{"source_ref": "a:2", "reason": "x"}]) == 1
    record_stage_run(ledger, "crm", "2026-01-02", "extract", {"rows_in": 1})
    record_stage_run(ledger, "crm", "2026-01-02", "extract", {"rows_in": 2})
    with ledger.session() as session:
        rejects = session.query(Reject).order_by(Reject.partition).all()
        runs = session.query(StageRun).all()
    assert [(r.partition, r.source_ref) for r in rejects] == [
        ("2026-01-02", "a:2"),
        ("2026-01-03", "a:9"),
    ]
    assert len(runs) == 1 and json.loads(runs[0].stats_json) == {"rows_in": 2}
    ledger.dispose()


def test_a_ledger_of_the_mapping_rows_release_upgrades_in_place(ledger_url: str) -> None:
    """0001 -> head with rows in it: batches keep theirs (identity type unknown: ""), the
    per-mapping delivered digests go (they cannot describe a whole profile), stores appear."""
    from sqlalchemy import text

    ledger = Ledger(ledger_url)
    ledger.upgrade("0001")
    with ledger.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO batches (batch_key, mapping, partition, destination, "
                "destination_key, path, manifest_path, sha256, row_count, byte_size, attempt, "
                "state, poll_count, created_at, updated_at) VALUES ('old-1', 'crm', "
                "'2026-01-02', 'target', 'target:demo', '/x', '/x.m', 'a', 1, 1, 1, "
                "'complete', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO delivered (destination_key, mapping, identity, partition, digest, "
                "nonempty, delivered_at) VALUES ('target:demo', 'crm', 'id1', '2026-01-02', "
                "'d', 'email', CURRENT_TIMESTAMP)"
            )
        )
    ledger.upgrade()
    with ledger.session() as session:
        (batch,) = session.query(Batch).all()
        assert (batch.batch_key, batch.identity_type) == ("old-1", "")
        assert session.query(Delivered).count() == 0
    # the same content may be queued again once the first is final (no unique constraint)
    _batches(ledger, 1)
    with ledger.session() as session:
        session.add(
            Batch(
                batch_key="again",
                mapping="crm+pos",
                partition="2026-01-02",
                destination="target",
                destination_key="target:demo",
                path="/y",
                manifest_path="/y.m",
                sha256="a",
                row_count=1,
                byte_size=1,
            )
        )
    ledger.dispose()


def _delivered(ledger: Ledger, key: str = "target:demo") -> dict[str, tuple[str, int | None]]:
    with ledger.session() as session:
        return {
            d.identity: (d.digest, d.batch_id)
            for d in session.query(Delivered).filter(Delivered.destination_key == key)
        }


def test_a_bulk_confirmation_keeps_newer_batches_rows_row_by_row(ledger_url: str) -> None:
    """One call over rows of which some a newer batch has confirmed already: those keep the
    newer digest, the others take this batch's (one statement decides row by row)."""
    ledger = Ledger(ledger_url)
    ledger.upgrade()
    older, middle, newer = _batches(ledger, 3)
    day = "2026-01-02"
    ids = [f"p{i:03d}" for i in range(40)]
    record_delivered(
        ledger,
        "target:demo",
        pa.table({"identity": ids[:20], "digest": ["n" * 64] * 20, "nonempty": ["email"] * 20}),
        partition=day,
        batch_id=newer,
    )
    record_delivered(
        ledger,
        "target:demo",
        pa.table({"identity": ids[10:30], "digest": ["o" * 64] * 20, "nonempty": [None] * 20}),
        partition=day,
        batch_id=older,
    )
    # the same table again from a batch between them: only the rows the older one holds move
    written = record_delivered(
        ledger,
        "target:demo",
        pa.table({"identity": ids, "digest": ["m" * 64] * 40, "nonempty": [""] * 40}),
        partition=day,
        batch_id=middle,
        chunk_rows=7,
    )
    assert written == 40
    got = _delivered(ledger)
    assert {i: got[i] for i in ids[:20]} == dict.fromkeys(ids[:20], ("n" * 64, newer))
    assert {i: got[i] for i in ids[20:]} == dict.fromkeys(ids[20:], ("m" * 64, middle))
    ledger.dispose()


def test_an_identity_repeated_in_one_call_is_written_once_its_last_row_winning(
    ledger_url: str,
) -> None:
    """Two batches confirmed together: an identity's rows far apart in the table (another
    chunk of the write), in either order of identity; the Session form writes in the
    caller's transaction, which a rollback undoes."""
    ledger = Ledger(ledger_url)
    ledger.upgrade()
    (batch,) = _batches(ledger, 1)
    identities = ["b", "a", "c", "a", "d", "b", "e", "a"]
    digests = ["1", "2", "3", "4", "5", "6", "7", "8"]
    table = pa.table(
        {
            "identity": identities,
            "digest": [d * 64 for d in digests],
            "nonempty": [f"n{d}" for d in digests],
        }
    )
    with ledger.session() as session:
        assert (
            record_delivered(
                session, "target:demo", table, partition="2026-01-02", batch_id=batch, chunk_rows=2
            )
            == 5
        )
    got = _delivered(ledger)
    assert got == {
        "a": ("8" * 64, batch),
        "b": ("6" * 64, batch),
        "c": ("3" * 64, batch),
        "d": ("5" * 64, batch),
        "e": ("7" * 64, batch),
    }
    with ledger.session() as session:
        b = session.get(Delivered, ("target:demo", "b"))
        assert b is not None and b.nonempty == "n6" and b.partition == "2026-01-02"
        # stored in the column's own format: the ORM reads a timestamp of this run back
        assert abs(
            b.delivered_at.replace(tzinfo=None) - dt.datetime.now(dt.UTC).replace(tzinfo=None)
        ) < dt.timedelta(minutes=5)
    try:
        with ledger.session() as session:
            record_delivered(
                session,
                "target:demo",
                [{"identity": "z", "digest": "9" * 64}],
                partition="2026-01-02",
                batch_id=batch,
            )
            raise RuntimeError("the caller's work failed")
    except RuntimeError:
        pass
    assert "z" not in _delivered(ledger)
    assert record_delivered(ledger, "target:demo", [], partition="2026-01-02") == 0
    ledger.dispose()


def test_two_first_confirmations_of_a_new_account_at_once_both_land(
    fresh_postgres_url: str,
) -> None:
    """PostgreSQL inserts an account's first confirmation without ``ON CONFLICT``: a second
    writer of the account waits for the first's transaction, then finds its rows and upserts
    over them by the batch rule (without the wait, its insert of the same profiles would
    fail on the primary key once the first commits)."""
    ledger = Ledger(fresh_postgres_url)
    ledger.upgrade()
    older, newer = _batches(ledger, 2)
    day = "2026-01-02"
    ids = [f"p{i:03d}" for i in range(30)]
    inserted, release = threading.Event(), threading.Event()

    def first() -> None:
        with ledger.session() as session:
            record_delivered(
                session,
                "target:new",
                pa.table({"identity": ids[:20], "digest": ["n" * 64] * 20}),
                partition=day,
                batch_id=newer,
            )
            inserted.set()
            assert release.wait(30)

    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(first)
        assert inserted.wait(30)
        second = pool.submit(
            record_delivered,
            ledger,
            "target:new",
            pa.table({"identity": ids[10:], "digest": ["o" * 64] * 20}),
            partition=day,
            batch_id=older,
        )
        _wait_for_a_waiting_advisory_lock(ledger)
        assert not second.done()
        release.set()
        held.result(timeout=30)
        assert second.result(timeout=30) == 20
    got = _delivered(ledger, "target:new")
    assert {i: got[i] for i in ids[:20]} == dict.fromkeys(ids[:20], ("n" * 64, newer))
    assert {i: got[i] for i in ids[20:]} == dict.fromkeys(ids[20:], ("o" * 64, older))
    ledger.dispose()


def _wait_for_a_waiting_advisory_lock(ledger: Ledger) -> None:
    """Return once a session of the server waits for an advisory lock (fail after 30 s)."""
    from sqlalchemy import text

    deadline = time.monotonic() + 30
    with ledger.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("no writer waited for the account's lock")


def test_delivered_pages_are_half_filled_on_postgresql(fresh_postgres_url: str) -> None:
    """0005 -> 0006 keeps the rows and sets the fill factor; a table made from the models
    (``create_all``) has it too."""
    from sqlalchemy import text

    def options() -> list[str] | None:
        with ledger.engine.connect() as conn:
            return conn.execute(
                text("SELECT reloptions FROM pg_class WHERE relname = 'delivered'")
            ).scalar_one()

    ledger = Ledger(fresh_postgres_url)
    ledger.upgrade("0005")
    (batch,) = _batches(ledger, 1)
    record_delivered(
        ledger,
        "target:demo",
        [{"identity": "a", "digest": "1" * 64}],
        partition="d",
        batch_id=batch,
    )
    assert options() is None
    assert ledger.upgrade("0006") == ["0006"]
    assert options() == ["fillfactor=50"]
    assert _delivered(ledger) == {"a": ("1" * 64, batch)}
    with ledger.engine.begin() as conn:
        conn.execute(text("DROP TABLE delivered"))
    ledger.create_all()
    assert options() == ["fillfactor=50"]
    ledger.dispose()


def test_delivered_loses_its_foreign_key_with_its_rows_and_the_batch_is_checked_per_call(
    ledger_url: str,
) -> None:
    """0006 -> head keeps the rows and drops the foreign key on ``batch_id``, on SQLite (a
    copy of the table) and PostgreSQL; ``record_delivered`` refuses a batch the ledger does
    not have, writing nothing."""
    ledger = Ledger(ledger_url)
    ledger.upgrade("0006")
    older, newer = _batches(ledger, 2)
    record_delivered(
        ledger,
        "target:demo",
        [{"identity": "a", "digest": "1" * 64, "nonempty": "email"}],
        partition="2026-01-02",
        batch_id=older,
    )
    assert [
        fk["referred_table"] for fk in inspect(ledger.engine).get_foreign_keys("delivered")
    ] == ["batches"]
    assert ledger.upgrade() == ["0007"]
    assert inspect(ledger.engine).get_foreign_keys("delivered") == []
    assert _delivered(ledger) == {"a": ("1" * 64, older)}
    with pytest.raises(ValueError, match="batch 999 is not in the ledger"):
        record_delivered(
            ledger,
            "target:demo",
            [{"identity": "b", "digest": "2" * 64}],
            partition="d",
            batch_id=999,
        )
    record_delivered(
        ledger,
        "target:demo",
        [{"identity": "a", "digest": "3" * 64}],
        partition="d",
        batch_id=newer,
    )
    assert _delivered(ledger) == {"a": ("3" * 64, newer)}
    ledger.dispose()


def test_delivered_table_names_the_non_empty_params() -> None:
    from connector.outbox.manifest_schema import PARAMS_KEY

    manifest = pa.table(
        {
            "_identity": ["a", "b", "c"],
            "_digest": ["1", "2", "3"],
            "_filled": ["101", "000", "101"],
        }
    ).replace_schema_metadata({PARAMS_KEY: json.dumps(["email", "tier", "city"])})
    table = delivered_table(manifest)
    assert table.to_pylist() == [
        {"identity": "a", "digest": "1", "nonempty": "email,city"},
        {"identity": "b", "digest": "2", "nonempty": ""},
        {"identity": "c", "digest": "3", "nonempty": "email,city"},
    ]
    bad = manifest.set_column(2, "_filled", pa.array(["101", "10", "101"]))
    with pytest.raises(ValueError, match="'b': _filled '10' does not fit"):
        delivered_table(bad)
