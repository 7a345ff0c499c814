"""Registry tags: ``model_tags`` (a registered model's) and ``model_version_tags`` (a version's).

Tags are annotations, changed in place and audited, as MLflow's registry has them. A version's
tags start as the tags of its card (``metadata_json``'s ``tags``, given at registration), so the
versions registered before this revision are backfilled from their cards; the card itself stays
as registered.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_tags",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    version_tags = op.create_table(
        "model_version_tags",
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    versions = sa.table("model_versions", sa.column("id", sa.Integer), sa.column("metadata_json", sa.Text))
    rows = []
    found = op.get_bind().execute(sa.select(versions.c.id, versions.c.metadata_json))
    for version_id, metadata_json in found:
        card = json.loads(metadata_json or "{}")
        tags = card.get("tags") if isinstance(card, dict) else None
        if isinstance(tags, dict):
            kept = {str(k)[:250]: str(v) for k, v in tags.items() if str(k)}  # one row per stored key
            rows += [{"model_version_id": version_id, "key": k, "value": v} for k, v in kept.items()]
    if rows:
        op.bulk_insert(version_tags, rows)


def downgrade() -> None:
    op.drop_table("model_version_tags")
    op.drop_table("model_tags")
