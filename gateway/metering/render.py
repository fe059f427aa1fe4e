"""A spend report as records, JSON and CSV: the same figures, the same strings, whatever
the format (money as exact decimal strings, never floats)."""

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
    "cost_per_1k_requests_usd",
    "tokens_per_1k_requests",
)


def money(amount: Decimal | None) -> str | None:
    """An exact amount as a plain decimal string with at least two places ("0.00", "0.0000123")."""
    if amount is None:
        return None
    text = format(quantize(amount).normalize(), "f")
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


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
        "cost_per_1k_requests_usd": money(per_1k(f.cost_usd, f.requests)),
        "tokens_per_1k_requests": None if tokens_per_1k is None else int(tokens_per_1k),
    }


def records(report: SpendReport) -> list[dict[str, Any]]:
    return [{**row.group, **figures(row.figures)} for row in report.rows]


def pool_json(pool: PoolEconomics | None) -> dict[str, Any] | None:
    if pool is None:
        return None
    return {
        "provider": pool.provider,
        "gpus": pool.gpus,
        "gpu_hour_usd": money(pool.gpu_hour_usd),
        "hours": money(pool.hours),
        "fixed_cost_usd": money(pool.fixed_cost_usd),
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
    }


def report_csv(report: SpendReport) -> str:
    """One line per group, then a `total` line (its first group column says so)."""
    keys = list(report.query.by)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*keys, *FIGURES], lineterminator="\n")
    writer.writeheader()
    writer.writerows(records(report))
    label = dict.fromkeys(keys, "")
    if keys:
        label[keys[0]] = "total"
    writer.writerow({**label, **figures(report.total)})
    return out.getvalue()
