"""The spend page as one self-contained HTML document (inline CSS and SVG, no scripts)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from html import escape
from urllib.parse import urlencode

from gateway.metering.pool import pool_basis
from gateway.metering.render import MONEY_FIGURES, cents, figures, group_label, money, pool_split, shown
from gateway.metering.reports import SpendReport
from gateway.metering.web.charts import hbars, stacked_bars
from gateway.metering.web.data import PageData, PageFilters

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 12px} h2{font-size:16px;margin:28px 0 8px}
form{display:flex;gap:12px;align-items:end;flex-wrap:wrap;background:#f5f5f7;padding:12px;border-radius:6px}
label{display:flex;flex-direction:column;font-size:12px;color:#555}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{background:#f5f5f7;border-radius:6px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;margin:6px 0} td,th{padding:4px 10px;border-bottom:1px solid #ddd}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto} .legend{margin:4px 0 0 60px} .key{margin-right:14px;font-size:12px}
.key i{display:inline-block;width:10px;height:10px;margin-right:4px}
.axis,.tick,.label,.value{font-size:11px;fill:#444} .note{color:#666;font-size:12px}
"""
COLUMNS = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "reask_cost_usd",
    "hedge_cost_usd",
    "cache_hits",
    "saved_by_cache_usd",
)


def _options(name: str, chosen: str | None, values: list[str]) -> str:
    items = [f'<option value=""{" selected" if not chosen else ""}>all</option>']
    items += [f"<option{' selected' if v == chosen else ''}>{escape(v)}</option>" for v in values]
    return f'<label>{name}<select id="{name}" name="{name}">{"".join(items)}</select></label>'


def csv_link(f: PageFilters) -> str:
    query = {"from": f.start.isoformat(), "to": f.end.isoformat(), "by": "day,provider,model,team", "format": "csv"}
    query.update(dict(f.pairs()))
    return "/v1/spend?" + urlencode(query)


def _form(data: PageData) -> str:
    f = data.filters
    return (
        '<form id="filters" method="get" action="/reports/spend">'
        f'<label>from<input id="from" name="from" type="date" value="{f.start}"></label>'
        f'<label>to<input id="to" name="to" type="date" value="{f.end}"></label>'
        f"{_options('team', f.team, data.teams)}{_options('model', f.model, data.models)}"
        '<button id="apply" type="submit">Apply</button>'
        f'<a id="csv" href="{escape(csv_link(f))}" download>Download CSV</a></form>'
    )


def _exact(name: str, value: object) -> str:
    """A figure's cell: money rounded to cents, the exact amount on hover."""
    text = escape(_cell(shown(name, value)))
    if name in MONEY_FIGURES and value is not None:
        return f'<span title="{escape(str(value))} USD exactly">{text}</span>'
    return text


def _cards(report: SpendReport) -> str:
    t = figures(report.total)
    cards = [
        ("total-cost", "Spend (USD)", _exact("cost_usd", t["cost_usd"])),
        ("total-requests", "Requests", f"{t['requests']:,}"),
        ("total-tokens", "Tokens", f"{report.total.total_tokens:,}"),
        ("per-1k", "USD per 1,000 requests", _exact("cost_per_1k_requests_usd", t["cost_per_1k_requests_usd"])),
        ("reask-cost", "Tool-call re-asks (USD)", _exact("reask_cost_usd", t["reask_cost_usd"])),
        ("hedge-cost", "Hedge cost (USD)", _exact("hedge_cost_usd", t["hedge_cost_usd"])),
        ("saved-by-cache", "Saved by cache (USD)", _exact("saved_by_cache_usd", t["saved_by_cache_usd"])),
    ]
    body = "".join(f'<div class="card" id="{i}">{escape(n)}<b>{v}</b></div>' for i, n, v in cards)
    return f'<div class="cards">{body}</div>'


