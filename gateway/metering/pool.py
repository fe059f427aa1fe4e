"""Does the self-hosted pool pay for itself? Its real cost is fixed: $/GPU-hour x GPUs x
hours in the period. Spread over the tokens it actually served, that is an effective
$/1M tokens, set beside what the same tokens would have cost at each hosted provider's
list prices. The pool is whichever provider the price book prices on `basis: gpu_hours`.

No double counting: the pool's requests are in the ledger at the per-token price derived
from the same GPUs, $/GPU-hour and stated throughput (gateway.catalogue.pool_prices), so
they are the part of the fixed cost that requests used (`attributed_cost_usd`); the rest
is idle GPU time (`unattributed_cost_usd`). Spend in the period is the report's total plus
the unattributed part.

The hours are those of the period asked for; for a period not yet ended, those up to now
(`to_now`, said wherever the figure is shown). Asked for one team, the fixed cost is the
team's share: the whole pool's cost times the team's fraction of the pool's tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine

from gateway.catalogue.prices import PER, PriceBook
from gateway.metering.money import quantize
from gateway.metering.reports import Figures, SpendQuery, fetch
from gateway.schema.usage import Usage


@dataclass(frozen=True, slots=True)
class PoolConfig:
    gpus: int
    gpu_hour_usd: Decimal
    #: The provider configured as the pool.
    provider: str = ""


@dataclass(slots=True)
class Hosted:
    provider: str
    #: What the pool's tokens would have cost at this provider's list prices.
    same_tokens_cost_usd: Decimal
    effective_per_1m_usd: Decimal | None
    #: model -> (input, output) USD per 1M tokens in force at the end of the period.
    list_prices: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)


@dataclass(slots=True)
class PoolEconomics:
    provider: str
    gpus: int
    gpu_hour_usd: Decimal
    hours: Decimal
    fixed_cost_usd: Decimal
    served: Figures
    effective_per_1m_usd: Decimal | None
    hosted: list[Hosted]
    #: The period has not ended: hours (and cost) run to now.
    to_now: bool = False
    #: Set when the figures are one team's share of the pool.
    team: str | None = None
    #: That team's fraction of the pool's tokens in the period (None for the whole pool).
    share: Decimal | None = None
    #: The whole pool's fixed cost in the period (equal to fixed_cost_usd without a team).
    pool_fixed_cost_usd: Decimal = Decimal(0)

    @property
    def attributed_cost_usd(self) -> Decimal:
        """What the pool's requests were charged in the ledger (at the derived per-token rate):
        part of the spend table's total already, and part of the fixed cost, never extra to it."""
        return quantize(self.served.cost_usd)

    @property
    def unattributed_cost_usd(self) -> Decimal:
        """Fixed cost no request was charged for: GPU time left idle (negative when the pool
        served more than its stated throughput). The period's outlay is the spend table's
        total plus this, never the table's total plus the whole fixed cost."""
        return self.fixed_cost_usd - self.attributed_cost_usd

    @property
    def cheapest_hosted(self) -> Hosted | None:
        return min(self.hosted, key=lambda h: h.same_tokens_cost_usd, default=None)


def period_hours(start: date, end: date, now: datetime) -> Decimal:
    """Hours from `start` 00:00 UTC to the end of `end`, or to `now` if that is sooner."""
    begin = datetime.combine(start, time(), UTC)
    finish = min(period_end(end), now)
    seconds = max(int((finish - begin).total_seconds()), 0)
    return Decimal(seconds) / 3600


def period_end(end: date) -> datetime:
    return datetime.combine(end + timedelta(days=1), time(), UTC)


