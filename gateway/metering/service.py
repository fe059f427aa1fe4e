"""What the CLI and the HTTP API share: reading report parameters, picking the pricing
(ledger, another book, one provider) and the pool's GPU cost from the settings."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from gateway.catalogue.pool_prices import PoolBasis
from gateway.catalogue.prices import DEFAULT_PATH, PriceBook, load_price_book
from gateway.config import ConfigError, Settings
from gateway.metering.pool import PoolConfig, PoolEconomics, economics
from gateway.metering.reports import FILTERS, ReportError, SpendQuery, SpendReport, spend
from gateway.metering.reprice import as_provider, repriced, with_book


def parse_day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ReportError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from exc


def parse_by(value: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in value.split(",") if k.strip())


def make_query(start: str, end: str | None, by: str, filters: Mapping[str, str | None]) -> SpendQuery:
    first = parse_day(start, "from")
    return SpendQuery(
        start=first,
        end=parse_day(end, "to") if end else first,
        by=parse_by(by),
        filters=tuple((k, v) for k in FILTERS if (v := filters.get(k))),
    )


def price_book(settings: Settings) -> PriceBook:
    """The configured price book, its pool rows derived from the configured pool."""
    path = Path(settings.price_book_path) if settings.price_book_path else DEFAULT_PATH
    return load_price_book(path, pool_basis(settings))


def pool_basis(settings: Settings) -> PoolBasis:
    try:
        return settings.pool_basis()
    except ConfigError as exc:
        raise ReportError(str(exc)) from exc


def pool_config(settings: Settings) -> PoolConfig | None:
    """The self-hosted pool's GPU cost, from the same basis its per-token prices come from."""
    found = settings.pool()
    if found is None:
        return None
    basis = pool_basis(settings)
    return PoolConfig(gpus=basis.gpus, gpu_hour_usd=basis.gpu_hour_usd, provider=found[0])


def make_report(
    engine: Engine,
    book: PriceBook,
    query: SpendQuery,
    *,
    reprice: tuple[str, PriceBook] | None = None,
    provider: str | None = None,
) -> SpendReport:
    """Costs as recorded, or under another book (`reprice`), or all at one `provider`'s prices."""
    if reprice is not None and provider is not None:
        raise ReportError("choose --reprice or --as-provider, not both")
    if reprice is not None:
        label, other = reprice
        return repriced(engine, query, with_book(other), f"reprice: {label}")
    if provider is not None:
        known = {p.provider for p in book.in_force(query.end)}
        if provider not in known:
            raise ReportError(f"--as-provider {provider!r}: the price book has {', '.join(sorted(known))}")
        return repriced(engine, query, as_provider(book, provider), f"as-provider: {provider}")
    return spend(engine, query)


def make_pool(
    engine: Engine, book: PriceBook, settings: Settings, query: SpendQuery, now: datetime | None = None
) -> PoolEconomics | None:
    config = pool_config(settings)
    if config is None:
        return None
    team = dict(query.filters).get("team")
    return economics(engine, book, config, query.start, query.end, now or datetime.now(UTC), team)
