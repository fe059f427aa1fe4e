"""Spend reports: one aggregate over `ledger_attempts`, grouped by any of provider, model,
team, project, key and day (UTC). Costs are attributed to the provider that billed each
attempt; `requests` counts each client request a backend answered once (its final attempt).
A cache hit's one row (outcome `cache_hit`) is no request or attempt and costs nothing: it
counts in `cache_hits`, and what the original answer cost in `saved_usd`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select, type_coerce
from sqlalchemy.engine import Engine

from gateway.metering.money import Money
from gateway.metering.tables import attempt_table

#: Group key -> column of ledger_attempts.
GROUP_COLUMNS = {
    "provider": "provider",
    "model": "model",
    "model_id": "model_id",
    "team": "team",
    "project": "project",
    "key": "api_key_id",
    "day": "day",
}
#: Columns repricing also needs, not offered as report keys.
_INTERNAL = {"reask": "reask", "hedge": "hedge"}
FILTERS = ("provider", "model", "team", "project", "key")
MAX_DAYS = 400


class ReportError(ValueError):
    """The report cannot be made as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class SpendQuery:
    start: date
    end: date
    by: tuple[str, ...] = ("provider",)
    filters: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ReportError(f"--to {self.end} is before --from {self.start}")
        if (self.end - self.start).days >= MAX_DAYS:
            raise ReportError(f"a report covers at most {MAX_DAYS} days")
        unknown = [k for k in self.by if k not in GROUP_COLUMNS]
        if unknown or len(set(self.by)) != len(self.by):
            raise ReportError(f"--by {','.join(self.by)}: choose distinct keys from {', '.join(GROUP_COLUMNS)}")
        bad = [k for k, _ in self.filters if k not in FILTERS]
        if bad:
            raise ReportError(f"unknown filter(s) {bad}; known: {', '.join(FILTERS)}")


@dataclass(slots=True)
class Figures:
    requests: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    estimated_attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    reask_cost_usd: Decimal = Decimal(0)
    cache_hits: int = 0
    #: What the answers served from the cache cost when first made (never counted as spend).
    saved_usd: Decimal = Decimal(0)
    #: What attempts that lost a hedge race were billed (included in `cost_usd`).
    hedge_cost_usd: Decimal = Decimal(0)

    def add(self, other: Figures) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class SpendRow:
    group: dict[str, str | None]
    figures: Figures


@dataclass(slots=True)
class SpendReport:
    query: SpendQuery
    rows: list[SpendRow]
    #: "ledger" (costs as recorded), "reprice: <book>" or "as-provider: <name>".
    pricing: str = "ledger"
    total: Figures = field(default_factory=Figures)

    def __post_init__(self) -> None:
        for row in self.rows:
            self.total.add(row.figures)


def _sum(column: ColumnElement[Any], when: ColumnElement[bool] | None = None) -> ColumnElement[Any]:
    value = column if when is None else case((when, column), else_=0)
    return func.coalesce(func.sum(value), 0)


def figure_columns() -> list[ColumnElement[Any]]:
    t = attempt_table().c
    money = (_sum(t.cost_usd), _sum(t.cost_usd, t.reask), _sum(t.saved_usd), _sum(t.cost_usd, t.hedge == "lost"))
    hit = t.outcome == "cache_hit"
    return [
        _sum(case((and_(t.final, t.outcome != "cache_hit"), 1), else_=0)).label("requests"),
        _sum(case((hit, 0), else_=1)).label("attempts"),
        _sum(case((t.outcome == "error", 1), else_=0)).label("failed_attempts"),
        _sum(case((t.usage_estimated, 1), else_=0)).label("estimated_attempts"),
        _sum(t.prompt_tokens).label("prompt_tokens"),
        _sum(t.completion_tokens).label("completion_tokens"),
        _sum(t.cached_tokens).label("cached_tokens"),
        type_coerce(money[0], Money).label("cost_usd"),
        type_coerce(money[1], Money).label("reask_cost_usd"),
        _sum(case((hit, 1), else_=0)).label("cache_hits"),
        type_coerce(money[2], Money).label("saved_usd"),
        type_coerce(money[3], Money).label("hedge_cost_usd"),
    ]


def grouped(query: SpendQuery, keys: tuple[str, ...]) -> Select[Any]:
    """SELECT keys..., figures... FROM ledger_attempts for the period and filters."""
    t = attempt_table().c
    columns = GROUP_COLUMNS | _INTERNAL
    group = [t[columns[k]].label(k) for k in keys]
    stmt = select(*group, *figure_columns()).where(t.day >= query.start, t.day <= query.end)
    for key, value in query.filters:
        stmt = stmt.where(t[GROUP_COLUMNS[key]] == value)
    return stmt.group_by(*group)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def figures_of(row: Any) -> Figures:
    return Figures(
        requests=int(row.requests),
        attempts=int(row.attempts),
        failed_attempts=int(row.failed_attempts),
        estimated_attempts=int(row.estimated_attempts),
        prompt_tokens=int(row.prompt_tokens),
        completion_tokens=int(row.completion_tokens),
        cached_tokens=int(row.cached_tokens),
        cost_usd=Decimal(row.cost_usd or 0),
        reask_cost_usd=Decimal(row.reask_cost_usd or 0),
        cache_hits=int(row.cache_hits),
        saved_usd=Decimal(row.saved_usd or 0),
        hedge_cost_usd=Decimal(row.hedge_cost_usd or 0),
    )


def fetch(engine: Engine, query: SpendQuery, keys: tuple[str, ...]) -> list[tuple[dict[str, Any], Figures]]:
    with engine.connect() as connection:
        result = connection.execute(grouped(query, keys))
        return [({k: getattr(row, k) for k in keys}, figures_of(row)) for row in result]


def _order(row: SpendRow) -> tuple[tuple[bool, str], ...]:
    """Group keys ascending, None last (the same on every database)."""
    return tuple((v is None, v or "") for v in row.group.values())


def spend(engine: Engine, query: SpendQuery) -> SpendReport:
    """Costs as recorded in the ledger."""
    rows = [SpendRow({k: _text(v) for k, v in group.items()}, figs) for group, figs in fetch(engine, query, query.by)]
    return SpendReport(query, sorted(rows, key=_order))


def fold(query: SpendQuery, parts: list[tuple[dict[str, Any], Figures]]) -> list[SpendRow]:
    """Merge finer-grained rows into the groups `query.by` asks for, in key order."""
    merged: dict[tuple[str | None, ...], Figures] = {}
    for group, figs in parts:
        key = tuple(_text(group[k]) for k in query.by)
        merged.setdefault(key, Figures()).add(figs)
    rows = [SpendRow(dict(zip(query.by, key, strict=True)), figs) for key, figs in merged.items()]
    return sorted(rows, key=_order)
