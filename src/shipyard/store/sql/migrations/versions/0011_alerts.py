"""Alerts: ``alerts``, one row per alert of a monitoring rule, with its state (firing, resolved), the
evidence that fired it and what its actions did. ``open_key`` is set only while an alert fires; its
unique index keeps one firing alert per (deployment, variant, rule).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment", sa.String(255), nullable=False),
        sa.Column("variant", sa.String(255)),
        sa.Column("rule", sa.String(255), nullable=False),
        sa.Column("expression", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("open_key", sa.String(800), unique=True),
        sa.Column("evidence_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("actions_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("opened_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at", sa.BigInteger, nullable=False),
        sa.Column("resolved_at", sa.BigInteger),
        sa.Column("windows", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_by", sa.String(255), nullable=False, server_default=""),
    )
    op.create_index("ix_alerts_deployment_state", "alerts", ["deployment", "state"])


def downgrade() -> None:
    op.drop_index("ix_alerts_deployment_state", table_name="alerts")
    op.drop_table("alerts")
