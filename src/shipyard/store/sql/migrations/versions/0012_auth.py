"""Authentication: ``users`` (roles, disabled, argon2 password hash), ``api_tokens`` (SHA-256 digests
only, scopes, expiry, revocation, last use) and ``grants`` (owner/editor/reader on one experiment or
model).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("roles_json", sa.Text, nullable=False, server_default="[]"),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("password_hash", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_login_at", sa.BigInteger),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user", sa.String(255), sa.ForeignKey("users.name"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("revoked_at", sa.BigInteger),
        sa.Column("last_used_at", sa.BigInteger),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user"])
    op.create_table(
        "grants",
        sa.Column("user", sa.String(255), sa.ForeignKey("users.name"), primary_key=True),
        sa.Column("object_type", sa.String(16), primary_key=True),
        sa.Column("object_id", sa.String(512), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
    )
    op.create_index("ix_grants_object", "grants", ["object_type", "object_id"])


def downgrade() -> None:
    op.drop_index("ix_grants_object", table_name="grants")
    op.drop_table("grants")
    op.drop_index("ix_api_tokens_user", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
