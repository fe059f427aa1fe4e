"""Operator endpoints (scope `admin`): policy reload, and API keys (create, list, revoke)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import authenticate
from gateway.api.parse import read_body
from gateway.errors import Code, GatewayError, bad_request, error
from gateway.keys.store import KeyRequestError
from gateway.runtime import Runtime

KEY_FIELDS = frozenset({"team", "scopes", "rpm", "tpm", "budget_usd", "budget_period", "name"})


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _store_down(exc: SQLAlchemyError) -> GatewayError:
    return error(Code.KEY_STORE_UNAVAILABLE, f"the key store is unreachable ({type(exc).__name__})")


def make_reload_handler(rt: Runtime) -> Any:
    async def reload_policy(request: Request) -> Response:
        authenticate(request, rt.keys, "admin")
        force = request.query_params.get("force", "false").lower()
        if force not in ("true", "false", "1", "0"):
            raise bad_request("force must be true or false", param="force")
        result = await rt.policy.reload(force=force in ("true", "1"))
        body = {"reloaded": result.ok, "policy": result.policy, "errors": result.errors, "hash": result.digest}
        if not result.ok:
            body["error"] = {
                "message": "new policy refused; the last good policy keeps serving: " + "; ".join(result.errors),
                "type": "invalid_request_error",
                "code": "invalid_policy",
                "param": None,
            }
        return Response(orjson.dumps(body), status_code=200 if result.ok else 422, media_type="application/json")

    return reload_policy


def _key_request(raw: bytes) -> dict[str, Any]:
    try:
        spec = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"body is not valid JSON: {exc}", code=Code.INVALID_JSON) from exc
    if not isinstance(spec, dict):
        raise bad_request("body must be a JSON object")
    unknown = sorted(set(spec) - KEY_FIELDS)
    if unknown:
        raise bad_request(f"unknown field(s) {unknown}; known: {', '.join(sorted(KEY_FIELDS))}", param=unknown[0])
    if "scopes" not in spec:
        raise bad_request("missing 'scopes' (e.g. [\"chat\"])", param="scopes", code=Code.MISSING_REQUIRED_PARAMETER)
    for name in ("team", "name", "budget_period"):
        if spec.get(name) is not None and not isinstance(spec[name], str):
            raise bad_request(f"{name} must be a string", param=name)
    if not isinstance(spec["scopes"], str | list):
        raise bad_request("scopes must be a list of strings or a comma-separated string", param="scopes")
    if isinstance(spec.get("budget_usd"), bool):
        raise bad_request("budget_usd must be a number", param="budget_usd")
    return spec


def make_create_key_handler(rt: Runtime) -> Any:
    async def create_key(request: Request) -> Response:
        authenticate(request, rt.keys, "admin")
        spec = _key_request(await read_body(request, rt.settings.max_body_bytes, rt.settings.body_timeout_s))
        try:
            key, record = await rt.keys.create(
                team=spec.get("team"),
                scopes=spec["scopes"],
                rpm=spec.get("rpm"),
                tpm=spec.get("tpm"),
                budget_usd=spec.get("budget_usd"),
                budget_period=spec.get("budget_period"),
                name=spec.get("name") or "",
            )
        except KeyRequestError as exc:
            raise bad_request(str(exc)) from exc
        except SQLAlchemyError as exc:
            raise _store_down(exc) from exc
        return _json({**record.public(), "key": key}, 201)

    return create_key


def make_list_keys_handler(rt: Runtime) -> Any:
    async def list_keys(request: Request) -> Response:
        authenticate(request, rt.keys, "admin")
        include = request.query_params.get("include_revoked", "true").lower() not in {"0", "false", "no"}
        try:
            records = await rt.keys.list(include)
        except SQLAlchemyError as exc:
            raise _store_down(exc) from exc
        return _json({"data": [r.public() for r in records]})

    return list_keys


def make_revoke_key_handler(rt: Runtime) -> Any:
    async def revoke_key(request: Request) -> Response:
        authenticate(request, rt.keys, "admin")
        key_id = request.path_params["key_id"]
        try:
            record = await rt.keys.revoke(key_id)
        except SQLAlchemyError as exc:
            raise _store_down(exc) from exc
        if record is None:
            raise error(Code.NOT_FOUND, f"no API key {key_id!r}", param="key_id")
        return _json({**record.public(), "revoked": True})

    return revoke_key
