"""file registry: the ETag of an object read from an object store

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

``ingested_files.etag``: a POS export read from an object store (``path: s3://...``) is
recorded with its ETag, so a later run or sensor tick that lists the object at the same ETag
and size knows its checksum without downloading it. Null for a local file and for every row
written before this revision (such an object is hashed once more, then known).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingested_files") as batch:
        batch.add_column(sa.Column("etag", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingested_files") as batch:
        batch.drop_column("etag")
