"""The ledger's revisions are read from the migration files' names, without Alembic: the
rule it relies on (``NNNN_<what>.py`` holds revision ``NNNN``, each one following the number
before it) holds for every migration. A new database gets the models' schema created and
stamped without Alembic: it must be the schema the migrations build, and one Alembic takes up
from there."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from connector.ledger import Ledger
from connector.ledger.models import Base
from connector.ledger.store import MIGRATIONS_DIR, alembic_config, head_revision, revisions


def test_each_migration_is_named_by_its_revision_and_the_head_is_alembics() -> None:
    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    for script in scripts.walk_revisions():
        assert Path(str(script.path)).name.startswith(f"{script.revision}_"), script.path
    assert head_revision() == scripts.get_current_head()
    oldest_first = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert list(revisions()) == oldest_first


def test_the_revision_of_a_new_database_is_none_then_the_head(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        assert ledger.revision() is None
        assert ledger.upgrade() != []
        assert ledger.revision() == head_revision()
        assert ledger.upgrade() == []  # current: nothing to apply
    finally:
        ledger.dispose()


def _schema_diff(ledger: Ledger) -> list[object]:
    with ledger.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def test_the_migrations_build_the_models_schema(ledger_url: str) -> None:
    """What a ledger of the first release becomes, migration by migration."""
    ledger = Ledger(ledger_url)
    try:
        with ledger.engine.begin() as conn:
            cfg = alembic_config(ledger_url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        assert ledger.revision() == head_revision()
        assert _schema_diff(ledger) == []
    finally:
        ledger.dispose()


def test_a_new_ledger_is_created_without_alembic_and_stamped_at_the_head(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    try:
        assert ledger.upgrade() == list(revisions())
        assert ledger.revision() == head_revision()
        assert _schema_diff(ledger) == []
        with ledger.engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            assert inspect(conn).get_pk_constraint("alembic_version")["constrained_columns"] == [
                "version_num"
            ]
        assert rows == [(head_revision(),)]
    finally:
        ledger.dispose()


def test_alembic_takes_up_a_ledger_created_without_it(ledger_url: str) -> None:
    """Stepped back one migration by Alembic, then brought forward by ``upgrade()``: Alembic
    reads the stamp, runs the last migration's downgrade and its upgrade on that schema."""
    ledger = Ledger(ledger_url)
    try:
        ledger.upgrade()
        with ledger.engine.begin() as conn:
            cfg = alembic_config(ledger_url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "-1")
        assert ledger.revision() == revisions()[-2]
        assert ledger.upgrade() == [head_revision()]
        assert _schema_diff(ledger) == []
    finally:
        ledger.dispose()
