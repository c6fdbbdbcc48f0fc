"""Copernica delivery against the real sandbox with a typed database, as live Copernica
answers: field names in another casing, a field the database lacks, a wrong database, a
match field the database lacks, and the error shapes under injected faults."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from sqlalchemy import select

from connector import delivery
from connector.destinations.copernica import CopernicaClient
from connector.destinations.copernica_fields import FieldCheck
from connector.destinations.http import ConfigurationError, RetryPolicy
from connector.ledger import QUEUED, Batch, Delivered, RowOutcome
from connector.sandbox.testing import SandboxHandle, running_sandbox
from connector.settings import Settings
from tests.delivery.helpers import make_ledger, make_settings, profiles, queue, run_until_settled

SCHEMA = {
    "Shop": {
        "fields": {
            "CustomerID": {"type": "text"},
            "Tier": {"type": "text"},
            "City": {"type": "text"},
            "Points": {"type": "integer", "value": "-1"},
        }
    }
}


def table(n: int) -> pa.Table:
    """``n`` profiles: params ``tier``, ``city`` (the database spells them ``Tier``,
    ``City``) and ``nickname`` (a field the database does not have)."""
    base = profiles(n)
    return base.append_column("nickname", pa.array([f"nick{i}" for i in range(n)]))


def fast_client(settings: Settings, seed: int = 5) -> CopernicaClient:
    policy = RetryPolicy(
        max_attempts=12,
        base_delay_s=0.01,
        max_delay_s=0.05,
        max_total_s=30,
        rng=random.Random(seed),
    )
    return CopernicaClient(settings.copernica, match_field="customerid", retry=policy)


def stored(sb: SandboxHandle, database: str = "Shop") -> list[dict[str, str]]:
    """Every profile's fields at the sandbox, as ``GET database/{db}/profiles`` lists them."""
    out: list[dict[str, str]] = []
    start = 0
    while True:
        page = httpx.get(
            f"{sb.url}/v3/database/{database}/profiles",
            params={"start": start, "limit": 1000},
            timeout=30,
        ).json()
        out += [p["fields"] for p in page["data"]]
        start += page["count"]
        if start >= page["total"]:
            return out


def test_params_match_fields_in_any_casing_and_a_missing_field_is_warned_once(
    tmp_path: Path,
) -> None:
    with running_sandbox(copernica_schema=SCHEMA, copernica_autocreate=False) as sb:
        settings = make_settings(tmp_path, sb.url, copernica={"database": "Shop"})
        ledger = make_ledger(settings)
        rows = table(40)
        queue(settings, ledger, rows, destination="copernica", identity_type="customerid")
        queue(
            settings,
            ledger,
            table(60).slice(40),
            destination="copernica",
            identity_type="customerid",
            partition="2026-06-02",
        )
        results = run_until_settled(settings, ledger, destination="copernica")
        notes = [note for result in results for note in getattr(result, "notes", [])]
        assert sorted(notes) == [
            "fields unknown to database Shop (silently dropped by the API): nickname",
            "param 'city' is field 'City' in database Shop (Copernica matches field names "
            "case-insensitively)",
            "param 'tier' is field 'Tier' in database Shop (Copernica matches field names "
            "case-insensitively)",
        ]
        with ledger.session() as s:
            assert len(list(s.scalars(select(Delivered)))) == 60  # rows still delivered
        landed = {p["CustomerID"]: p for p in stored(sb)}
        assert len(landed) == 60
        for row in rows.to_pylist():
            got = landed[row["_identity"]]
            assert got["Tier"] == row["tier"] and got["City"] == (row["city"] or "")
            assert got["Points"] == "-1"  # never sent: the field's default


def test_read_back_names_fields_as_the_params_that_wrote_them() -> None:
    check = FieldCheck("Shop", ["CustomerID", "Tier", "City"])
    assert check.notes(["tier", "City", "nickname"])[-1].endswith("API): nickname")
    assert check.notes(["tier", "nickname"]) == []  # each param is reported once
    stored_fields = {"CustomerID": "c1", "Tier": "gold", "City": "", "Points": "-1"}
    assert check.as_params(stored_fields) == {
        "CustomerID": "c1",
        "tier": "gold",
        "City": "",
        "Points": "-1",
    }
    with pytest.raises(ConfigurationError, match="no field 'email'"):
        check.require_match_field("email")
    check.require_match_field("customerid")  # any casing


@pytest.mark.parametrize("database", ["99984", "NoSuchDatabase"])
def test_a_wrong_database_stops_the_drain_before_any_batch_is_claimed(
    tmp_path: Path, database: str
) -> None:
    with running_sandbox(copernica_schema=SCHEMA, copernica_autocreate=False) as sb:
        settings = make_settings(tmp_path, sb.url, copernica={"database": database})
        ledger = make_ledger(settings)
        queue(settings, ledger, table(10), destination="copernica", identity_type="customerid")
        with pytest.raises(ConfigurationError) as caught:
            delivery.drain(settings, ledger, destination="copernica")
        assert "No database with supplied ID" in str(caught.value)
        assert "CONNECTOR_COPERNICA__DATABASE" in str(caught.value)
        with ledger.session() as s:
            batches = list(s.scalars(select(Batch)))
            assert batches and all(b.state == QUEUED and b.attempt == 1 for b in batches)
            assert not list(s.scalars(select(RowOutcome)))  # no per-row failures
        state = sb.snapshot()["copernica"]["calls"]
        assert not any(key.startswith("PUT") for key in state)


