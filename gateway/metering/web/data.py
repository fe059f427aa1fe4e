"""Everything the spend page shows, gathered in one go (blocking: run it in a thread)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.engine import Engine

from gateway.catalogue.prices import PriceBook
from gateway.metering.pool import PoolConfig, PoolEconomics, economics
from gateway.metering.reports import SpendQuery, SpendReport, spend


@dataclass(frozen=True, slots=True)
class PageFilters:
    start: date
    end: date
    team: str | None = None
    model: str | None = None
    #: Set when the caller's key may only see its own spend.
    key: str | None = None
    #: Filters the caller's key is held to (its team or itself); empty for an admin. The
    #: team list offered on the page is drawn from these rows only.
    locked: tuple[tuple[str, str], ...] = ()

    def pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple((k, v) for k, v in (("team", self.team), ("model", self.model), ("key", self.key)) if v)


@dataclass(slots=True)
class PageData:
    filters: PageFilters
    by_day: SpendReport
    by_provider: SpendReport
    by_model: SpendReport
    by_team: SpendReport
    pool: PoolEconomics | None
    teams: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


def gather(engine: Engine, book: PriceBook, pool: PoolConfig | None, filters: PageFilters, now: datetime) -> PageData:
    def report(*by: str) -> SpendReport:
        return spend(engine, SpendQuery(filters.start, filters.end, by=by, filters=filters.pairs()))

    everything = spend(engine, SpendQuery(filters.start, filters.end, ("team", "model"), filters.locked))
    return PageData(
        filters=filters,
        by_day=report("day", "provider"),
        by_provider=report("provider"),
        by_model=report("model"),
        by_team=report("team"),
        pool=economics(engine, book, pool, filters.start, filters.end, now, filters.team) if pool else None,
        teams=sorted({t for r in everything.rows if (t := r.group["team"])}),
        models=sorted({m for r in everything.rows if (m := r.group["model"])}),
    )
