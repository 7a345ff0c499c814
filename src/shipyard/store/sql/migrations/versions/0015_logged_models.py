"""MLflow 3's logged models: ``logged_models`` and their ``logged_model_params``,
``logged_model_tags`` and ``logged_model_metrics``.

MLflow's client (``mlflow.<flavor>.log_model``, autolog) logs a model as a *logged model* of the
run. Its files are the run's artifacts under ``models/<id>`` (the existing ``artifacts`` table);
these tables keep what MLflow's client reads about it: name, type, status, the run's step,
params, tags and metric points.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _model_id() -> sa.Column[str]:
    return sa.Column(
        "model_id", sa.String(64), sa.ForeignKey("logged_models.id", ondelete="CASCADE"), primary_key=True
    )


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("model_type", sa.String(255), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.BigInteger),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_logged_models_experiment_name", "logged_models", ["experiment_id", "name"])
    op.create_index("ix_logged_models_run", "logged_models", ["run_id"])
    for table in ("logged_model_params", "logged_model_tags"):
        op.create_table(
            table,
            _model_id(),
            sa.Column("key", sa.String(255), primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        )
    op.create_table(
        "logged_model_metrics",
        _model_id(),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("step", sa.BigInteger, primary_key=True),
        sa.Column("timestamp", sa.BigInteger, primary_key=True),
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("value", sa.Float),
        sa.Column("dataset_name", sa.String(255), nullable=False, server_default=""),
        sa.Column("dataset_digest", sa.String(255), nullable=False, server_default=""),
    )


def downgrade() -> None:
    for table in ("logged_model_metrics", "logged_model_tags", "logged_model_params", "logged_models"):
        op.drop_table(table)
