"""The demo key, made at most once per database: a one-row table whose primary key
replicas starting together race for, in the same transaction that creates the key.

Revision ID: 0003_demo_key
Revises: 0002_api_keys
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_demo_key"
down_revision = "0002_api_keys"
branch_labels = None
depends_on = None

#: A database whose demo key was made before this revision keeps it as its demo key.
BACKFILL = """
INSERT INTO api_keys_demo (slot, key_id, created_at)
SELECT 1, id, created_at FROM api_keys WHERE name = 'demo' ORDER BY created_at, id LIMIT 1
"""


def upgrade() -> None:
    op.create_table(
        "api_keys_demo",
        sa.Column("slot", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("slot = 1", name="ck_api_keys_demo_one_row"),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("api_keys_demo")