def pool_basis(pool: PoolEconomics) -> str:
    """How the fixed cost was worked out, rounded for reading (exact figures: JSON, CSV)."""
    hours = f"{pool.hours.quantize(Decimal('0.01')):,} h"
    if pool.to_now:
        hours += " (to now: the period has not ended)"
    whole = f"{pool.gpus} GPUs x {pool.gpu_hour_usd:,.2f} USD/GPU-hour x {hours} = {pool.pool_fixed_cost_usd:,.2f} USD"
    if pool.team is None or pool.share is None:
        return f"{whole} fixed"
    percent = (pool.share * 100).quantize(Decimal("0.1"))
    return f"team {pool.team}: {percent}% of the pool's tokens, {pool.fixed_cost_usd:,.2f} USD of {whole} fixed"


def pool_provider(book: PriceBook, when: date, configured: str) -> str | None:
    """The configured pool when the book prices it by GPU-hours, else the first provider
    that is (another self-hosted server, such as SGLang, priced the same way is not the pool)."""
    pooled = [p.provider for p in book.in_force(when) if p.basis == "gpu_hours"]
    return configured if configured in pooled else next(iter(pooled), None)


def per_1m(cost: Decimal, tokens: int) -> Decimal | None:
    return quantize(cost * PER / tokens) if tokens > 0 else None


def _hosted(book: PriceBook, pool: str, served: list[tuple[str, date, Figures]], end: date) -> list[Hosted]:
    tokens = sum(f.total_tokens for _, _, f in served)
    # A backend free per token (a local Ollama) says nothing about what the pool saves.
    priced = [p for p in book.in_force(end) if p.basis == "tokens" and p.provider != pool and (p.input or p.output)]
    providers = sorted({p.provider for p in priced})
    out = []
    for name in providers:
        cost = Decimal(0)
        for model, day, figures in served:
            price = book.at(name, model, day)
            if price is not None:
                cost += price.cost(Usage(figures.prompt_tokens, figures.completion_tokens, figures.cached_tokens))
        listed = {p.model: (p.input, p.output) for p in book.in_force(end) if p.provider == name}
        out.append(Hosted(name, quantize(cost), per_1m(cost, tokens), listed))
    return out


def _served(engine: Engine, pool: str, start: date, end: date, team: str | None) -> list[tuple[str, date, Figures]]:
    filters = (("provider", pool),) + ((("team", team),) if team is not None else ())
    query = SpendQuery(start, end, by=("model", "day"), filters=filters)
    return [(str(g["model"]), _day(g["day"]), f) for g, f in fetch(engine, query, ("model", "day"))]


def _total(served: list[tuple[str, date, Figures]]) -> Figures:
    total = Figures()
    for _, _, figures in served:
        total.add(figures)
    return total


def economics(
    engine: Engine,
    book: PriceBook,
    config: PoolConfig,
    start: date,
    end: date,
    now: datetime,
    team: str | None = None,
) -> PoolEconomics | None:
    """The pool's figures for the period: all teams and models (the GPUs are shared), or
    one `team`'s share of them (its fraction of the pool's tokens)."""
    pool = pool_provider(book, end, config.provider)
    if pool is None:
        return None
    everyone = _served(engine, pool, start, end, None)
    served = everyone if team is None else _served(engine, pool, start, end, team)
    total = _total(served)
    hours = period_hours(start, end, now)
    whole = quantize(config.gpu_hour_usd * config.gpus * hours)
    share: Decimal | None = None
    fixed = whole
    if team is not None:
        all_tokens = _total(everyone).total_tokens
        share = Decimal(total.total_tokens) / all_tokens if all_tokens else Decimal(0)
        fixed = quantize(whole * share)
    return PoolEconomics(
        provider=pool,
        gpus=config.gpus,
        gpu_hour_usd=config.gpu_hour_usd,
        hours=quantize(hours),
        fixed_cost_usd=fixed,
        served=total,
        effective_per_1m_usd=per_1m(fixed, total.total_tokens),
        hosted=_hosted(book, pool, served, end),
        to_now=now < period_end(end),
        team=team,
        share=None if share is None else quantize(share),
        pool_fixed_cost_usd=whole,
    )


def _day(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
