"""profiles per destination account: account-wide delivered digests, profile stores

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

``delivered`` was keyed by mapping: each mapping's digest covered only its own params. A row
now carries the whole profile at the account, so its digest is per account and identity.
The old per-mapping digests cannot describe a whole profile: they are dropped, and the first
run after the upgrade sends every changed profile once, whole (which also repairs profiles
that Target v2's "consecutive batches override" rule had cut short).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _delivered(*key: str) -> None:
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("destination_key", sa.String(length=200), nullable=False),
        *(
            [sa.Column("mapping", sa.String(length=120), nullable=False)]
            if "mapping" in key
            else []
        ),
        sa.Column("identity", sa.String(length=300), nullable=False),
        sa.Column("partition", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("nonempty", sa.Text(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"]),
        sa.PrimaryKeyConstraint(*key),
    ]
    op.create_table("delivered", *columns)


def upgrade() -> None:
    # the same content may be queued again once the first is final (values changed back)
    with op.batch_alter_table("batches") as batch_op:
        batch_op.drop_constraint("uq_batch_digest_attempt", type_="unique")
        batch_op.create_index("ix_batches_sha256", ["sha256", "attempt"], unique=False)
        batch_op.add_column(
            sa.Column("identity_type", sa.String(length=64), nullable=False, server_default="")
        )
    op.drop_table("delivered")
    _delivered("destination_key", "identity")
    op.create_table(
        "profile_stores",
        sa.Column("destination_key", sa.String(length=200), nullable=False),
        sa.Column("mapping", sa.String(length=120), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("identity_type", sa.String(length=64), nullable=False),
        sa.Column("param_names", sa.Text(), nullable=False),
        sa.Column("identities", sa.BigInteger(), nullable=False),
        sa.Column("built_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("destination_key", "mapping"),
    )


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch_op:
        batch_op.drop_column("identity_type")
        batch_op.drop_index("ix_batches_sha256")
        batch_op.create_unique_constraint("uq_batch_digest_attempt", ["sha256", "attempt"])
    op.drop_table("profile_stores")
    op.drop_table("delivered")
    _delivered("destination_key", "mapping", "identity")
