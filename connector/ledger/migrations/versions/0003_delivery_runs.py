"""delivery run records: the status report's history, and the outbox builds it counts

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08

``delivery_runs``: one row per delivery run and account, written by the status report (the
report was rewritten each run; its history is kept here, in the state of record, so every
process and machine that runs a report sees the same history). ``outbox_builds``: what each
build of an account's outbox found (changed, already sent, added). Both are new tables: a
ledger upgraded from 0002 starts its history at the first report after the upgrade, which
counts everything the ledger held until then.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_builds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("destination_key", sa.String(length=200), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("already_sent", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_builds_key_built", "outbox_builds", ["destination_key", "built_at"])
    op.create_table(
        "delivery_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("destination", sa.String(length=16), nullable=False),
        sa.Column("destination_key", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.String(length=120), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("figures_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "destination_key", name="uq_delivery_run"),
    )
    op.create_index("ix_delivery_runs_destination", "delivery_runs", ["destination", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_delivery_runs_destination", table_name="delivery_runs")
    op.drop_table("delivery_runs")
    op.drop_index("ix_outbox_builds_key_built", table_name="outbox_builds")
    op.drop_table("outbox_builds")
