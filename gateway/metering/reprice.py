"""Finance's what-ifs: the period's tokens priced with another price book (`--reprice`),
or as if every request had gone to one provider (`--as-provider`). Prices are taken per
day, so a price change inside the period applies from its effective date."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from sqlalchemy.engine import Engine

from gateway.catalogue.prices import Price, PriceBook
from gateway.metering.money import quantize
from gateway.metering.reports import ReportError, SpendQuery, SpendReport, fetch, fold
from gateway.schema.usage import Usage

Pricer = Callable[[str, str, date], Price | None]


def with_book(book: PriceBook) -> Pricer:
    return book.at


def as_provider(book: PriceBook, name: str) -> Pricer:
    return lambda _provider, model, day: book.at(name, model, day)


def repriced(engine: Engine, query: SpendQuery, pricer: Pricer, label: str) -> SpendReport:
    """The report `query` asks for, with every cost recomputed by `pricer`."""
    keys = tuple(dict.fromkeys((*query.by, "provider", "model", "day", "reask", "hedge")))
    parts = []
    missing: set[str] = set()
    for group, figures in fetch(engine, query, keys):
        day = group["day"] if isinstance(group["day"], date) else date.fromisoformat(str(group["day"]))
        price = pricer(group["provider"], group["model"], day)
        if price is None:
            missing.add(f"{group['provider']}/{group['model']} on {day}")
            continue
        usage = Usage(figures.prompt_tokens, figures.completion_tokens, figures.cached_tokens)
        figures.cost_usd = quantize(price.cost(usage))
        figures.reask_cost_usd = figures.cost_usd if group["reask"] else Decimal(0)
        figures.hedge_cost_usd = figures.cost_usd if group["hedge"] == "lost" else Decimal(0)
        parts.append((group, figures))
    if missing:
        raise ReportError(f"{label}: no price for {', '.join(sorted(missing)[:5])}")
    return SpendReport(query, fold(query, parts), pricing=label)
