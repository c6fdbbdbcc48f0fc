"""delivered digests: PostgreSQL pages half filled, so a profile's next confirmation is a HOT update

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

``delivered`` on PostgreSQL gets ``fillfactor = 50``: each night rewrites the row of every
profile that changed, and with room left in its page the new version stays there (a
heap-only update: the primary key's index is not touched, and the old version is pruned when
the page next needs room), so the table keeps its size night after night instead of growing
by dead versions until a vacuum. Only pages written from now on are half filled: the rows
of an upgraded ledger move to such pages as they are next updated; every row is kept.
SQLite has no such setting: nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE delivered SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE delivered RESET (fillfactor)")
