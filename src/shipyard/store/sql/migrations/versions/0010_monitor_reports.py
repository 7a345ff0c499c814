"""Monitoring results: ``monitor_reports``, one row per deployment, kind (drift, performance, ...)
and window, indexed for reading a deployment's time series.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("variant", sa.String(255)),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("window_end", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("verdict", sa.Text, nullable=False, server_default=""),
        sa.Column("summary_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("body_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_by", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_monitor_reports_series", "monitor_reports", ["deployment", "kind", "window_end"])


def downgrade() -> None:
    op.drop_index("ix_monitor_reports_series", table_name="monitor_reports")
    op.drop_table("monitor_reports")
