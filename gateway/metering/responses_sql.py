"""Stored Responses API conversations in the ledger database (table `responses`, migration
0007_responses), shared by every replica. Blocking: call from a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, delete, select
from sqlalchemy.engine import Engine

from gateway.metering.sql import insert_ignoring_duplicates

metadata = MetaData()
responses = Table(
    "responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("scope", String(64), nullable=False),
    Column("messages", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
T = responses.c


class SqlConversations:
    def __init__(self, engine: Engine, ensure_schema: Callable[[], None]) -> None:
        self.engine = engine
        self.ensure_schema = ensure_schema

    def put(
        self, scope: str, response_id: str, messages: list[dict[str, Any]], now: datetime, expires: datetime
    ) -> None:
        self.ensure_schema()
        row = {"id": response_id, "scope": scope, "messages": messages, "created_at": now, "expires_at": expires}
        with self.engine.begin() as connection:
            connection.execute(insert_ignoring_duplicates(responses, connection.dialect.name), row)

    def get(self, scope: str, response_id: str, now: datetime) -> list[dict[str, Any]] | None:
        """The conversation, when it exists, is this scope's and has not expired."""
        self.ensure_schema()
        with self.engine.connect() as connection:
            found = connection.execute(
                select(T.messages).where(T.id == response_id, T.scope == scope, T.expires_at > now)
            ).scalar_one_or_none()
        return list(found) if found is not None else None

    def purge(self, now: datetime) -> int:
        self.ensure_schema()
        with self.engine.begin() as connection:
            return int(connection.execute(delete(responses).where(T.expires_at <= now)).rowcount)
