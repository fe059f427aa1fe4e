"""Errors the gateway reports to its clients, in OpenAI's error shape.

Every failure a client can see is a `GatewayError`; `gateway.api.errors` turns it
into `{"error": {"message", "type", "code", "param", ...}}` with `status`.
Codes (the SDK maps each to a typed exception):

| status | type | code |
| 400 | invalid_request_error | invalid_json, invalid_value, missing_required_parameter, unsupported_parameter, |
|     |                       | context_length_exceeded, invalid_tool_schema |
| 401 | authentication_error | invalid_api_key |
| 402 | budget_error | budget_exceeded |
| 403 | permission_error | insufficient_scope, policy_rejected |
| 404 | invalid_request_error | model_not_found, not_found |
| 405 | invalid_request_error | method_not_allowed |
| 413 | invalid_request_error | request_too_large |
| 429 | rate_limit_error | rate_limit_exceeded |
| 502 | upstream_error | upstream_failed, tool_call_validation_failed |
| 503 | upstream_error | no_deployment_available, upstream_unavailable |
| 504 | upstream_error | upstream_timeout |
"""

from __future__ import annotations

from typing import Any

from gateway.metering.events import AttemptRecord


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
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

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code, "param": self.param}
        error.update(self.extra)
        return {"error": error}


def bad_request(message: str, *, param: str | None = None, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, code=code, param=param)
