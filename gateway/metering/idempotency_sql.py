"""Idempotency claims in the ledger database (table `idempotency_keys`, migration
0004_idempotency), shared by every replica. Blocking: call from a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import Code, error
from gateway.metering.idempotency import Answer, Claim, Held
from gateway.metering.sql import insert_ignoring_duplicates

metadata = MetaData()
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("body_sha256", String(64), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("state", String(8), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("status", Integer),
    Column("headers", JSON),
    Column("body", LargeBinary),
    Column("stream", Boolean, nullable=False),
)
T = idempotency_keys.c


def _claim_row(claim: Claim) -> dict[str, Any]:
    return {
        "scope": claim.scope,
        "key": claim.key,
        "body_sha256": claim.body_sha256,
        "request_id": claim.request_id,
        "state": "running",
        "created_at": claim.created_at,
        "expires_at": claim.expires_at,
        "status": None,
        "headers": None,
        "body": None,
        "stream": claim.stream,
    }


def _mine(claim: Claim) -> Any:
    return and_(T.scope == claim.scope, T.key == claim.key, T.request_id == claim.request_id)


class SqlIdempotencyStore:
    def __init__(self, engine: Engine, ensure_schema: Callable[[], None]) -> None:
        self.engine = engine
        self.ensure_schema = ensure_schema

    def claim(self, claim: Claim, stale_before: datetime) -> Held | None:
        """503 ledger_unavailable while the database is unreachable: without the claim the
        request could run twice, so it is not run at all."""
        try:
            return self._claim(claim, stale_before)
        except SQLAlchemyError as exc:
            raise error(
                Code.LEDGER_UNAVAILABLE,
                f"the idempotency store is unreachable ({type(exc).__name__}); retry later",
                headers={"retry-after": "1"},
            ) from exc

    def _claim(self, claim: Claim, stale_before: datetime) -> Held | None:
        self.ensure_schema()
        row = _claim_row(claim)
        with self.engine.begin() as connection:
            insert = insert_ignoring_duplicates(idempotency_keys, connection.dialect.name).returning(T.request_id)
            if connection.execute(insert, row).first() is not None:
                return None
            abandoned = or_(T.expires_at < claim.created_at, and_(T.state == "running", T.created_at < stale_before))
            taken = connection.execute(
                update(idempotency_keys)
                .where(T.scope == claim.scope, T.key == claim.key, abandoned)
                .values({k: v for k, v in row.items() if k not in {"scope", "key"}})
                .returning(T.request_id)
            )
            if taken.first() is not None:
                return None
            held = connection.execute(
                select(T.body_sha256, T.request_id, T.state, T.status, T.headers, T.body, T.stream, T.expires_at).where(
                    T.scope == claim.scope, T.key == claim.key
                )
            ).one()
        answer = None
        if held.state == "done":
            answer = Answer(held.status, dict(held.headers), bytes(held.body), bool(held.stream))
        return Held(held.body_sha256, held.request_id, answer, held.expires_at)

    def keep(self, claim: Claim, answer: Answer) -> bool:
        with self.engine.begin() as connection:
            done = connection.execute(
                update(idempotency_keys)
                .where(_mine(claim))
                .values(state="done", status=answer.status, headers=answer.headers, body=answer.body)
            )
            return bool(done.rowcount == 1)

    def release(self, claim: Claim) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(idempotency_keys).where(_mine(claim), T.state == "running"))

    def purge(self, now: datetime) -> int:
        self.ensure_schema()
        with self.engine.begin() as connection:
            return int(connection.execute(delete(idempotency_keys).where(T.expires_at < now)).rowcount)
