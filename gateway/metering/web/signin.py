"""The spend page's sign-in form (self-contained HTML, no scripts)."""

from __future__ import annotations

from html import escape

from gateway.metering.web.page import STYLE


def sign_in_page(
    problem: str | None,
    query: str = "",
    *,
    page: str = "/reports/spend",
    title: str = "Corral spend",
    scope: str = "spend:read",
) -> str:
    """The form for `page` (it posts to `{page}/sign-in`); `query` is the page's own query
    string, kept through the sign-in."""
    action = f"{page}/sign-in" + (f"?{query}" if query else "")
    note = f'<p class="note" id="sign-in-problem">{escape(problem)}</p>' if problem else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}: sign in</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<p>Sign in with an API key that has the <code>{escape(scope)}</code> scope. The key is not kept in the "
        "browser: it is exchanged for a session that ends when you sign out, after a few hours, or when the "
        "key is revoked.</p>"
        f"{note}"
        f'<form id="sign-in" method="post" action="{escape(action)}">'
        '<label>API key<input id="key" name="key" type="password" autocomplete="off" required></label>'
        '<button id="sign-in-button" type="submit">Sign in</button></form>'
        "</body></html>"
    )
