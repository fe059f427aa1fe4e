"""create_app(): wire the runtime into a FastAPI app whose lifespan owns every long-lived client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import __version__
from gateway.api import admin, chat, completions, errors, explain, models, openapi, responses
from gateway.api.asgi import FastPath
from gateway.api.signin import make_sign_in_handler, make_sign_out_handler
from gateway.api.spend import make_page_handler, make_requests_handler, make_spend_handler
from gateway.api.status import make_status_handler
from gateway.runtime import Runtime
from gateway.serve import guard

log = logging.getLogger("corral")


def create_app(runtime: Runtime) -> FastPath:
    """The ASGI app: the chat endpoint on the fast path, everything else through FastAPI.
    Also sets this process's slow-client limits (the protocol in UVICORN_OPTIONS reads them)."""
    settings = runtime.settings
    guard.configure(settings.header_timeout_s, settings.max_connections)
    app = create_fastapi_app(runtime)
    chat_handler = chat.make_handler(runtime)
    routes = {
        ("POST", "/v1/chat/completions"): chat_handler,
        ("POST", "/v1/responses"): responses.make_handler(runtime),
        ("POST", "/v1/completions"): completions.make_handler(runtime),
    }
    return FastPath(app, routes)


def create_fastapi_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        simulated = sorted(n for n, p in runtime.providers.items() if p.simulated)
        if simulated:
            log.warning("simulated providers (built-in fakes, not real backends): %s", ", ".join(simulated))
        try:
            yield
        finally:
            await runtime.close()

    # /docs and /openapi.json describe every route: served only when `docs` is on (the
    # document is still built in-process, e.g. by the schemathesis suite, via app.openapi()).
    docs = runtime.settings.docs
    app = FastAPI(
        title="Corral",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        redoc_url=None,
    )
    errors.install(app)
    openapi.install(app)
    app.add_api_route(
        "/v1/chat/completions",
        chat.make_handler(runtime),
        methods=["POST"],
        response_model=None,
        openapi_extra=openapi.CHAT,
    )
    app.add_api_route(
        "/v1/responses",
        responses.make_handler(runtime),
        methods=["POST"],
        response_model=None,
        openapi_extra=openapi.RESPONSES,
    )
    app.add_api_route(
        "/v1/completions",
        completions.make_handler(runtime),
        methods=["POST"],
        response_model=None,
        openapi_extra=openapi.COMPLETIONS,
    )
    app.add_api_route("/v1/models", models.make_handler(runtime), methods=["GET"], openapi_extra=openapi.MODELS)
    app.add_api_route(
        "/v1/models/{model:path}",
        models.make_retrieve_handler(runtime),
        methods=["GET"],
        openapi_extra=openapi.MODELS,
    )
    app.add_api_route(
        "/v1/route/explain", explain.make_handler(runtime), methods=["POST"], openapi_extra=openapi.EXPLAIN
    )
    app.add_api_route(
        "/admin/policy/reload", admin.make_reload_handler(runtime), methods=["POST"], openapi_extra=openapi.RELOAD
    )
    app.add_api_route(
        "/admin/keys", admin.make_create_key_handler(runtime), methods=["POST"], openapi_extra=openapi.CREATE_KEY
    )
    app.add_api_route(
        "/admin/keys", admin.make_list_keys_handler(runtime), methods=["GET"], openapi_extra=openapi.LIST_KEYS
    )
    app.add_api_route(
        "/admin/keys/{key_id}",
        admin.make_revoke_key_handler(runtime),
        methods=["DELETE"],
        openapi_extra=openapi.REVOKE_KEY,
    )
    app.add_api_route("/v1/spend", make_spend_handler(runtime), methods=["GET"], openapi_extra=openapi.SPEND)
    app.add_api_route(
        "/v1/spend/requests", make_requests_handler(runtime), methods=["GET"], openapi_extra=openapi.SPEND_REQUESTS
    )
    app.add_api_route("/reports/spend", make_page_handler(runtime), methods=["GET"], include_in_schema=False)
    app.add_api_route(
        "/reports/spend/sign-in", make_sign_in_handler(runtime), methods=["POST"], include_in_schema=False
    )
    app.add_api_route(
        "/reports/spend/sign-out", make_sign_out_handler(runtime), methods=["POST"], include_in_schema=False
    )
    app.add_api_route("/status", make_status_handler(runtime), methods=["GET"], include_in_schema=False)
    status_sign_in = make_sign_in_handler(runtime, page="/status", scope="admin", title="Corral status")
    app.add_api_route("/status/sign-in", status_sign_in, methods=["POST"], include_in_schema=False)
    app.add_api_route(
        "/status/sign-out", make_sign_out_handler(runtime, page="/status"), methods=["POST"], include_in_schema=False
    )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        ready = bool(runtime.providers)
        body: dict[str, object] = {"status": "ready" if ready else "not_ready", "providers": sorted(runtime.providers)}
        simulated = sorted(n for n, p in runtime.providers.items() if p.simulated)
        if simulated:
            body["simulated"] = simulated
            body["warning"] = "answers come from Corral's built-in fakes, not real backends (demo mode)"
        return JSONResponse(body, status_code=200 if ready else 503)

    return app
