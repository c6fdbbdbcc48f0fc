"""The ledger's head revision is read from the migration files' names, without Alembic: the
rule it relies on (``NNNN_<what>.py`` holds revision ``NNNN``) holds for every migration."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from connector.ledger import Ledger
from connector.ledger.store import MIGRATIONS_DIR, head_revision


def test_each_migration_is_named_by_its_revision_and_the_head_is_alembics() -> None:
    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    for script in scripts.walk_revisions():
        assert Path(str(script.path)).name.startswith(f"{script.revision}_"), script.path
    assert head_revision() == scripts.get_current_head()


def test_the_revision_of_a_new_database_is_none_then_the_head(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        assert ledger.revision() is None
        assert ledger.upgrade() != []
        assert ledger.revision() == head_revision()
        assert ledger.upgrade() == []  # current: nothing to apply
    finally:
        ledger.dispose()
