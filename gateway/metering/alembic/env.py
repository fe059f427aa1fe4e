"""Alembic environment: the gateway passes its own connection; the alembic CLI (for new
revisions) connects to DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from gateway.metering import tables

target_metadata = SQLModel.metadata
assert tables.RequestRow.__tablename__ in target_metadata.tables


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    engine = create_engine(os.environ.get("DATABASE_URL", "sqlite:///corral.db"))
    with engine.begin() as connection:
        _run(connection)


main()
