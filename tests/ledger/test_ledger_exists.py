"""A ledger is found without being created: `status` and `trace` only read one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from connector.ledger import Ledger, LedgerNotFound, ProfileStore, ledger_exists, ledger_location


def test_a_missing_sqlite_ledger_is_not_created(tmp_path: Path) -> None:
    state = tmp_path / "state"
    url = f"sqlite:///{state / 'ledger.db'}"
    assert not ledger_exists(url)
    with pytest.raises(LedgerNotFound) as missing:
        Ledger.open_existing(url)
    assert str(missing.value) == str(state / "ledger.db")
    assert not state.exists(), "looking for a ledger created its folder"


def test_a_relative_sqlite_ledger_is_named_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert ledger_location("sqlite:///.connector/ledger.db") == str(
        tmp_path / ".connector" / "ledger.db"
    )


def test_a_sqlite_file_without_the_ledgers_tables_is_no_ledger(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE customers (id TEXT)")
    conn.close()
    assert not ledger_exists(f"sqlite:///{other}")
    empty = tmp_path / "empty.db"
    empty.touch()
    assert not ledger_exists(f"sqlite:///{empty}")
    assert empty.stat().st_size == 0, "looking for a ledger wrote into the file"


def test_a_ledger_exists_once_created_and_opens_up_to_date(ledger_url: str) -> None:
    assert not ledger_exists(ledger_url)
    Ledger(ledger_url).upgrade("0001")  # a ledger of an earlier release
    assert ledger_exists(ledger_url)
    ledger = Ledger.open_existing(ledger_url)
    try:
        with ledger.session() as session:  # brought to the current schema: 0002's table
            assert session.scalars(select(ProfileStore)).all() == []
    finally:
        ledger.dispose()


@pytest.mark.postgres
def test_a_server_ledger_is_named_without_its_password(fresh_postgres_url: str) -> None:
    url = make_url(fresh_postgres_url).set(password="s3cret-pw").render_as_string(False)
    where = ledger_location(url)
    assert "s3cret-pw" not in where and "***" in where
    assert where.endswith(make_url(fresh_postgres_url).database or "")
