"""Drill down from a report line to the requests behind it, each with its attempts and
any corrections that adjust it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from gateway.metering.render import money
from gateway.metering.reports import GROUP_COLUMNS, SpendQuery
from gateway.metering.rows import utc
from gateway.metering.tables import attempt_table, request_table

MAX_LIMIT = 10_000


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _attempts(connection: Connection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    t = attempt_table()
    found: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    stmt = select(t).where(t.c.request_id.in_(ids)).order_by(t.c.request_id, t.c.seq)
    skip = {"request_id", "at", "day", "model", "api_key_id", "team", "project"}
    for row in connection.execute(stmt).mappings():
        found[row["request_id"]].append({k: _plain(v) for k, v in row.items() if k not in skip})
    return found


def requests_page(engine: Engine, query: SpendQuery, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """The newest `limit` requests (at most MAX_LIMIT), and whether more matched."""
    shown = max(1, min(limit, MAX_LIMIT))
    rows = _newest(engine, query, shown + 1)
    return rows[:shown], len(rows) > shown


def requests(engine: Engine, query: SpendQuery, limit: int = 100) -> list[dict[str, Any]]:
    """The newest `limit` requests (1 to MAX_LIMIT) with an attempt matching the period and filters."""
    return _newest(engine, query, max(1, min(limit, MAX_LIMIT)))


def _newest(engine: Engine, query: SpendQuery, limit: int) -> list[dict[str, Any]]:
    a, r = attempt_table().c, request_table()
    matching = select(a.request_id).where(a.day >= query.start, a.day <= query.end)
    for key, value in query.filters:
        matching = matching.where(a[GROUP_COLUMNS[key]] == value)
    stmt = select(r).where(r.c.request_id.in_(matching)).order_by(r.c.at.desc(), r.c.request_id).limit(limit)
    with engine.connect() as connection:
        rows = [{k: _plain(v) for k, v in row.items()} for row in connection.execute(stmt).mappings()]
        attempts = _attempts(connection, [row["request_id"] for row in rows])
    for row in rows:
        row["attempt_rows"] = attempts[row["request_id"]]
    return rows
