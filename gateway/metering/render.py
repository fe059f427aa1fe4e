"""A spend report as records, JSON and CSV: the same figures, the same strings, whatever
the format (money as exact decimal strings, never floats). Tables and the page show money
rounded to cents (`cents`); CSV and JSON carry it exact (`money`). A group with no value
(a request without a team, project, key or provider) is labelled `NO_VALUE` in every
format."""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from gateway.metering.money import quantize
from gateway.metering.pool import PoolEconomics
from gateway.metering.reports import Figures, SpendReport

FIGURES = (
    "requests",
    "attempts",
    "failed_attempts",
    "estimated_attempts",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "reask_cost_usd",
    "hedge_cost_usd",
    "cost_per_1k_requests_usd",
    "tokens_per_1k_requests",
    "cache_hits",
    "saved_by_cache_usd",
)


#: Figures that are money (exact in CSV and JSON, cents in tables and on the page).
MONEY_FIGURES = frozenset(
    {"cost_usd", "reask_cost_usd", "hedge_cost_usd", "cost_per_1k_requests_usd", "saved_by_cache_usd"}
)
#: The one label for a group with no value (no team, ...), in CSV, JSON, tables and the page.
NO_VALUE = "(none)"
CENT = Decimal("0.01")


def money(amount: Decimal | None) -> str | None:
    """An exact amount as a plain decimal string with at least two places ("0.00", "0.0000123")."""
    if amount is None:
        return None
    text = format(quantize(amount).normalize(), "f")
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


def cents(amount: Decimal | None) -> str | None:
    """An amount for reading: rounded (half-even) to cents, with thousands separators."""
    if amount is None:
        return None
    return f"{amount.quantize(CENT, rounding=ROUND_HALF_EVEN):,}"


def shown(name: str, value: Any) -> Any:
    """A figure from `figures()` as tables and the page show it (money in cents)."""
    if name in MONEY_FIGURES and value is not None:
        return cents(Decimal(value))
    return value


def per_1k(amount: Decimal | int, requests: int, places: int = 6) -> Decimal | None:
    """A ratio per 1,000 requests, rounded (half-even) to `places` decimals."""
    if not requests:
        return None
    return (Decimal(amount) * 1000 / requests).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def figures(f: Figures) -> dict[str, Any]:
    tokens_per_1k = per_1k(f.total_tokens, f.requests, places=0)
    return {
        "requests": f.requests,
        "attempts": f.attempts,
        "failed_attempts": f.failed_attempts,
        "estimated_attempts": f.estimated_attempts,
        "prompt_tokens": f.prompt_tokens,
        "completion_tokens": f.completion_tokens,
        "cached_tokens": f.cached_tokens,
        "cost_usd": money(f.cost_usd),
        "reask_cost_usd": money(f.reask_cost_usd),
        "hedge_cost_usd": money(f.hedge_cost_usd),
        "cost_per_1k_requests_usd": money(per_1k(f.cost_usd, f.requests)),
        "tokens_per_1k_requests": None if tokens_per_1k is None else int(tokens_per_1k),
        "cache_hits": f.cache_hits,
        "saved_by_cache_usd": money(f.saved_usd),
    }


def group_label(value: str | None) -> str:
    return NO_VALUE if value is None or value == "" else value


def records(report: SpendReport) -> list[dict[str, Any]]:
    return [{**{k: group_label(v) for k, v in row.group.items()}, **figures(row.figures)} for row in report.rows]


def pool_json(pool: PoolEconomics | None) -> dict[str, Any] | None:
    if pool is None:
        return None
    return {
        "provider": pool.provider,
        "gpus": pool.gpus,
        "gpu_hour_usd": money(pool.gpu_hour_usd),
        "hours": money(pool.hours),
        "to_now": pool.to_now,
        "team": pool.team,
        "team_share_of_tokens": money(pool.share),
        "pool_fixed_cost_usd": money(pool.pool_fixed_cost_usd),
        "fixed_cost_usd": money(pool.fixed_cost_usd),
        "attributed_cost_usd": money(pool.attributed_cost_usd),
        "unattributed_cost_usd": money(pool.unattributed_cost_usd),
        "served": figures(pool.served),
        "effective_per_1m_usd": money(pool.effective_per_1m_usd),
        "hosted": [
            {
                "provider": h.provider,
                "same_tokens_cost_usd": money(h.same_tokens_cost_usd),
                "effective_per_1m_usd": money(h.effective_per_1m_usd),
                "list_prices": {m: {"input": money(i), "output": money(o)} for m, (i, o) in h.list_prices.items()},
            }
            for h in pool.hosted
        ],
    }


def pool_split(pool: PoolEconomics) -> str:
    """How the fixed cost relates to the spend table, so nobody adds the pool twice."""
    return (
        f"Of the fixed cost, {cents(pool.attributed_cost_usd)} USD is the pool's requests in the spend table "
        f"(charged at its derived per-token price) and {cents(pool.unattributed_cost_usd)} USD is GPU time "
        "no request was charged for; spend in the period = the table's total + the latter."
    )


def outlay(report: SpendReport, pool: PoolEconomics) -> Decimal:
    """What the period cost: the rows as charged (the pool's requests at its derived rate
    included) plus the pool's fixed cost that no request was charged for."""
    return report.total.cost_usd + pool.unattributed_cost_usd


def report_json(report: SpendReport, pool: PoolEconomics | None = None) -> dict[str, Any]:
    q = report.query
    return {
        "from": q.start.isoformat(),
        "to": q.end.isoformat(),
        "by": list(q.by),
        "filters": dict(q.filters),
        "pricing": report.pricing,
        "currency": "USD",
        "rows": records(report),
        "total": figures(report.total),
        "total_cost_usd": money(report.total.cost_usd),
        "pool": pool_json(pool),
        # The outlay: every row as charged plus the pool's GPU time no request was charged for
        # (only beside the pool's figures, which a team's key never sees).
        **({} if pool is None else {"total_with_pool_fixed_cost_usd": money(outlay(report, pool))}),
    }


def report_csv(report: SpendReport) -> str:
    """One line per group and nothing else: summing a column gives the total."""
    keys = list(report.query.by)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*keys, *FIGURES], lineterminator="\n")
    writer.writeheader()
    writer.writerows(records(report))
    return out.getvalue()


def totals_csv(report: SpendReport) -> str:
    """The report's totals as their own one-line CSV, with the period and pricing."""
    q = report.query
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["from", "to", "pricing", *FIGURES], lineterminator="\n")
    writer.writeheader()
    period = {"from": q.start.isoformat(), "to": q.end.isoformat(), "pricing": report.pricing}
    writer.writerow({**period, **figures(report.total)})
    return out.getvalue()
