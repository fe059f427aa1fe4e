"""The /status page as one self-contained HTML document: inline CSS, no scripts, no external
assets; it refreshes itself every few seconds (a meta refresh)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.api.status import Snapshot
    from gateway.keys.model import KeyRecord

SIGN_OUT = "/status/sign-out"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A browser session's key id and its sign-out form token (none for bearer callers)."""

    key_id: str
    csrf: str


REFRESH_S = 5
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px} .note{color:#666;font-size:12px}
table{border-collapse:collapse;margin:6px 0} td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.state{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;background:#eee}
.s-active{background:#d8f3dc} .s-cooling-down,.s-breaker-half-open{background:#fff3bf}
.s-breaker-open,.s-out-of-rotation{background:#ffd6d6} .s-retired,.s-not-configured{background:#eee;color:#777}
code{font-size:12px}
"""


def _num(value: float | None, places: int = 0) -> str:
    return "-" if value is None else f"{value:,.{places}f}"


def _deployments(snap: Snapshot) -> str:
    rows = []
    for d in snap.deployments:
        css = "s-" + d.state.replace(" ", "-")
        rows.append(
            f'<tr data-deployment="{escape(d.key)}"><td>{escape(d.key)}</td>'
            f'<td><span class="state {css}">{escape(d.state)}</span></td><td>{escape(d.detail)}</td>'
            f'<td class="n">{_num(d.ttft_ms)}</td><td class="n">{_num(d.tokens_per_s, 1)}</td>'
            f'<td class="n">{d.samples}</td></tr>'
        )
    head = (
        "<tr><th>deployment</th><th>state</th><th>why</th><th class=n>TTFT ms (est.)</th>"
        "<th class=n>tokens/s (est.)</th><th class=n>samples</th></tr>"
    )
    return f'<table id="deployments">{head}{"".join(rows)}</table>'


def _replicas(snap: Snapshot) -> str:
    if not snap.replicas:
        return '<p class="note" id="replicas">No self-hosted pool configured.</p>'
    rows = "".join(
        f"<tr><td>{escape(r.url)}</td><td>{'healthy' if r.healthy else 'unhealthy'}</td>"
        f'<td class="n">{r.running}</td><td class="n">{r.waiting}</td>'
        f'<td class="n">{r.kv_cache_usage:.0%}</td><td class="n">{_num(r.age_s, 1)}</td></tr>'
        for r in snap.replicas
    )
    head = (
        "<tr><th>replica</th><th>health</th><th class=n>running</th><th class=n>queued</th>"
        "<th class=n>KV cache</th><th class=n>last good check (s ago)</th></tr>"
    )
    return f'<table id="replicas">{head}{rows}</table>'


def _refusals(snap: Snapshot) -> str:
    if not snap.refusals:
        return '<p class="note" id="refusals">None.</p>'
    ordered = sorted(snap.refusals.items(), key=lambda item: (-item[1], item[0]))
    rows = "".join(
        f'<tr data-reason="{escape(reason)}"><td>{escape(outcome)}</td><td>{escape(reason)}</td>'
        f'<td class="n">{count}</td></tr>'
        for (outcome, reason), count in ordered
    )
    return f'<table id="refusals"><tr><th>outcome</th><th>reason</th><th class=n>requests</th></tr>{rows}</table>'


def _sign_out(csrf: str) -> str:
    return (
        f'<form id="sign-out" method="post" action="{SIGN_OUT}" style="display:inline">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}"><button type="submit">Sign out</button></form>'
    )


def _who(session: SignedIn | None) -> str:
    if session is None:
        return ""
    key = f"<code>{escape(session.key_id)}</code>"
    return f'<div class="note" id="signed-in">Signed in with key {key}. {_sign_out(session.csrf)}</div>'


def forbidden(record: KeyRecord, csrf: str) -> str:
    """What a session whose key lacks `admin` sees instead of the page (with a way out)."""
    scopes = ", ".join(sorted(record.scopes)) or "none"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Corral status: not allowed</title><style>{STYLE}</style></head><body>"
        '<h1>Corral status</h1><p id="forbidden">This page needs a key with the <code>admin</code> scope. '
        f"You are signed in with key <code>{escape(record.key_id or '')}</code>, which has: {escape(scopes)}. "
        "Sign out, then sign in here with an admin key.</p>"
        f"{_sign_out(csrf)}</body></html>"
    )


def render(snap: Snapshot, session: SignedIn | None = None) -> str:
    at = snap.at.strftime("%Y-%m-%d %H:%M:%S UTC")
    loaded = snap.policy_loaded_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    digest = snap.policy_digest or "-"
    minutes = round(snap.window_s / 60)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{REFRESH_S}">'
        f"<title>Corral status</title><style>{STYLE}</style></head><body>"
        f'<h1>Corral status</h1><p class="note">This gateway process at {at}; refreshes every {REFRESH_S} s. '
        "Counters over all processes: /metrics.</p>"
        f"{_who(session)}"
        "<h2>Policy in force</h2>"
        f'<table id="policy"><tr><th>name</th><td>{escape(snap.policy_name)}</td></tr>'
        f"<tr><th>file</th><td><code>{escape(snap.policy_file)}</code></td></tr>"
        f"<tr><th>hash</th><td><code>{escape(digest)}</code></td></tr>"
        f"<tr><th>loaded at</th><td>{loaded}</td></tr></table>"
        f"<h2>Deployments</h2>{_deployments(snap)}"
        f"<h2>Self-hosted pool</h2>{_replicas(snap)}"
        f"<h2>Refused or failed, last {minutes} minutes</h2>{_refusals(snap)}"
        "</body></html>"
    )
