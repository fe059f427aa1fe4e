"""SVG charts drawn on the server: the page needs no script, font or CDN to show them."""

from __future__ import annotations

from decimal import Decimal
from html import escape

from gateway.metering.render import cents, money

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _scale(values: list[Decimal]) -> Decimal:
    top = max(values, default=Decimal(0))
    return top if top > 0 else Decimal(1)


def legend(names: list[str]) -> str:
    items = "".join(
        f'<span class="key"><i style="background:{colour(i)}"></i>{escape(n)}</span>' for i, n in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


def stacked_bars(days: list[str], series: dict[str, list[Decimal]], height: int = 240) -> str:
    """One bar per day, stacked by series (e.g. provider), with a USD axis label."""
    names = list(series)
    totals = [sum((series[n][i] for n in names), Decimal(0)) for i in range(len(days))]
    top = _scale(totals)
    step = 36
    width = max(step * len(days) + 70, 320)
    parts = [f'<text x="4" y="12" class="axis">{escape(cents(top) or "0")} USD</text>']
    for i, day in enumerate(days):
        x = 60 + i * step
        base = height - 20
        for s, name in enumerate(names):
            value = series[name][i]
            if value <= 0:
                continue
            h = max(int(value / top * (height - 40)), 1)
            base -= h
            tip = f"{day} {name}: {money(value)} USD"
            parts.append(
                f'<rect class="bar" data-series="{escape(name)}" x="{x}" y="{base}" width="{step - 8}" '
                f'height="{h}" fill="{colour(s)}"><title>{escape(tip)}</title></rect>'
            )
        parts.append(f'<text x="{x}" y="{height - 6}" class="tick">{escape(day[5:])}</text>')
    svg = (
        f'<svg class="chart" id="spend-over-time" role="img" aria-label="Spend per day by provider" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>'
    )
    return svg + legend(names)


def hbars(chart_id: str, items: list[tuple[str, Decimal]], unit: str, highlight: str | None = None) -> str:
    """Horizontal bars with their values written beside them."""
    top = _scale([v for _, v in items])
    row = 26
    height = row * len(items) + 8
    parts = []
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        w = max(int(value / top * 360), 1)
        fill = "#e15759" if label == highlight else colour(i)
        parts.append(
            f'<text x="0" y="{y + 16}" class="label">{escape(label)}</text>'
            f'<rect class="bar" x="190" y="{y}" width="{w}" height="{row - 8}" fill="{fill}">'
            f"<title>{escape(label)}: {escape(money(value) or '')} {escape(unit)}</title></rect>"
            f'<text x="{196 + w}" y="{y + 16}" class="value">{escape(cents(value) or "")} {escape(unit)}</text>'
        )
    return (
        f'<svg class="chart" id="{escape(chart_id)}" role="img" width="700" height="{height}" '
        f'viewBox="0 0 700 {height}">{"".join(parts)}</svg>'
    )
