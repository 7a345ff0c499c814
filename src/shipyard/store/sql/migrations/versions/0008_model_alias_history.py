"""Alias history: ``model_alias_history``, one row per alias move, written with the move.

Rollback decides which versions "held the alias before" from this table (the registry's own
record: each row's ``version`` and ``previous``), no longer from audit entries. Nothing is
backfilled: moves before the upgrade are known only from audit entries, which older servers let
anyone append (``POST /api/v1/audit``), so they are not trusted. The first move after the
upgrade records the holder it replaces (``previous``), which makes that version a rollback target.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_alias_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("previous", sa.Integer),
        sa.Column("actor", sa.String(255), nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("audit_seq", sa.Integer, nullable=False),
    )
    op.create_index("ix_model_alias_history_alias", "model_alias_history", ["model_id", "alias", "id"])


def downgrade() -> None:
    op.drop_index("ix_model_alias_history_alias", table_name="model_alias_history")
    op.drop_table("model_alias_history")
