"""The spend page's sign-in form (self-contained HTML, no scripts)."""

from __future__ import annotations

from html import escape

from gateway.metering.web.page import STYLE


def sign_in_page(problem: str | None, query: str = "") -> str:
    """The form; `query` is the page's own query string, kept through the sign-in."""
    action = "/reports/spend/sign-in" + (f"?{query}" if query else "")
    note = f'<p class="note" id="sign-in-problem">{escape(problem)}</p>' if problem else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Corral spend: sign in</title>'
        f"<style>{STYLE}</style></head><body><h1>Corral spend</h1>"
        "<p>Sign in with an API key that has the <code>spend:read</code> scope. The key is not kept in the "
        "browser: it is exchanged for a session that ends when you sign out, after a few hours, or when the "
        "key is revoked.</p>"
        f"{note}"
        f'<form id="sign-in" method="post" action="{escape(action)}">'
        '<label>API key<input id="key" name="key" type="password" autocomplete="off" required></label>'
        '<button id="sign-in-button" type="submit">Sign in</button></form>'
        "</body></html>"
    )
