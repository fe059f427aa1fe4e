"""Sign-in for people with a browser: POST /reports/spend/sign-in exchanges a key with
`spend:read` for a session cookie (gateway.keys.sessions), POST /reports/spend/sign-out
ends it. The spend page and its CSV (GET /v1/spend) accept the cookie as well as a bearer
key; without either the page answers with the sign-in form instead of a JSON 401.
The status page signs in the same way and to the same session (POST /status/sign-in, which
asks for an `admin` key and returns to /status); see gateway.api.status.

CSRF: the cookie is SameSite=Strict (never sent by another site's page), sign-in refuses
a cross-origin Origin (so another site cannot sign a browser into its own key), and
sign-out carries the session's CSRF token."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.api.auth import authenticate, authenticate_key
from gateway.errors import Code, GatewayError, error
from gateway.keys.model import KeyRecord
from gateway.keys.sessions import COOKIE, Session
from gateway.metering.web.signin import sign_in_page
from gateway.runtime import Runtime

PAGE = "/reports/spend"
SCOPE = "spend:read"
#: A sign-in form is one short field; anything longer is refused unread.
MAX_FORM_BYTES = 4096


def signed_in(request: Request, rt: Runtime) -> tuple[Session, KeyRecord] | None:
    """The request's valid session and its (still active) key, whatever the key's scopes."""
    token = request.cookies.get(COOKIE)
    if not token or not rt.keys.enabled:
        return None
    session = rt.sessions.verify(token, time.time())
    record = rt.keys.active(session.key_id) if session is not None else None
    if session is None or record is None:
        return None
    return session, record


def session_of(request: Request, rt: Runtime, scope: str = SCOPE) -> tuple[Session, KeyRecord] | None:
    """The request's valid session when its (still active) key has `scope`."""
    found = signed_in(request, rt)
    if found is None or not found[1].allows(scope):
        return None
    return found


def spend_caller(request: Request, rt: Runtime) -> KeyRecord:
    """A bearer key when one is sent, else the browser session; else 401 as for any key."""
    if "authorization" not in request.headers:
        found = session_of(request, rt)
        if found is not None:
            return found[1]
    return authenticate(request, rt.keys, SCOPE)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise error(Code.REQUEST_TOO_LARGE, f"a sign-in form is at most {MAX_FORM_BYTES} bytes")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def make_sign_in_handler(rt: Runtime, page: str = PAGE, scope: str = SCOPE, title: str = "Corral spend") -> Any:
    """POST {page}/sign-in: a key with `scope` for a session, then back to `page`."""

    async def sign_in(request: Request) -> Response:
        if not _same_origin(request):
            raise error(Code.INSUFFICIENT_SCOPE, "sign-in from another site's page is refused")
        key = (await _form(request)).get("key", "").strip()
        try:
            record = authenticate_key(key, rt.keys, scope)
        except GatewayError as refused:
            form = sign_in_page(refused.message, request.url.query, page=page, title=title, scope=scope)
            return HTMLResponse(form, status_code=refused.status)
        # Back to the page with the period and filters it was opened with (never elsewhere).
        back = page + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(back, status_code=303)
        if record.key_id is None:
            return response
        _cookie(response, request, rt.sessions.issue(record.key_id, time.time()), rt.sessions.ttl_s)
        return response

    return sign_in


def make_sign_out_handler(rt: Runtime, page: str = PAGE) -> Any:
    """POST {page}/sign-out: ends the session (whichever page it was made on), back to `page`."""

    async def sign_out(request: Request) -> Response:
        found = signed_in(request, rt)
        given = (await _form(request)).get("csrf", "")
        if found is not None and not rt.sessions.csrf_ok(found[0].token, given):
            raise error(Code.INSUFFICIENT_SCOPE, "sign-out without this session's form token is refused")
        response = RedirectResponse(page, status_code=303)
        _cookie(response, request, "", 0)
        return response

    return sign_out


def sign_in_required(
    request: Request, page: str = PAGE, scope: str = SCOPE, title: str = "Corral spend"
) -> HTMLResponse:
    """What a browser without a key or session gets instead of the page: the form (401)."""
    form = sign_in_page(None, request.url.query, page=page, title=title, scope=scope)
    return HTMLResponse(form, status_code=401)
