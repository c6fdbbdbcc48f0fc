"""`connector sync`, `status` and `trace` against a real sandbox: each exit code of the
scheme, and the JSON documents a script reads (``docs/exit-codes.md``, ``docs/cli-json.md``).

Every command runs in process through click's CliRunner, with the sample mappings and
exports of one day (50 CRM customers to Copernica and Target, 110 POS receipts to Target)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from connector.ledger import QUEUED, Batch, Ledger, RowOutcome
from connector.sandbox.testing import running_sandbox

from .conftest import DAY, closed_port, document, point_at, run

MAPPINGS = {"crm_copernica", "crm_customers", "pos_purchases"}


def _ledger(workdir: Path) -> Ledger:
    return Ledger(f"sqlite:///{workdir / 'state' / 'ledger.db'}")


def _a_target_identity(workdir: Path) -> str:
    ledger = _ledger(workdir)
    try:
        with ledger.session() as session:
            batch = session.scalars(select(Batch).where(Batch.destination == "target")).first()
    finally:
        ledger.dispose()
    assert batch is not None
    import pyarrow.parquet as pq

    return str(pq.read_table(batch.manifest_path, columns=["_identity"]).column(0)[0])


def test_all_confirmed_is_0_and_the_json_documents_say_what_was_done(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_sandbox() as sb:
        point_at(monkeypatch, sb.url, sb.url)
        done = run("sync", "--partition", DAY, "--json")
        assert done.exit_code == 0, done.output[-4000:]
        doc = document(done)  # stdout is one JSON document, nothing else
        status = run("status", "--json")
        who = _a_target_identity(workdir)
        traced = run("trace", who, "--json")
    assert doc["schema"] == "connector.sync/1"
    assert (doc["exit_code"], doc["outcome"], doc["failures"]) == (0, "ok", [])
    assert doc["partitions"] == [DAY] and doc["dry_run"] is False
    assert len(doc["run_ids"]) == 2  # the day's mapping run, then the delivery run
    assert set(doc["mappings"]) == MAPPINGS
    for name, c in doc["mappings"].items():
        parts = c["rejected"] + c["merged"] + c["unchanged"] + c["outdated"] + c["changed"]
        assert c["read"] == parts > 0, (name, c)
    assert doc["mappings"]["crm_copernica"]["changed"] == 50
    copernica, target = doc["accounts"]["copernica"], doc["accounts"]["target"]
    assert copernica["account"] == "copernica:demo" and target["account"] == "target:demo"
    for c in (copernica, target):
        assert c["changed"] == c["queued"] == c["submitted"] == c["confirmed"] > 0, c
        assert c["failed"] == c["superseded"] == c["not_final"] == 0, c
    assert copernica["confirmed"] == 50
    assert doc["earlier"] == {}
    assert {d["stopped_because"] for d in doc["drains"].values()} == {"empty"}
    assert set(doc["reports"]) == {"copernica", "target"}
    assert all(Path(p).is_file() for p in doc["reports"].values())
    # progress went to stderr; the Copernica rows are confirmed as they are submitted, and
    # the poll after says so instead of "rows confirmed 0" beside 50 in the table
    submit = next(x for x in done.stderr.splitlines() if "submit copernica:demo: done" in x)
    assert "submitted 1 batch(es), 50 rows (settled on submit: rows confirmed 50, failed 0" in (
        submit
    )
    assert "rows confirmed 0" not in done.stderr

    assert status.exit_code == 0, status.output
    state = document(status)
    assert (state["schema"], state["exit_code"], state["outcome"]) == (
        "connector.status/1",
        0,
        "ok",
    )
    by_account = {a["account"]: a for a in state["accounts"]}
    assert by_account["copernica:demo"]["batches"] == {"complete": {"batches": 1, "rows": 50}}
    for account in by_account.values():
        assert account["not_final_rows"] == 0 and account["undelivered"]["total"] == 0
        assert account["quota_used_24h"] > 0
    assert state["open_batches"] == []

    assert traced.exit_code == 0, traced.output
    trail = document(traced)
    assert (trail["schema"], trail["identity"], trail["found"]) == ("connector.trace/1", who, True)
    target_state = next(a for a in trail["accounts"] if a["account"] == "target:demo")
    assert target_state["state"] == "ok" and target_state["current"] is True
    assert target_state["params"] and target_state["confirmed_batch"] is not None
    assert any(r["outcome"] == "delivered" for r in trail["rows"])


def test_destinations_down_is_5_then_a_later_sync_delivers_the_backlog(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both destinations unreachable: nothing is lost or burnt (the batches wait, attempt 1,
    no row outcome), the summary says why, exit 5; status and trace say 5 too. Once they are
    back, the next sync, which changed nothing, submits the backlog: its earlier rows."""
    down = f"http://127.0.0.1:{closed_port()}"
    point_at(monkeypatch, down, down)
    done = run("sync", "--partition", DAY, "--wait", "5")
    assert done.exit_code == 5, done.output[-4000:]
    # off a terminal nothing wraps: a long progress line is one line
    (line,) = [x for x in done.stdout.splitlines() if "submit target:demo: done" in x]
    assert "stopped: unavailable" in line and "120 rows still queued" in line and len(line) > 120
    assert "target:demo: submitting stopped: the destination was unreachable" in done.stdout
    assert "copernica:demo: submitting stopped: the destination was unreachable" in done.stdout
    assert "exit code 5:" in done.stdout
    ledger = _ledger(workdir)
    try:
        with ledger.session() as session:
            batches = list(session.scalars(select(Batch)))
            assert {(b.destination, b.state, b.attempt) for b in batches} == {
                ("copernica", QUEUED, 1),
                ("target", QUEUED, 1),
            }
            assert list(session.scalars(select(RowOutcome))) == []
    finally:
        ledger.dispose()
    status = run("status", "--json")
    assert status.exit_code == 5, status.output
    assert {a["account"]: a["not_final_rows"] for a in document(status)["accounts"]} == {
        "copernica:demo": 50,
        "target:demo": 120,
    }
    traced = run("trace", _a_target_identity(workdir), "--json")
    assert traced.exit_code == 5, traced.output
    assert document(traced)["accounts"][0]["why"].startswith("on its way: batch")

    with running_sandbox() as sb:
        point_at(monkeypatch, sb.url, sb.url)
        again = run("sync", "--partition", DAY, "--json")
    assert again.exit_code == 0, again.output[-4000:]
    doc = document(again)
    assert all(c["queued"] == 0 for c in doc["accounts"].values()), doc["accounts"]
    assert doc["earlier"] == {
        "copernica": {
            "account": "copernica:demo",
            "rows": 50,
            "confirmed": 50,
            "failed": 0,
            "superseded": 0,
            "not_final": 0,
        },
        "target": {
            "account": "target:demo",
            "rows": 120,
            "confirmed": 120,
            "failed": 0,
            "superseded": 0,
            "not_final": 0,
        },
    }
    assert run("status").exit_code == 0


