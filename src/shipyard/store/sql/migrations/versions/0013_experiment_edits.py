"""Experiments that can be renamed, deleted and restored, and carry tags: ``experiments.deleted``,
``experiments.updated_at`` (NULL: never changed since creation) and ``experiment_tags``.

MLflow's API (``shipyard server`` answers it) deletes, restores and renames experiments and tags
them; Shipyard keeps the same records for its own faces.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added columns with defaults: no table copy on SQLite.
    op.add_column("experiments", sa.Column("deleted", sa.Boolean, nullable=False, server_default="0"))
    op.add_column("experiments", sa.Column("updated_at", sa.BigInteger, nullable=True))
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("experiment_tags")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("deleted")
