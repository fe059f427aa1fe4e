"""Alembic migrations of the usage ledger."""
