"""GET /v1/spend (JSON, or CSV by `format=csv` or `Accept: text/csv`), GET /v1/spend/requests
(the requests behind a line) and GET /reports/spend (the page). Parameters match
`corral report spend`: from/to (or start/end), by (or group_by), team, model, provider,
key, project, as_provider."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gateway.api.auth import authenticate
from gateway.api.signin import session_of, sign_in_required, spend_caller
from gateway.errors import Code, bad_request, error
from gateway.keys.model import KeyRecord
from gateway.metering.drill import requests as drill_requests
from gateway.metering.render import report_csv, report_json
from gateway.metering.reports import FILTERS, ReportError
from gateway.metering.service import make_pool, make_query, make_report, parse_day, pool_config, price_book
from gateway.metering.sql import SqlStore
from gateway.metering.web.data import PageFilters, gather
from gateway.metering.web.page import render
from gateway.runtime import Runtime

ALIASES = {"start": "from", "end": "to", "group_by": "by"}
KNOWN = frozenset({"from", "to", "by", "format", "as_provider", "limit", *FILTERS, *ALIASES})


@dataclass(frozen=True, slots=True)
class SpendScope:
    """What a caller may see of the spend data.

    - authentication off, or a key with the `admin` scope: everything, including the
      self-hosted pool's fixed GPU cost (organisation-wide: the GPUs are shared);
    - any other key with `spend:read` and a team: only rows of its team;
    - such a key without a team: only rows of its own requests.
    Scoped callers never see the pool's fixed cost or the tokens every team sent to it,
    nor the names of other teams (JSON, CSV and the page alike).
    """

    #: Filters forced on every query (empty: unrestricted).
    forced: dict[str, str]

    @property
    def sees_pool(self) -> bool:
        return not self.forced


def spend_scope(caller: KeyRecord) -> SpendScope:
    if caller.key_id is None or "admin" in caller.scopes:
        return SpendScope({})
    return SpendScope({"team": caller.team} if caller.team is not None else {"key": caller.key_id})


def _store(rt: Runtime) -> SqlStore:
    store = getattr(rt.sink, "store", None)
    if not isinstance(store, SqlStore):
        raise error(Code.LEDGER_UNAVAILABLE, "this gateway keeps no ledger")
    return store


def _params(request: Request, forced: dict[str, str]) -> dict[str, str]:
    given: dict[str, str] = {}
    for name, value in request.query_params.items():
        if name not in KNOWN:
            raise bad_request(f"unknown parameter {name!r}; known: {', '.join(sorted(KNOWN))}", param=name)
        given[ALIASES.get(name, name)] = value
    for name, value in forced.items():
        if given.get(name, value) != value:
            raise error(
                Code.INSUFFICIENT_SCOPE,
                f"this API key may only see spend with {name}={value}",
            )
        given[name] = value
    return given


def _wants_csv(request: Request, params: dict[str, str]) -> bool:
    fmt = params.get("format")
    if fmt not in {None, "json", "csv"}:
        raise bad_request(f"format {fmt!r} must be json or csv", param="format")
    return fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))


def _report(rt: Runtime, store: SqlStore, params: dict[str, str], csv: bool, scope: SpendScope) -> Response:
    if "from" not in params:
        raise bad_request("missing 'from' (YYYY-MM-DD)", param="from", code=Code.MISSING_REQUIRED_PARAMETER)
    query = make_query(params["from"], params.get("to"), params.get("by", "provider"), params)
    store.ensure_schema()
    book = price_book(rt.settings)
    report = make_report(store.engine, book, query, provider=params.get("as_provider"))
    if csv:
        name = f"spend_{query.start}_{query.end}.csv"
        headers = {"content-disposition": f'attachment; filename="{name}"'}
        return Response(report_csv(report), media_type="text/csv; charset=utf-8", headers=headers)
    pool = make_pool(store.engine, book, rt.settings, query) if scope.sees_pool else None
    return Response(orjson.dumps(report_json(report, pool)), media_type="application/json")


async def _run(call: Any, *args: Any) -> Any:
    try:
        return await asyncio.to_thread(call, *args)
    except ReportError as exc:
        raise bad_request(str(exc)) from exc


def make_spend_handler(rt: Runtime) -> Any:
    async def spend(request: Request) -> Response:
        scope = spend_scope(spend_caller(request, rt))
        params = _params(request, scope.forced)
        response: Response = await _run(_report, rt, _store(rt), params, _wants_csv(request, params), scope)
        return response

    return spend


def _requests(store: SqlStore, params: dict[str, str]) -> Response:
    if "from" not in params:
        raise bad_request("missing 'from' (YYYY-MM-DD)", param="from", code=Code.MISSING_REQUIRED_PARAMETER)
    query = make_query(params["from"], params.get("to"), "provider", params)
    limit = int(params["limit"]) if params.get("limit", "").isdigit() else 100
    store.ensure_schema()
    return Response(orjson.dumps({"data": drill_requests(store.engine, query, limit)}), media_type="application/json")


def make_requests_handler(rt: Runtime) -> Any:
    async def spend_requests(request: Request) -> Response:
        params = _params(request, spend_scope(authenticate(request, rt.keys, "spend:read")).forced)
        response: Response = await _run(_requests, _store(rt), params)
        return response

    return spend_requests


def _page_filters(params: dict[str, str], today: date, scope: SpendScope) -> PageFilters:
    start = parse_day(params["from"], "from") if params.get("from") else today.replace(day=1)
    end = parse_day(params["to"], "to") if params.get("to") else max(today, start)
    if end < start:
        raise ReportError(f"to {end} is before from {start}")
    team, model = params.get("team") or None, params.get("model") or None
    return PageFilters(start, end, team, model, params.get("key"), tuple(scope.forced.items()))


def _page(rt: Runtime, store: SqlStore, params: dict[str, str], scope: SpendScope, csrf: str | None) -> HTMLResponse:
    now = datetime.now(UTC)
    filters = _page_filters(params, now.date(), scope)
    store.ensure_schema()
    pool = pool_config(rt.settings) if scope.sees_pool else None
    data = gather(store.engine, price_book(rt.settings), pool, filters, now)
    return HTMLResponse(render(data, csrf), headers={"cache-control": "no-store"})


def make_page_handler(rt: Runtime) -> Any:
    async def spend_page(request: Request) -> Response:
        csrf = None
        if "authorization" in request.headers or not rt.keys.enabled:
            caller = authenticate(request, rt.keys, "spend:read")
        else:
            found = session_of(request, rt)
            if found is None:
                return sign_in_required(request)
            caller, csrf = found[1], rt.sessions.csrf(found[0].token)
        scope = spend_scope(caller)
        params = _params(request, scope.forced)
        response: Response = await _run(_page, rt, _store(rt), params, scope, csrf)
        return response

    return spend_page
