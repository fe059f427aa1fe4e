"""Hedged requests: `ledger_attempts.hedge` marks the two attempts of a hedge race, "won"
(the one that answered) and "lost" (cancelled, or answered second; its cost is what
hedging added and spend reports show it as hedge cost). NULL for every other attempt.

Revision ID: 0006_hedge
Revises: 0005_cache
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_hedge"
down_revision = "0005_cache"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_attempts") as batch:
        batch.add_column(sa.Column("hedge", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_attempts") as batch:
        batch.drop_column("hedge")
