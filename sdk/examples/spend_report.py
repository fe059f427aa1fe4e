"""A spend report: the last seven days by provider and model, money as Decimal.

CORRAL_BASE_URL=http://127.0.0.1:8080 CORRAL_API_KEY=... python sdk/examples/spend_report.py
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal

import corral


def main(client: corral.Corral | None = None) -> int:
    today = dt.datetime.now(dt.UTC).date()
    try:
        with client or corral.Corral() as gateway:
            report = gateway.spend(
                start=today - dt.timedelta(days=7), end=today, group_by=["provider", "model"]
            )
    except corral.CorralError as exc:
        print(f"spend request failed: {exc}", file=sys.stderr)
        return 1
    print(f"{'provider':<12}{'model':<28}{'requests':>10}{'tokens':>12}{'cost (USD)':>16}")
    for row in sorted(report, key=lambda r: r.cost_usd, reverse=True):
        print(
            f"{row.provider or '-':<12}{row.model or '-':<28}{row.requests:>10}{row.total_tokens:>12}"
            f"{row.cost_usd:>16}"
        )
    print(f"{'total':<62}{report.total_cost_usd:>16}")
    rows_total = sum((row.cost_usd for row in report), Decimal(0))
    if report.rows and rows_total != report.total_cost_usd:
        print(
            f"note: rows add up to {rows_total}, the gateway's total is {report.total_cost_usd}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
