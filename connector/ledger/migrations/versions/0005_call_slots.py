"""call slots: the calls-per-minute limit of an account, shared by every process

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

``call_slots``: one row per API call an account's clients made in about the last minute
(``connector.delivery.call_limit``). The limit lived in each process's memory, so two
processes draining one Target client code could make twice the calls; in the ledger every
process of a deployment counts the same calls. A new table: an upgraded ledger starts with no
slots, so the first minute after the upgrade does not see the calls made just before it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_slots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("destination_key", sa.String(length=200), nullable=False),
        sa.Column("granted_at", sa.Float(), nullable=False),
        sa.Column("answered_at", sa.Float(), nullable=True),
        sa.Column("free_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_call_slots_key_free", "call_slots", ["destination_key", "free_at"])


def downgrade() -> None:
    op.drop_index("ix_call_slots_key_free", table_name="call_slots")
    op.drop_table("call_slots")
