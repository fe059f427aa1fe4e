"""The only place exceptions become HTTP answers: always OpenAI's error shape, never a traceback."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import Code, GatewayError, error

log = logging.getLogger("corral.api")

_HTTP_CODES = {404: Code.NOT_FOUND, 405: Code.METHOD_NOT_ALLOWED, 413: Code.REQUEST_TOO_LARGE}


def error_response(err: GatewayError, headers: dict[str, str] | None = None) -> Response:
    merged = {**(headers or {}), **err.headers}
    return Response(orjson.dumps(err.body()), status_code=err.status, media_type="application/json", headers=merged)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    err = GatewayError(exc.status_code, message, code=_HTTP_CODES.get(exc.status_code))
    return error_response(err, dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    param = ".".join(str(p) for p in first.get("loc", ()) if p not in {"body", "query"})
    return error_response(GatewayError(400, f"invalid value for '{param}': {first['msg']}", param=param or None))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    err = error(Code.INTERNAL_ERROR, "internal error in the gateway; it has been logged")
    return error_response(err)


def install(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
