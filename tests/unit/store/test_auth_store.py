"""The token check every authenticated request runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from shipyard.store.sql import schema
from shipyard.store.sql.auth import _VERIFY
from shipyard.store.sql.store import SqlStore


def test_the_token_check_reads_every_column_of_a_token() -> None:
    """``_VERIFY`` is SQL text: a column added to ``api_tokens`` must be added to it too."""
    read = {
        c.split(".")[-1].strip('"') for c in str(_VERIFY).split(" FROM ")[0][len("SELECT ") :].split(", ")
    }
    assert {c.name for c in schema.api_tokens.c} <= read


def test_verify_token_answers_the_user_and_token_until_revoked_expired_or_disabled(store_uri: str) -> None:
    store = SqlStore(store_uri)
    try:
        store.create_user("sam", ["scientist"], "admin")
        token, secret = store.create_token("sam", "laptop", "admin", ["read", "write"])
        found = store.verify_token(secret)
        assert found is not None
        user, got = found
        assert (user.name, user.roles, user.disabled) == ("sam", ("scientist",), False)
        assert (got.id, got.user, got.name, got.scopes) == (token.id, "sam", "laptop", ("read", "write"))
        assert got.last_used_at is None  # as read; the check records the use
        assert store.verify_token(secret + "x") is None and store.verify_token("") is None
        store.revoke_token(token.id, "admin")
        assert store.verify_token(secret) is None
        soon = int(time.time() * 1000) + 60_000
        _, short = store.create_token("sam", "short", "admin", ["read"], expires_at=soon)
        assert store.verify_token(short) is not None
        _, past = store.create_token("sam", "past", "admin", ["read"], expires_at=soon)
        with store._write() as conn:
            conn.execute(
                schema.api_tokens.update().where(schema.api_tokens.c.name == "past").values(expires_at=1)
            )
        assert store.verify_token(past) is None
        store.update_user("sam", "admin", disabled=True)
        assert store.verify_token(short) is None
    finally:
        store.close()
