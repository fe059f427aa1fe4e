"""The usage ledger: one row per client request, one per upstream attempt; append-only.

Revision ID: 0001_ledger
Revises:
Create Date: 2026-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.metering.money import Money

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("ledger_requests", "ledger_attempts")
AWARE = sa.DateTime(timezone=True)

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the ledger is append-only: % on % refused (write a correction row instead)',
    TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql
"""


def _request_table() -> None:
    op.create_table(
        "ledger_requests",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("at", AWARE, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("recorded_at", AWARE, nullable=False),
        sa.Column("api_key_id", sa.String(64)),
        sa.Column("team", sa.String(128)),
        sa.Column("project", sa.String(128)),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("model_id", sa.String(160), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("tool_validation", sa.String(16)),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False),
        sa.Column("usage_estimated", sa.Boolean, nullable=False),
        sa.Column("cost_usd", Money, nullable=False),
        sa.Column("corrects", sa.String(64), sa.ForeignKey("ledger_requests.request_id")),
        sa.Column("note", sa.String(500), nullable=False),
    )
    op.create_index("ix_ledger_requests_day_provider", "ledger_requests", ["day", "provider"])
    op.create_index("ix_ledger_requests_team_day", "ledger_requests", ["team", "day"])
    op.create_index("ix_ledger_requests_key_day", "ledger_requests", ["api_key_id", "day"])
    op.create_index("ix_ledger_requests_corrects", "ledger_requests", ["corrects"])


def _attempt_table() -> None:
    op.create_table(
        "ledger_attempts",
        sa.Column("request_id", sa.String(64), sa.ForeignKey("ledger_requests.request_id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("at", AWARE, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(160), nullable=False),
        sa.Column("api_key_id", sa.String(64)),
        sa.Column("team", sa.String(128)),
        sa.Column("project", sa.String(128)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error_kind", sa.String(32)),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False),
        sa.Column("usage_estimated", sa.Boolean, nullable=False),
        sa.Column("cost_usd", Money, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("final", sa.Boolean, nullable=False),
        sa.Column("reask", sa.Boolean, nullable=False),
    )
    op.create_index("ix_ledger_attempts_day_provider_model", "ledger_attempts", ["day", "provider", "model"])
    op.create_index("ix_ledger_attempts_team_day", "ledger_attempts", ["team", "day"])
    op.create_index("ix_ledger_attempts_key_day", "ledger_attempts", ["api_key_id", "day"])


def _append_only() -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) in the database itself."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()"
            )
        return
    for table in TABLES:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: {action} on {table} refused'); END"
            )


def upgrade() -> None:
    _request_table()
    _attempt_table()
    _append_only()


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ledger_append_only()")
