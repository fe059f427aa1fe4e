"""Reconciliation: the ledger against a provider's own export, day by day and model by
model, listing every line whose cost (or tokens, when the export has them) disagrees
beyond a tolerance, so finance can close the month against the invoice. Each line says
why: `cost`, `tokens`, `cost and tokens`, `only in the ledger` or `only in the export`,
and `detail` gives the figures that differ."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.engine import Engine

from gateway.metering.exports import DailyUsage, Export
from gateway.metering.money import quantize
from gateway.metering.render import money
from gateway.metering.reports import Figures, SpendQuery, fetch


@dataclass(frozen=True, slots=True)
class Tolerance:
    usd: Decimal = Decimal("0.01")
    #: Relative tolerance, percent of the larger of the two figures.
    pct: Decimal = Decimal("1")

    def exceeded(self, ours: Decimal, theirs: Decimal) -> bool:
        allowed = max(self.usd, max(abs(ours), abs(theirs)) * self.pct / 100)
        return abs(theirs - ours) > allowed

    def tokens_exceeded(self, ours: int, theirs: int) -> bool:
        return abs(theirs - ours) > max(ours, theirs) * self.pct / 100


@dataclass(frozen=True, slots=True)
class Line:
    day: date
    model: str
    ledger_cost_usd: Decimal
    export_cost_usd: Decimal
    ledger_tokens: tuple[int, int]
    export_tokens: tuple[int, int] | None
    reason: str
    #: The figures behind the reason, e.g. "output tokens: ledger 200, export 250".
    detail: str = ""

    @property
    def difference_usd(self) -> Decimal:
        return quantize(self.export_cost_usd - self.ledger_cost_usd)


@dataclass(frozen=True, slots=True)
class Reconciliation:
    provider: str
    start: date
    end: date
    ledger_total_usd: Decimal
    export_total_usd: Decimal
    lines_compared: int
    disagreements: list[Line]
    skipped_export_lines: int

    @property
    def agrees(self) -> bool:
        return not self.disagreements


def _tokens_differ(ours: Figures, theirs: DailyUsage, tolerance: Tolerance) -> list[str]:
    if not theirs.has_tokens:
        return []
    pairs = (
        ("input", ours.prompt_tokens, theirs.input_tokens),
        ("output", ours.completion_tokens, theirs.output_tokens),
    )
    return [
        f"{name} tokens: ledger {mine:,}, export {other:,}"
        for name, mine, other in pairs
        if tolerance.tokens_exceeded(mine, other)
    ]


def _why(ours: Figures, theirs: DailyUsage, tolerance: Tolerance) -> tuple[str, str] | None:
    """(reason, detail) for a line present on both sides, or None when it agrees."""
    cost = tolerance.exceeded(ours.cost_usd, theirs.cost_usd)
    tokens = _tokens_differ(ours, theirs, tolerance)
    details = [f"cost: ledger {money(ours.cost_usd)} USD, export {money(theirs.cost_usd)} USD"] if cost else []
    details += tokens
    if not theirs.has_tokens and cost:
        details.append("the export has no tokens to compare")
    if cost and tokens:
        return "cost and tokens", "; ".join(details)
    if cost:
        return "cost", "; ".join(details)
    if tokens:
        return "tokens", "; ".join(details)
    return None


def period_of(export: Export) -> tuple[date, date] | None:
    days = [day for day, _ in export.usage]
    return (min(days), max(days)) if days else None


def reconcile(
    engine: Engine, provider: str, export: Export, start: date, end: date, tolerance: Tolerance
) -> Reconciliation:
    query = SpendQuery(start, end, by=("day", "model"), filters=(("provider", provider),))
    ledger = {(group["day"], str(group["model"])): figs for group, figs in fetch(engine, query, ("day", "model"))}
    theirs = {key: usage for key, usage in export.usage.items() if start <= key[0] <= end}
    lines = []
    for key in sorted(set(ledger) | set(theirs)):
        ours, other = ledger.get(key, Figures()), theirs.get(key, DailyUsage())
        why = _why(ours, other, tolerance)
        if key not in theirs and (ours.cost_usd or ours.total_tokens):
            why = "only in the ledger", f"no export line for this day and model (ledger {money(ours.cost_usd)} USD)"
        elif key not in ledger and (other.cost_usd or other.input_tokens or other.output_tokens):
            why = "only in the export", f"no ledger row for this day and model (export {money(other.cost_usd)} USD)"
        if why is None:
            continue
        lines.append(
            Line(
                day=key[0],
                model=key[1],
                ledger_cost_usd=ours.cost_usd,
                export_cost_usd=other.cost_usd,
                ledger_tokens=(ours.prompt_tokens, ours.completion_tokens),
                export_tokens=(other.input_tokens, other.output_tokens) if other.has_tokens else None,
                reason=why[0],
                detail=why[1],
            )
        )
    return Reconciliation(
        provider=provider,
        start=start,
        end=end,
        ledger_total_usd=sum((f.cost_usd for f in ledger.values()), Decimal(0)),
        export_total_usd=sum((u.cost_usd for u in theirs.values()), Decimal(0)),
        lines_compared=len(set(ledger) | set(theirs)),
        disagreements=lines,
        skipped_export_lines=export.skipped_lines,
    )
