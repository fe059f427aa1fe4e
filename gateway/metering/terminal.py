"""Rich tables for the terminal: the same figures as the JSON and CSV renderings."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import date
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from gateway.catalogue.prices import PriceBook
from gateway.metering.pool import PoolEconomics, pool_basis
from gateway.metering.reconcile import Reconciliation
from gateway.metering.render import FIGURES, cents, figures, money, outlay, pool_split, records, shown
from gateway.metering.reports import SpendReport

COLUMNS = (
    "requests",
    "attempts",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "reask_cost_usd",
    "hedge_cost_usd",
    "cache_hits",
    "saved_by_cache_usd",
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else str(value)


def spend_table(report: SpendReport, all_columns: bool = False) -> Table:
    q = report.query
    columns = FIGURES if all_columns else COLUMNS
    title = f"Spend {q.start} to {q.end} (USD rounded to cents; exact in CSV and JSON; {report.pricing})"
    table = Table(title=title, show_footer=True)
    keys = list(q.by)
    totals = figures(report.total)
    for index, key in enumerate(keys):
        table.add_column(key, footer="total" if index == 0 else "", overflow="fold")
    for name in columns:
        footer = _cell(shown(name, totals[name]))
        table.add_column(name.replace("_", " "), justify="right", footer=footer, overflow="fold")
    for record in records(report):
        table.add_row(*[_cell(record[k]) for k in keys], *[_cell(shown(n, record[n])) for n in columns])
    return table


def pool_table(pool: PoolEconomics) -> Table:
    table = Table(title=f"Self-hosted pool ({pool.provider}): {pool_basis(pool)}")
    for name in ("", "cost of the tokens (USD)", "effective USD per 1M tokens"):
        table.add_column(name, justify="right" if name else "left")
    table.add_row(
        f"{pool.provider} (GPU-hours)", _cell(cents(pool.fixed_cost_usd)), _cell(cents(pool.effective_per_1m_usd))
    )
    for hosted in pool.hosted:
        table.add_row(
            f"{hosted.provider} list prices",
            _cell(cents(hosted.same_tokens_cost_usd)),
            _cell(cents(hosted.effective_per_1m_usd)),
        )
    served = f"{pool.served.total_tokens:,} tokens served in {pool.served.requests:,} requests"
    table.caption = f"{served}. {pool_split(pool)}"
    return table


def report_view(report: SpendReport, pool: PoolEconomics | None) -> Group:
    if pool is None:
        return Group(spend_table(report))
    spent = Text(f"Spend in the period with the pool's fixed cost: {cents(outlay(report, pool))} USD")
    return Group(spend_table(report), pool_table(pool), spent)


def prices_table(book: PriceBook, when: date, notes: Mapping[tuple[str, str], str] | None = None) -> Table:
    """`notes`: (provider, model) -> words added to the basis (the throughput measured now)."""
    table = Table(title=f"Prices in force on {when} ({book.currency} per 1M tokens)")
    for name in ("provider", "model", "since", "input", "cached input", "output", "basis"):
        table.add_column(name, justify="right" if name in {"input", "cached input", "output"} else "left")
    for p in book.in_force(when):
        basis = f"{p.basis}: {p.derived.explain()}" if p.derived else p.basis
        note = (notes or {}).get((p.provider, p.model))
        if note:
            basis += f"; {note}"
        table.add_row(
            p.provider, p.model, p.effective.isoformat(), str(p.input), str(p.cached_input), str(p.output), basis
        )
    return table


def reconciliation_table(result: Reconciliation) -> Table:
    verdict = "agrees" if result.agrees else f"{len(result.disagreements)} line(s) disagree"
    table = Table(
        title=f"{result.provider}: ledger vs export, {result.start} to {result.end}: {verdict}",
        caption=(
            f"ledger {money(result.ledger_total_usd)} USD, export {money(result.export_total_usd)} USD, "
            f"{result.lines_compared} day x model lines compared, {result.skipped_export_lines} export lines skipped"
        ),
    )
    for name in ("day", "model", "ledger USD", "export USD", "difference", "ledger tokens in/out", "export", "why"):
        table.add_column(name)
    for line in result.disagreements:
        theirs = line.export_tokens
        table.add_row(
            line.day.isoformat(),
            line.model,
            _cell(money(line.ledger_cost_usd)),
            _cell(money(line.export_cost_usd)),
            _cell(money(line.difference_usd)),
            f"{line.ledger_tokens[0]:,}/{line.ledger_tokens[1]:,}",
            f"{theirs[0]:,}/{theirs[1]:,}" if theirs else "-",
            f"{line.reason}: {line.detail}" if line.detail else line.reason,
        )
    return table


def console() -> Console:
    """The terminal's width when there is one; wide enough for every figure when piped."""
    return Console() if sys.stdout.isatty() else Console(width=200)
