"""Conversations behind the Responses API's `previous_response_id`: one row per stored
response (its whole conversation), readable only by the API key that made it, until it expires.

Revision ID: 0007_responses
Revises: 0006_hedge
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_responses"
down_revision = "0006_hedge"
branch_labels = None
depends_on = None

AWARE = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("messages", sa.JSON, nullable=False),
        sa.Column("created_at", AWARE, nullable=False),
        sa.Column("expires_at", AWARE, nullable=False),
    )
    op.create_index("ix_responses_expires_at", "responses", ["expires_at"])


def downgrade() -> None:
    op.drop_table("responses")
