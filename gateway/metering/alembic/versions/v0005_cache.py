"""Response cache hits in the ledger: a hit is a request row of its own kind (status
`cache_hit`, $0, one attempt row with outcome `cache_hit`) carrying what the original
answer cost (`saved_usd`, on both tables so reports stay one aggregate over attempts) and
the original request id (`cache_of`). Existing rows get `saved_usd` 0.

Revision ID: 0005_cache
Revises: 0004_idempotency
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.metering.money import Money

revision = "0005_cache"
down_revision = "0004_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("ledger_requests", "ledger_attempts"):
        op.add_column(table, sa.Column("saved_usd", Money, nullable=False, server_default="0"))
    op.add_column("ledger_requests", sa.Column("cache_of", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_requests") as batch:
        batch.drop_column("cache_of")
        batch.drop_column("saved_usd")
    with op.batch_alter_table("ledger_attempts") as batch:
        batch.drop_column("saved_usd")
