"""API keys: hashed keys with team, scopes, rate limits and budget; revoked, never deleted.

Revision ID: 0002_api_keys
Revises: 0001_ledger
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_api_keys"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

AWARE = sa.DateTime(timezone=True)

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION api_keys_no_delete() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'api keys are never deleted: revoke them (% on % refused)', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("team", sa.String(128)),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("budget_usd", sa.String(40)),
        sa.Column("budget_period", sa.String(8)),
        sa.Column("created_at", AWARE, nullable=False),
        sa.Column("revoked_at", AWARE),
    )
    op.create_index("ix_api_keys_team", "api_keys", ["team"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER api_keys_no_delete BEFORE DELETE ON api_keys "
            "FOR EACH ROW EXECUTE FUNCTION api_keys_no_delete()"
        )
        op.execute(
            "CREATE TRIGGER api_keys_no_truncate BEFORE TRUNCATE ON api_keys "
            "FOR EACH STATEMENT EXECUTE FUNCTION api_keys_no_delete()"
        )
    else:
        op.execute(
            "CREATE TRIGGER api_keys_no_delete BEFORE DELETE ON api_keys "
            "BEGIN SELECT RAISE(ABORT, 'api keys are never deleted: revoke them'); END"
        )


def downgrade() -> None:
    op.drop_table("api_keys")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS api_keys_no_delete()")
