"""Pipeline schedules: ``pipeline_schedules`` (what to run, when) and ``schedule_fires`` (one row
per fire time, claimed by exactly one server worker through the primary key).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_schedules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("ref", sa.String(1024), nullable=False),
        sa.Column("cron", sa.String(255)),
        sa.Column("every_seconds", sa.Float),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("params_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_by", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("name", name="uq_pipeline_schedules_name"),
    )
    op.create_table(
        "schedule_fires",
        sa.Column("schedule_id", sa.Integer, sa.ForeignKey("pipeline_schedules.id"), primary_key=True),
        sa.Column("fire_time", sa.BigInteger, primary_key=True),
        sa.Column("claimed_by", sa.String(255), nullable=False),
        sa.Column("claimed_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("finished_at", sa.BigInteger),
    )


def downgrade() -> None:
    op.drop_table("schedule_fires")
    op.drop_table("pipeline_schedules")
