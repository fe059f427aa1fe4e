"""Operator endpoints: policy reload."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import authenticate
from gateway.runtime import Runtime


def make_reload_handler(rt: Runtime) -> Any:
    async def reload_policy(request: Request) -> Response:
        authenticate(request, rt.settings)
        result = rt.policy.reload()
        body = {"reloaded": result.ok, "policy": result.policy, "errors": result.errors}
        if not result.ok:
            body["error"] = {
                "message": "new policy refused; the last good policy keeps serving: " + "; ".join(result.errors),
                "type": "invalid_request_error",
                "code": "invalid_policy",
                "param": None,
            }
        return Response(orjson.dumps(body), status_code=200 if result.ok else 422, media_type="application/json")

    return reload_policy
