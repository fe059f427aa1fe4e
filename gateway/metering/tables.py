"""The ledger's two tables. Rows are only ever inserted: a correction is a new request
row whose `corrects` names the old one and whose figures are the deltas.

`ledger_attempts` repeats the day, logical model, key, team and project of its request so
that every spend report is one aggregate over one table (an invoice line stands alone).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, Index, Table
from sqlmodel import Field, SQLModel

from gateway.metering.money import Money


class RequestRow(SQLModel, table=True):
    __tablename__ = "ledger_requests"
    __table_args__ = (
        Index("ix_ledger_requests_day_provider", "day", "provider"),
        Index("ix_ledger_requests_team_day", "team", "day"),
        Index("ix_ledger_requests_key_day", "api_key_id", "day"),
    )

    request_id: str = Field(primary_key=True, max_length=64)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    day: date
    recorded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    api_key_id: str | None = Field(default=None, max_length=64)
    team: str | None = Field(default=None, max_length=128)
    project: str | None = Field(default=None, max_length=128)
    tags: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    model: str = Field(max_length=64)
    provider: str = Field(max_length=32)
    model_id: str = Field(max_length=160)
    status: str = Field(max_length=16)
    stream: bool
    latency_ms: float
    ttft_ms: float | None = None
    attempts: int
    tool_validation: str | None = Field(default=None, max_length=16)
    prompt_tokens: int = Field(sa_column=Column(BigInteger, nullable=False))
    completion_tokens: int = Field(sa_column=Column(BigInteger, nullable=False))
    cached_tokens: int = Field(sa_column=Column(BigInteger, nullable=False))
    usage_estimated: bool
    cost_usd: Decimal = Field(sa_column=Column(Money, nullable=False))
    corrects: str | None = Field(
        default=None, sa_column=Column(ForeignKey("ledger_requests.request_id"), nullable=True, index=True)
    )
    note: str = Field(default="", max_length=500)
    #: A cache hit (status "cache_hit"): what the original answer cost, and its request id.
    saved_usd: Decimal = Field(default=Decimal(0), sa_column=Column(Money, nullable=False, server_default="0"))
    cache_of: str | None = Field(default=None, max_length=64)


class AttemptRow(SQLModel, table=True):
    __tablename__ = "ledger_attempts"
    __table_args__ = (
        Index("ix_ledger_attempts_day_provider_model", "day", "provider", "model"),
        Index("ix_ledger_attempts_team_day", "team", "day"),
        Index("ix_ledger_attempts_key_day", "api_key_id", "day"),
    )

    request_id: str = Field(
        sa_column=Column(ForeignKey("ledger_requests.request_id"), primary_key=True, nullable=False)
    )
    seq: int = Field(primary_key=True)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    day: date
    provider: str = Field(max_length=32)
    model: str = Field(max_length=64)
    model_id: str = Field(max_length=160)
    api_key_id: str | None = Field(default=None, max_length=64)
    team: str | None = Field(default=None, max_length=128)
    project: str | None = Field(default=None, max_length=128)
    #: ok, error, cancelled (a stream the client left, or an attempt that lost a hedge race),
    #: correction or cache_hit.
    outcome: str = Field(max_length=16)
    status_code: int | None = None
    error_kind: str | None = Field(default=None, max_length=32)
    prompt_tokens: int = Field(sa_column=Column(BigInteger, nullable=False))
    completion_tokens: int = Field(sa_column=Column(BigInteger, nullable=False))
    cached_tokens: int = Field(sa_column=Column(BigInteger, nullable=False))
    usage_estimated: bool
    cost_usd: Decimal = Field(sa_column=Column(Money, nullable=False))
    latency_ms: float
    #: The attempt that ended its request: counting these counts each request once.
    final: bool
    reask: bool
    #: What a cache hit saved (on its one row, outcome "cache_hit"); 0 on every other row.
    saved_usd: Decimal = Field(default=Decimal(0), sa_column=Column(Money, nullable=False, server_default="0"))
    #: In a hedged request: "won" (the answering attempt) or "lost" (its cost is what hedging
    #: added: the prompt, flagged as an estimate, when it was cancelled unanswered); else NULL.
    hedge: str | None = Field(default=None, max_length=8)


def request_table() -> Table:
    table: Table = RequestRow.__table__  # type: ignore[attr-defined]
    return table


def attempt_table() -> Table:
    table: Table = AttemptRow.__table__  # type: ignore[attr-defined]
    return table