def test_dead_letters_are_4_and_so_are_status_and_trace_of_them(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Target refuses every profile it would create (a profile cap below any profile) and a
    row has one attempt: every Target row is dead-lettered by the sync's poll."""
    monkeypatch.setenv("CONNECTOR_MAX_ATTEMPTS", "1")
    with running_sandbox(max_profile_bytes=8) as sb:
        point_at(monkeypatch, sb.url, sb.url)
        done = run("sync", "--partition", DAY, "--mapping", "crm_customers", "--json")
    assert done.exit_code == 4, done.output[-4000:]
    doc = document(done)
    assert (doc["exit_code"], doc["outcome"]) == (4, "rows_failed")
    target = doc["accounts"]["target"]
    assert target["queued"] == target["failed"] == 50 and target["confirmed"] == 0, target
    assert target["not_final"] == 0
    status = run("status", "--json")
    assert status.exit_code == 4, status.output
    (account,) = document(status)["accounts"]
    assert account["undelivered"] == {
        "rows": {"dead": 50},
        "dead_batches": 0,
        "dead_batch_rows": 0,
        "total": 50,
    }
    shown = run("status")
    assert "Rows that did not land" in shown.stdout and "exit code 4:" in shown.stdout
    traced = run("trace", _a_target_identity(workdir), "--json")
    assert traced.exit_code == 4, traced.output
    (state,) = document(traced)["accounts"]
    assert state["state"] == "rows_failed" and state["why"].startswith("dead in batch 1:")
    batch = run("status", "--batch", "1", "--json")
    assert batch.exit_code == 4, batch.output
    assert document(batch)["row_outcomes"] == {"dead": 50}


def test_refused_credentials_are_bad_configuration_3(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR_TARGET__TOKEN", "not-the-token")
    monkeypatch.setenv("CONNECTOR_COPERNICA__ACCESS_TOKEN", "not-the-token")
    with running_sandbox(token="the-token") as sb:
        point_at(monkeypatch, sb.url, sb.url)
        done = run("sync", "--partition", DAY, "--json")
    assert done.exit_code == 3, done.output[-4000:]
    doc = document(done)
    assert doc["outcome"] == "bad_configuration"
    refused = {f["what"]: f for f in doc["failures"]}
    assert set(refused) == {"copernica/submissions", "target/submissions"}, doc["failures"]
    assert all(f["bad_configuration"] and f["error"] == "AuthError" for f in refused.values())
    assert refused["target/submissions"]["message"].startswith(
        "the destination refused the account's setup: submit "
    )
    assert "credentials refused" in refused["target/submissions"]["message"]
    assert doc["drains"]["target"]["stopped_because"] == "auth"
    assert "not-the-token" not in done.output


def test_a_failed_run_is_1(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "sample_exports" / "crm.db").unlink()  # the CRM mappings' source is gone
    done = run("sync", "--partition", DAY, "--dry-run", "--json")
    assert done.exit_code == 1, done.output[-4000:]
    doc = document(done)
    assert doc["outcome"] == "run_failed" and doc["dry_run"] is True
    (failure,) = doc["failures"]
    assert failure["run_id"] in doc["run_ids"] and failure["error"] == "SourceError"
    assert "crm.db' does not exist" in failure["message"]
    assert doc["mappings"]["pos_purchases"]["changed"] > 0  # the other mapping ran


def test_trace_of_an_unknown_identity_is_a_usage_error(workdir: Path) -> None:
    ledger = _ledger(workdir)  # a ledger without that identity (where none is: exit 3)
    ledger.upgrade()
    ledger.dispose()
    shown = run("trace", "nobody")
    assert shown.exit_code == 2
    assert shown.stdout == "" and "No rows for identity 'nobody'" in shown.stderr
    as_json = run("trace", "nobody", "--json")
    assert as_json.exit_code == 2
    assert document(as_json) | {"accounts": [], "rows": []} == {
        "schema": "connector.trace/1",
        "identity": "nobody",
        "found": False,
        "exit_code": 2,
        "outcome": "usage",
        "accounts": [],
        "rows": [],
        "delivered": [],
    }
    assert run("status", "--batch", "99").exit_code == 2


def test_a_sandbox_that_cannot_listen_is_bad_configuration_3() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        shown = run("sandbox", "serve", "--port", str(port))
    assert shown.exit_code == 3, shown.output
    assert shown.stderr.startswith(f"bad configuration: cannot listen on 127.0.0.1:{port}: ")
