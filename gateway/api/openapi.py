"""What `/openapi.json` says about the endpoints that read their own request.

The handlers take the raw `Request` (the chat endpoint is even served outside FastAPI's
router, see `fastpath`), so FastAPI cannot infer their bodies and parameters. This module
describes them: the chat body is the JSON Schema of the very pydantic model that checks
it, and every operation lists its OpenAI-shaped error answers. Clients and contract tests
(schemathesis) read the document; nothing here is used to validate requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI

from gateway.keys.model import PERIODS, SCOPES
from gateway.metering.reports import FILTERS
from gateway.schema.chat import ChatCompletionRequest

__all__ = [
    "CHAT",
    "COMPLETIONS",
    "CREATE_KEY",
    "EXPLAIN",
    "LIST_KEYS",
    "MODELS",
    "RELOAD",
    "RESPONSES",
    "REVOKE_KEY",
    "SPEND",
    "SPEND_REQUESTS",
    "install",
]

_REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code", "param"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": ["string", "null"]},
                "param": {"type": ["string", "null"]},
            },
        }
    },
}

KEY_SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["scopes"],
    "properties": {
        "scopes": {
            "oneOf": [
                {"type": "array", "items": {"type": "string", "enum": list(SCOPES)}, "minItems": 1},
                {"type": "string", "description": "comma-separated scopes"},
            ]
        },
        "team": {"type": ["string", "null"]},
        "name": {"type": ["string", "null"]},
        "rpm": {"type": ["integer", "null"], "minimum": 1},
        "tpm": {"type": ["integer", "null"], "minimum": 1},
        "budget_usd": {"type": ["number", "string", "null"]},
        "budget_period": {"type": ["string", "null"], "enum": [*PERIODS, None]},
    },
}

_DESCRIPTIONS = {
    400: "invalid request",
    401: "missing, invalid or revoked API key",
    402: "budget exceeded",
    403: "the key lacks the scope, or the policy rejects the request",
    404: "unknown model or object",
    413: "request body too large",
    422: "new policy refused",
    429: "rate limit exceeded",
    502: "upstream failed, or its tool calls did not validate",
    503: "no deployment or store available",
    504: "upstream timed out",
}


def _errors(statuses: Iterable[int]) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    return {str(status): {"description": _DESCRIPTIONS[status], "content": content} for status in statuses}


def _json_body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _query(names: Iterable[str], **schemas: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": False, "schema": schemas.get(name, {"type": "string"})}
        for name in names
    ]


_AUTH = (401, 403)
_UPSTREAM = (502, 503, 504)
_SPEND_PARAMS = _query(
    ("from", "to", "start", "end", "by", "group_by", "format", "as_provider", *FILTERS),
    format={"type": "string", "enum": ["json", "csv"]},
)

CHAT: dict[str, Any] = {
    "requestBody": _json_body("ChatCompletionRequest"),
    "responses": _errors((400, *_AUTH, 402, 404, 413, 429, *_UPSTREAM)),
}
#: The Responses API body is translated to a chat body (gateway/api/responses_in.py), which is then
#: checked as above; its own shape is OpenAI's.
RESPONSES: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
    "responses": _errors((400, *_AUTH, 402, 404, 413, 429, *_UPSTREAM)),
}
#: The legacy completions body is translated to a chat body (gateway/api/completions_in.py) likewise.
COMPLETIONS: dict[str, Any] = RESPONSES
EXPLAIN: dict[str, Any] = {
    "requestBody": _json_body("ChatCompletionRequest"),
    "responses": _errors((400, *_AUTH, 404, 413)),
}
RELOAD: dict[str, Any] = {
    "parameters": _query(("force",), force={"type": "string", "enum": ["true", "false"]}),
    "responses": _errors((400, *_AUTH, 422)),
}
CREATE_KEY: dict[str, Any] = {
    "requestBody": _json_body("KeySpec"),
    "responses": _errors((400, *_AUTH, 413, 503)),
}
LIST_KEYS: dict[str, Any] = {
    "parameters": _query(("include_revoked",), include_revoked={"type": "string", "enum": ["true", "false"]}),
    "responses": _errors((*_AUTH, 503)),
}
REVOKE_KEY: dict[str, Any] = {
    "parameters": [{"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}],
    "responses": _errors((*_AUTH, 404, 503)),
}
SPEND: dict[str, Any] = {"parameters": _SPEND_PARAMS, "responses": _errors((400, *_AUTH, 503))}
SPEND_REQUESTS: dict[str, Any] = {
    "parameters": [*_SPEND_PARAMS, *_query(("limit",), limit={"type": "integer", "minimum": 1})],
    "responses": _errors((400, *_AUTH, 503)),
}
#: Endpoints without authentication still answer unknown routes and methods in OpenAI's shape.
MODELS: dict[str, Any] = {"responses": _errors(_AUTH)}


def components() -> dict[str, Any]:
    """The schemas the operations refer to: the chat request (and its parts), keys, errors."""
    chat = ChatCompletionRequest.model_json_schema(ref_template=_REF, mode="validation")
    schemas: dict[str, Any] = dict(chat.pop("$defs", {}))
    schemas["ChatCompletionRequest"] = chat
    schemas["KeySpec"] = KEY_SPEC_SCHEMA
    schemas["ErrorResponse"] = ERROR_SCHEMA
    return schemas


def install(app: FastAPI) -> None:
    """Add the shared schemas to the document FastAPI generates (once, on first request)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("components", {}).setdefault("schemas", {}).update(components())
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
