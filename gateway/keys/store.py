"""The `api_keys` table (migration 0002_api_keys) in the ledger database. Blocking:
call from a worker thread. Rows are never deleted; revoking sets `revoked_at`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from gateway.keys.model import PERIODS, KeyRecord, hash_key, key_id_for, new_key, parse_scopes
from gateway.metering.migrate import upgrade
from gateway.metering.sql import make_engine

metadata = MetaData()
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("team", String(128)),
    Column("scopes", String(200), nullable=False),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("budget_usd", String(40)),
    Column("budget_period", String(8)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)


class KeyRequestError(ValueError):
    """A key request that is not valid (bad scope, limit or budget)."""


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # SQLite hands back naive datetimes
    return value


def record_of(row: RowMapping | dict[str, Any]) -> KeyRecord:
    return KeyRecord(
        key_id=row["id"],
        key_hash=row["key_hash"],
        team=row["team"],
        scopes=frozenset(s for s in row["scopes"].split(",") if s),
        rpm=row["rpm"],
        tpm=row["tpm"],
        budget_usd=Decimal(row["budget_usd"]) if row["budget_usd"] else None,
        budget_period=row["budget_period"],
        name=row["name"],
        created_at=_aware(row["created_at"]),
        revoked_at=_aware(row["revoked_at"]),
    )


def new_row(team: str | None, scopes: frozenset[str], name: str) -> tuple[str, dict[str, Any]]:
    """A fresh key and its `api_keys` row (no limits, no budget; the caller adds them)."""
    key = new_key()
    digest = hash_key(key)
    row: dict[str, Any] = {
        "id": key_id_for(digest),
        "key_hash": digest,
        "name": name,
        "team": team or None,
        "scopes": ",".join(sorted(scopes)),
        "rpm": None,
        "tpm": None,
        "budget_usd": None,
        "budget_period": None,
        "created_at": datetime.now(UTC),
        "revoked_at": None,
    }
    return key, row


def validate(
    scopes: str | list[str],
    rpm: int | None,
    tpm: int | None,
    budget_usd: str | float | Decimal | None,
    budget_period: str | None,
) -> tuple[frozenset[str], Decimal | None, str | None]:
    try:
        parsed = parse_scopes(scopes)
    except ValueError as exc:
        raise KeyRequestError(str(exc)) from exc
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise KeyRequestError(f"{name} must be a whole number of at least 1")
    budget = None
    if budget_usd is not None:
        try:
            budget = Decimal(str(budget_usd))
        except InvalidOperation as exc:
            raise KeyRequestError(f"budget_usd {budget_usd!r} is not a number") from exc
        if not budget.is_finite() or budget <= 0:
            raise KeyRequestError("budget_usd must be more than 0")
        budget_period = budget_period or "month"
        if budget_period not in PERIODS:
            raise KeyRequestError(f"budget_period must be one of {', '.join(PERIODS)}")
    elif budget_period is not None:
        raise KeyRequestError("budget_period needs budget_usd")
    return parsed, budget, budget_period


class KeyStore:
    """Usage:
    store = KeyStore.from_url("sqlite:///corral.db")
    key, record = store.create(team="search", scopes="chat")   # key is shown once, never stored
    store.revoke(record.key_id)
    """

    def __init__(self, engine: Engine, ensure_schema: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self._ensure = ensure_schema
        self._migrated = False
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> KeyStore:
        return cls(make_engine(url))

    def ensure_schema(self) -> None:
        if self._ensure is not None:
            self._ensure()
            return
        with self._lock:
            if not self._migrated:
                upgrade(self.engine)
                self._migrated = True

    def create(
        self,
        *,
        team: str | None,
        scopes: str | list[str],
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: str | float | Decimal | None = None,
        budget_period: str | None = None,
        name: str = "",
    ) -> tuple[str, KeyRecord]:
        """A new key and its record; the key itself is returned once and never stored."""
        parsed, budget, period = validate(scopes, rpm, tpm, budget_usd, budget_period)
        self.ensure_schema()
        for _ in range(5):
            key, row = new_row(team, parsed, name)
            row.update(rpm=rpm, tpm=tpm, budget_usd=None if budget is None else str(budget), budget_period=period)
            try:
                with self.engine.begin() as connection:
                    connection.execute(insert(api_keys), row)
            except IntegrityError:  # a 48-bit id collision: draw again
                continue
            return key, record_of(row)
        raise RuntimeError("could not draw a unique key id")

    def list(self, include_revoked: bool = True) -> list[KeyRecord]:
        self.ensure_schema()
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as connection:
            return [record_of(row) for row in connection.execute(query).mappings()]

    def get(self, key_id: str) -> KeyRecord | None:
        self.ensure_schema()
        with self.engine.connect() as connection:
            row = connection.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        return None if row is None else record_of(row)

    def revoke(self, key_id: str) -> KeyRecord | None:
        """Revoke (idempotent: the first revocation time stays); None for an unknown id."""
        self.ensure_schema()
        with self.engine.begin() as connection:
            connection.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return self.get(key_id)

    def close(self) -> None:
        self.engine.dispose()