def _table(table_id: str, report: SpendReport, extra: tuple[str, ...] = ()) -> str:
    keys = list(report.query.by)
    cols = (*COLUMNS, *extra)
    head = "".join(f"<th>{k}</th>" for k in keys) + "".join(f'<th class="n">{c.replace("_", " ")}</th>' for c in cols)
    rows = []
    for row in report.rows:
        values = figures(row.figures)
        cells = "".join(f"<td>{escape(group_label(row.group[k]))}</td>" for k in keys)
        cells += "".join(f'<td class="n">{_exact(c, values[c])}</td>' for c in cols)
        rows.append(f"<tr>{cells}</tr>")
    return f'<table id="{table_id}"><tr>{head}</tr>{"".join(rows)}</table>'


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _over_time(data: PageData) -> str:
    f = data.filters
    days = [(f.start + timedelta(days=i)).isoformat() for i in range((f.end - f.start).days + 1)]
    providers = sorted({r.group["provider"] or "" for r in data.by_day.rows})
    series = {p: [Decimal(0)] * len(days) for p in providers}
    for row in data.by_day.rows:
        series[row.group["provider"] or ""][days.index(row.group["day"] or "")] += row.figures.cost_usd
    return f'<div class="scroll">{stacked_bars(days, series)}</div>'


def _pool(data: PageData) -> str:
    pool = data.pool
    if data.filters.locked:
        return (
            '<p class="note" id="pool-hidden">The self-hosted pool\'s fixed GPU cost is shared by the whole '
            "organisation and shown to admin keys only; this key's own pool requests are in the tables above.</p>"
        )
    if pool is None:
        return '<p class="note">No self-hosted pool is priced by GPU-hours in the price book.</p>'
    items = [(f"{pool.provider} (GPU-hours)", pool.effective_per_1m_usd or Decimal(0))]
    items += [(f"{h.provider} list", h.effective_per_1m_usd or Decimal(0)) for h in pool.hosted]
    cheapest = pool.cheapest_hosted
    verdict = ""
    if cheapest is not None:
        pays = pool.fixed_cost_usd <= cheapest.same_tokens_cost_usd
        verdict = (
            f"At {cheapest.provider}'s list prices the same tokens would have cost "
            f"{cents(cheapest.same_tokens_cost_usd)} USD: the pool {'pays' if pays else 'does not pay'} for itself."
        )
    return (
        f'<p id="pool-fixed" title="{escape(money(pool.fixed_cost_usd) or "")} USD exactly">Fixed cost: '
        f"{escape(pool_basis(pool))}; <b>{escape(cents(pool.fixed_cost_usd) or '')} USD</b> for "
        f"{pool.served.total_tokens:,} tokens served. {escape(verdict)}</p>"
        f'<p class="note" id="pool-split">{escape(pool_split(pool))}</p>'
        + hbars("pool-vs-hosted", items, "USD / 1M tokens", highlight=items[0][0])
        + '<p class="note">Effective USD per 1M tokens (prompt and completion together) for the pool\'s own '
        "token mix; the GPUs are shared, so a team's share of the fixed cost is its share of the pool's tokens.</p>"
    )


def _sign_out(csrf: str | None) -> str:
    """The sign-out form, for a browser session (none for a bearer key)."""
    if csrf is None:
        return ""
    return (
        '<form id="sign-out" method="post" action="/reports/spend/sign-out">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        '<button id="sign-out-button" type="submit">Sign out</button></form>'
    )


def render(data: PageData, csrf: str | None = None) -> str:
    f = data.filters
    scope = ", ".join(f"{k} {v}" for k, v in f.pairs()) or "all teams and models"
    provider_bars = [(group_label(r.group["provider"]), r.figures.cost_usd) for r in data.by_provider.rows]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Corral spend</title>'
        f"<style>{STYLE}</style></head><body>"
        f'{_sign_out(csrf)}<h1>Spend {f.start} to {f.end} <span class="note">({escape(scope)}, USD)</span></h1>'
        f"{_form(data)}{_cards(data.by_provider)}"
        f"<h2>Spend over time, by provider</h2>{_over_time(data)}"
        f"<h2>Totals per provider</h2>{hbars('provider-totals', provider_bars, 'USD')}"
        f"{_table('by-provider', data.by_provider, ('cost_per_1k_requests_usd', 'tokens_per_1k_requests'))}"
        f"<h2>Totals per model</h2>{_table('by-model', data.by_model)}"
        f"<h2>Totals per team</h2>{_table('by-team', data.by_team)}"
        f"<h2>Self-hosted pool against hosted prices</h2>{_pool(data)}"
        '<p class="note">Costs are attributed to the provider that billed each attempt; re-ask cost is what '
        "tool-call re-asks added. Figures come from the immutable ledger, priced when each request was recorded.</p>"
        "</body></html>"
    )
