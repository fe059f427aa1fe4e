"""The ledger in SQL (SQLite by default, PostgreSQL via DATABASE_URL)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal

import orjson
from sqlalchemy import Column, Numeric, create_engine
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from gateway.metering.events import UsageEvent


class RequestRow(SQLModel, table=True):
    __tablename__ = "ledger_requests"

    request_id: str = Field(primary_key=True, max_length=64)
    at: datetime = Field(index=True)
    api_key_id: str | None = Field(default=None, index=True)
    model: str = Field(index=True)
    provider: str = Field(index=True)
    model_id: str
    status: str
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    usage_estimated: bool
    cost_usd: Decimal = Field(sa_column=Column(Numeric(20, 10), nullable=False))
    latency_ms: float
    ttft_ms: float | None = None
    attempts: int
    attempts_json: str
    tags_json: str


def _row(event: UsageEvent) -> RequestRow:
    return RequestRow(
        request_id=event.request_id,
        at=event.at,
        api_key_id=event.api_key_id,
        model=event.model,
        provider=event.provider,
        model_id=event.model_id,
        status=event.status,
        stream=event.stream,
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        cached_tokens=event.cached_tokens,
        usage_estimated=event.usage_estimated,
        cost_usd=event.cost_usd,
        latency_ms=event.latency_ms,
        ttft_ms=event.ttft_ms,
        attempts=len(event.attempts),
        attempts_json=orjson.dumps([asdict(a) for a in event.attempts]).decode(),
        tags_json=orjson.dumps(event.tags).decode(),
    )


class SqlStore:
    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        SQLModel.metadata.create_all(self.engine)

    def write(self, events: list[UsageEvent]) -> None:
        """Insert a batch; request ids already present are skipped (idempotent replay)."""
        with Session(self.engine) as session:
            ids = [e.request_id for e in events]
            query = select(RequestRow.request_id).where(RequestRow.request_id.in_(ids))  # type: ignore[attr-defined]
            existing = set(session.exec(query))
            seen: set[str] = set()
            for event in events:
                if event.request_id in existing or event.request_id in seen:
                    continue
                seen.add(event.request_id)
                session.add(_row(event))
            session.commit()

    def count(self) -> int:
        with Session(self.engine) as session:
            return len(session.exec(select(RequestRow.request_id)).all())
