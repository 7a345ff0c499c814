"""Run heartbeats: ``runs.heartbeat_ms``, the last sign of life of a run's process.

Live runs update it periodically; a ``running`` run whose heartbeat is older than
``Settings.run_heartbeat_timeout`` is marked ``killed``. Runs from before this revision
(and from clients that send no heartbeats) keep NULL and are never marked.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("heartbeat_ms", sa.BigInteger, nullable=True))  # no table copy
    op.create_index("ix_runs_status_heartbeat", "runs", ["status", "heartbeat_ms"])


def downgrade() -> None:
    op.drop_index("ix_runs_status_heartbeat", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_ms")
