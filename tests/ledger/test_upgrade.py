"""Bringing the ledger's schema up to date: `connector db upgrade`, and the upgrade every
process runs when it opens the ledger, which costs nothing once the schema is current."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError

from connector.cli import main
from connector.ledger import Ledger
from connector.ledger.store import head_revision


def test_db_upgrade_creates_the_ledger_then_finds_nothing_to_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR_STATE_DIR", str(tmp_path / "state"))
    first = CliRunner().invoke(main, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    where = tmp_path / "state" / "ledger.db"
    assert first.output.startswith(f"ledger at {where}: applied 0001, ")
    assert first.output.rstrip().endswith(f"schema at {head_revision()}")
    again = CliRunner().invoke(main, ["db", "upgrade"])
    assert again.exit_code == 0, again.output
    assert again.output.strip() == (
        f"ledger at {where}: schema at {head_revision()} already; nothing to apply"
    )


def test_an_old_ledger_gets_only_the_newer_migrations(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        assert ledger.upgrade("0001") == ["0001"]
        applied = ledger.upgrade()
        assert applied[0] == "0002" and applied[-1] == head_revision(), applied
        assert ledger.revision() == head_revision()
    finally:
        ledger.dispose()


@pytest.mark.parametrize("at", ["head", "0001"])
def test_only_a_schema_behind_takes_the_lock_to_be_upgraded(tmp_path: Path, at: str) -> None:
    """At head, opening the ledger reads its revision and takes no lock: a process holding
    the schema lock (SQLite: the write lock) does not hold up the others. A schema behind
    waits for the lock (here: fails after the busy timeout) before it is upgraded."""
    path = tmp_path / "ledger.db"
    Ledger(f"sqlite:///{path}").upgrade(at)
    writer = sqlite3.connect(path, isolation_level=None)
    ledger = Ledger(f"sqlite:///{path}", busy_timeout_s=0.1)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the lock Ledger._migrating takes on SQLite
        if at == "head":
            assert ledger.upgrade() == []
        else:
            with pytest.raises(OperationalError, match="database is locked"):
                ledger.upgrade()
    finally:
        ledger.dispose()
        writer.execute("ROLLBACK")
        writer.close()
