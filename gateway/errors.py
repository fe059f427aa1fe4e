"""Errors the gateway reports to its clients, in OpenAI's error shape.

Every failure a client can see is a `GatewayError` carrying one of the `Code`s below;
`gateway.api.errors` turns it into `{"error": {"message", "type", "code", "param", ...}}`
with its HTTP status. `SHAPES` is the one table of codes, statuses and types (the SDK's own
table is tested against it).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from gateway.metering.events import AttemptRecord


class Code(StrEnum):
    INVALID_JSON = "invalid_json"
    INVALID_VALUE = "invalid_value"
    MISSING_REQUIRED_PARAMETER = "missing_required_parameter"
    UNSUPPORTED_PARAMETER = "unsupported_parameter"
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
    INVALID_TOOL_SCHEMA = "invalid_tool_schema"
    CLIENT_DISCONNECTED = "client_disconnected"
    REQUEST_TIMEOUT = "request_timeout"
    INVALID_API_KEY = "invalid_api_key"
    BUDGET_EXCEEDED = "budget_exceeded"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    POLICY_REJECTED = "policy_rejected"
    MODEL_NOT_FOUND = "model_not_found"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    REQUEST_TOO_LARGE = "request_too_large"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    INTERNAL_ERROR = "internal_error"
    UPSTREAM_FAILED = "upstream_failed"
    TOOL_CALL_VALIDATION_FAILED = "tool_call_validation_failed"
    NO_DEPLOYMENT_AVAILABLE = "no_deployment_available"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    LEDGER_UNAVAILABLE = "ledger_unavailable"
    KEY_STORE_UNAVAILABLE = "key_store_unavailable"
    UPSTREAM_TIMEOUT = "upstream_timeout"


#: code -> (HTTP status, OpenAI error type): the only status and type a code is sent with.
SHAPES: dict[Code, tuple[int, str]] = {
    Code.INVALID_JSON: (400, "invalid_request_error"),
    Code.INVALID_VALUE: (400, "invalid_request_error"),
    Code.MISSING_REQUIRED_PARAMETER: (400, "invalid_request_error"),
    Code.UNSUPPORTED_PARAMETER: (400, "invalid_request_error"),
    Code.CONTEXT_LENGTH_EXCEEDED: (400, "invalid_request_error"),
    Code.INVALID_TOOL_SCHEMA: (400, "invalid_request_error"),
    Code.CLIENT_DISCONNECTED: (400, "invalid_request_error"),
    Code.REQUEST_TIMEOUT: (408, "invalid_request_error"),
    Code.INVALID_API_KEY: (401, "authentication_error"),
    Code.BUDGET_EXCEEDED: (402, "budget_error"),
    Code.INSUFFICIENT_SCOPE: (403, "permission_error"),
    Code.POLICY_REJECTED: (403, "permission_error"),
    Code.MODEL_NOT_FOUND: (404, "invalid_request_error"),
    Code.NOT_FOUND: (404, "invalid_request_error"),
    Code.METHOD_NOT_ALLOWED: (405, "invalid_request_error"),
    Code.IDEMPOTENCY_KEY_IN_USE: (409, "invalid_request_error"),
    Code.IDEMPOTENCY_KEY_REUSED: (422, "invalid_request_error"),
    Code.REQUEST_TOO_LARGE: (413, "invalid_request_error"),
    Code.RATE_LIMIT_EXCEEDED: (429, "rate_limit_error"),
    Code.INTERNAL_ERROR: (500, "server_error"),
    Code.UPSTREAM_FAILED: (502, "upstream_error"),
    Code.TOOL_CALL_VALIDATION_FAILED: (502, "upstream_error"),
    Code.NO_DEPLOYMENT_AVAILABLE: (503, "upstream_error"),
    Code.UPSTREAM_UNAVAILABLE: (503, "upstream_error"),
    Code.LEDGER_UNAVAILABLE: (503, "upstream_error"),
    Code.KEY_STORE_UNAVAILABLE: (503, "upstream_error"),
    Code.UPSTREAM_TIMEOUT: (504, "upstream_error"),
}


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: Code | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        #: More members of the error object, e.g. `attempts` (which backends were tried).
        self.extra = extra or {}
        #: The upstream attempts made before giving up (for the ledger; never sent as is).
        self.attempt_records: tuple[AttemptRecord, ...] = ()
        #: For the metrics only (never sent): why, when the code alone does not say (e.g.
        #: "breaker_open" behind no_deployment_available), and the policy rule and split arm.
        self.reason: str | None = None
        self.rule: str | None = None
        self.arm: str | None = None

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code, "param": self.param}
        error.update(self.extra)
        return {"error": error}


def error(
    code: Code,
    message: str,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> GatewayError:
    """A `GatewayError` with the status and type `SHAPES` gives its code."""
    status, kind = SHAPES[code]
    return GatewayError(status, message, type=kind, code=code, param=param, headers=headers, extra=extra)


def bad_request(message: str, *, param: str | None = None, code: Code = Code.INVALID_VALUE) -> GatewayError:
    return error(code, message, param=param)