def test_a_database_without_the_match_field_is_never_written(tmp_path: Path) -> None:
    """Copernica ignores a condition on an unknown field: the selector would select every
    profile. The drain stops with the batch queued instead."""
    schema = {"Shop": {"fields": {"Email": "email", "Tier": "text"}}}
    with running_sandbox(copernica_schema=schema, copernica_autocreate=False) as sb:
        settings = make_settings(tmp_path, sb.url, copernica={"database": "Shop"})
        ledger = make_ledger(settings)
        queue(settings, ledger, table(5), destination="copernica", identity_type="customerid")
        result = delivery.drain(settings, ledger, destination="copernica")
        assert result.stopped_because == "auth" and result.returned_to_queue
        with ledger.session() as s:
            assert all(b.state == QUEUED and b.attempt == 1 for b in s.scalars(select(Batch)))
        assert stored(sb) == []


def test_under_faults_every_profile_lands_once(tmp_path: Path) -> None:
    faults = dict(fail_rate=0.3, throttle_rate=0.2, drop_rate=0.05, seed=11, retry_after_s=0)
    with running_sandbox(copernica_schema=SCHEMA, copernica_autocreate=False, **faults) as sb:
        settings = make_settings(tmp_path, sb.url, copernica={"database": "Shop"}, max_attempts=8)
        ledger = make_ledger(settings)
        rows = table(80)
        queue(settings, ledger, rows, destination="copernica", identity_type="customerid")
        client = fast_client(settings)
        try:
            run_until_settled(settings, ledger, destination="copernica", client=client)
        finally:
            client.close()
        injected = sb.snapshot()["faults"]["injected"]["copernica"]
        assert sum(injected.values()) > 0
        sb.set_faults(fail_rate=0.0, throttle_rate=0.0, drop_rate=0.0)
        landed = [p["CustomerID"] for p in stored(sb)]
        assert sorted(landed) == sorted(rows["_identity"].to_pylist())  # each exactly once
        with ledger.session() as s:
            assert len(list(s.scalars(select(Delivered)))) == 80


def test_error_shapes_the_client_reads(tmp_path: Path) -> None:
    """400 messages decide: a wrong database is a configuration error for the account, an
    invalid token refuses the credentials, a refused body fails that profile only."""
    with running_sandbox(copernica_schema=SCHEMA, copernica_autocreate=False, token="tok") as sb:
        settings = make_settings(
            tmp_path, sb.url, copernica={"database": "99984", "access_token": "tok"}
        )
        with fast_client(settings) as client:
            put = client.put_profile("c1", {"Tier": "gold"})
            assert put.config_error and "No database with supplied ID" in (put.error or "")
            with pytest.raises(ConfigurationError):
                client.database_fields()
        bad_token = make_settings(
            tmp_path, sb.url, copernica={"database": "Shop", "access_token": "nope"}
        )
        with fast_client(bad_token) as client:
            put = client.put_profile("c1", {"Tier": "gold"})
            assert put.auth_refused and not put.config_error
            assert client.database_fields() is None  # not readable: checks are skipped
        good = make_settings(
            tmp_path, sb.url, copernica={"database": "Shop", "access_token": "tok"}
        )
        with fast_client(good) as client:
            assert client.database_fields() == ["CustomerID", "Tier", "City", "Points"]
            assert client.put_profile("c1", {"tier": "gold"}).ok


def test_an_unreachable_service_leaves_the_batch_queued_with_its_attempt(tmp_path: Path) -> None:
    """No PUT reaches the service: no row is to blame, so none is failed or re-queued (which
    would spend its attempts and dead-letter it while the service is down). The batch goes
    back to the queue, attempt 1, and the drain stops as unavailable; the PUTs not started
    when the first found the service down are not tried."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}/v3"
    with running_sandbox() as sb:  # the outbox is built while the service is up
        settings = make_settings(tmp_path, sb.url, copernica={"database": "Shop"})
        ledger = make_ledger(settings)
        queue(settings, ledger, table(10), destination="copernica", identity_type="customerid")
    settings = make_settings(
        tmp_path, sb.url, copernica={"base_url": down, "database": "Shop", "concurrency": 1}
    )
    with fast_client(settings) as client:
        results = client.put_many([(f"c{i}", {"tier": "x"}) for i in range(5)])
        assert all(r.unreachable and not r.ok for r in results)
        assert "ConnectError" in (results[0].error or "")
        assert {r.error for r in results[1:]} == {"not sent: the service was unreachable"}
        drained = delivery.drain(settings, ledger, destination="copernica", client=client)
    assert drained.stopped_because == "unavailable" and drained.returned_to_queue
    assert "unreachable" in drained.stop_message
    with ledger.session() as s:
        assert [(b.state, b.attempt) for b in s.scalars(select(Batch))] == [(QUEUED, 1)]
        assert not list(s.scalars(select(RowOutcome)))
