"""SQL metadata store (SQLite, PostgreSQL) on SQLAlchemy 2 with Alembic migrations."""

from shipyard.store.sql.store import SqlStore

__all__ = ["SqlStore"]
