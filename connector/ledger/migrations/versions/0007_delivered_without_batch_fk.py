"""delivered digests: no foreign key on batch_id, checked once per confirmation instead

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

``delivered.batch_id`` loses its foreign key to ``batches.id``. Each settled batch writes
its confirmed profiles in one statement, and the key's check ran once per row (on
PostgreSQL a lookup and a lock of the batch's row per row, more than the row's own
write). ``ledger.record_delivered`` checks the batch once per call instead, and no
code deletes a batch. Every row is kept: PostgreSQL drops the constraint in place; SQLite
copies the table without it (Alembic's batch mode, the constraint found by a naming
convention since SQLite's has no name).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# SQLite's foreign key has no name: batch mode reflects it under this one
_SQLITE_FK_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
_SQLITE_FK = "fk_delivered_batch_id_batches"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table(
            "delivered", naming_convention=_SQLITE_FK_NAMES, recreate="always"
        ) as batch:
            batch.drop_constraint(_SQLITE_FK, type_="foreignkey")
        return
    for fk in sa.inspect(bind).get_foreign_keys("delivered"):
        if fk["referred_table"] == "batches" and fk["name"]:  # PostgreSQL names every one
            op.drop_constraint(fk["name"], "delivered", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("delivered", recreate="always") as batch:
            batch.create_foreign_key(_SQLITE_FK, "batches", ["batch_id"], ["id"])
        return
    op.create_foreign_key(None, "delivered", "batches", ["batch_id"], ["id"])
