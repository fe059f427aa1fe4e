"""Exceptions the SDK raises, mirroring the gateway's error codes (see gateway/errors.py).

    CorralError                                  the root; also configuration mistakes
     ├── APIError                                a call to the gateway failed
     │    ├── APIConnectionError                 no response: refused, reset, DNS, dropped stream
     │    │    └── APITimeoutError               the SDK's own timeout or deadline
     │    ├── APIResponseValidationError         a success body the SDK cannot read
     │    └── APIStatusError                     the gateway answered with an error
     │         ├── BadRequestError               400 (.param names the offending field)
     │         │    └── RequestTooLargeError     413
     │         ├── AuthenticationError           401
     │         ├── BudgetExceededError           402
     │         ├── PermissionDeniedError         403
     │         │    └── PolicyRejectedError      403 policy_rejected (.rule)
     │         ├── NotFoundError                 404
     │         ├── ConflictError                 409
     │         │    └── IdempotencyInProgressError 409 idempotency_key_in_use (.retry_after)
     │         ├── UnprocessableEntityError      422
     │         │    └── IdempotencyKeyReusedError 422 idempotency_key_reused
     │         ├── RateLimitError                429 (.retry_after)
     │         └── InternalServerError           5xx
     │              ├── UpstreamUnavailableError 502 upstream_failed, 503 (.attempts: backends tried)
     │              │    └── UpstreamTimeoutError 504 upstream_timeout
     │              └── ToolCallValidationError  502 tool_call_validation_failed (.attempts[].errors)
     └── MaxToolRoundsExceeded                   (in corral.tools) the tool loop hit max_rounds

`make_status_error` is the one place statuses and codes become classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from corral._utils import parse_retry_after
from corral.types._parse import as_dict, dict_list, opt_int, opt_str
from corral.types.corral import HEADER_REQUEST_ID

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ConflictError",
    "CorralError",
    "IdempotencyInProgressError",
    "IdempotencyKeyReusedError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "PolicyRejectedError",
    "RateLimitError",
    "RequestTooLargeError",
    "ToolCallValidationError",
    "ToolValidationAttempt",
    "UnprocessableEntityError",
    "UpstreamAttempt",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
    "make_status_error",
    "make_stream_error",
]


class CorralError(Exception):
    """The root of every exception the SDK raises."""


class APIError(CorralError):
    """A call to the gateway failed. `body` is the error object when there was one."""

    def __init__(self, message: str, *, request: httpx.Request | None, body: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.request = request
        self.body: dict[str, Any] = body or {}
        self.code: str | None = opt_str(self.body.get("code"))
        self.type: str | None = opt_str(self.body.get("type"))
        self.param: str | None = opt_str(self.body.get("param"))


class APIConnectionError(APIError):
    def __init__(self, message: str = "Connection error.", *, request: httpx.Request | None = None):
        super().__init__(message, request=request)


class APITimeoutError(APIConnectionError):
    def __init__(self, message: str = "Request timed out.", *, request: httpx.Request | None = None):
        super().__init__(message, request=request)


class APIResponseValidationError(APIError):
    def __init__(self, message: str, *, response: httpx.Response):
        super().__init__(message, request=response.request)
        self.response = response
        self.status_code = response.status_code


class APIStatusError(APIError):
    """The gateway answered with an error status. `request_id` is from x-corral-request-id."""

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        body: dict[str, Any] | None = None,
        status_code: int | None = None,
    ):
        super().__init__(message, request=response.request, body=body)
        self.response = response
        self.status_code = status_code if status_code is not None else response.status_code
        self.headers = response.headers
        self.request_id: str | None = response.headers.get(HEADER_REQUEST_ID)
        self._read_extras()

    def _read_extras(self) -> None:
        """Subclasses pick their own members out of the error body and headers here."""

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        return f"{self.status_code}{code}: {self.message}"


class BadRequestError(APIStatusError):
    """400: the request is wrong; `param` names the offending field and `code` says how."""


class RequestTooLargeError(BadRequestError):
    """413: the body is larger than the gateway accepts."""


class AuthenticationError(APIStatusError):
    """401: missing or unknown API key (CORRAL_API_KEY)."""


class BudgetExceededError(APIStatusError):
    """402: the key's or team's budget is spent."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class PolicyRejectedError(PermissionDeniedError):
    """403 policy_rejected: a routing-policy rule refused the request; `rule` names it."""

    rule: Any

    def _read_extras(self) -> None:
        self.rule = self.body.get("rule")


class NotFoundError(APIStatusError):
    """404: unknown model or path."""


class ConflictError(APIStatusError):
    """409."""


class UnprocessableEntityError(APIStatusError):
    """422."""


class IdempotencyInProgressError(ConflictError):
    """409 idempotency_key_in_use: the first request with this Idempotency-Key is still
    running; `retry_after` is when to ask again (the SDK does so itself within its retries)."""

    retry_after: float | None

    def _read_extras(self) -> None:
        self.retry_after = parse_retry_after(self.headers)


class IdempotencyKeyReusedError(UnprocessableEntityError):
    """422 idempotency_key_reused: this Idempotency-Key was used with a different body."""


class RateLimitError(APIStatusError):
    """429: slow down; `retry_after` is the wait the gateway asked for, in seconds."""

    retry_after: float | None

    def _read_extras(self) -> None:
        self.retry_after = parse_retry_after(self.headers)


class InternalServerError(APIStatusError):
    """5xx."""


@dataclass(frozen=True, slots=True)
class UpstreamAttempt:
    """One backend the gateway tried: `kind` is its error class (rate_limited, timeout, ...)."""

    provider: str
    model_id: str | None = None
    kind: str | None = None
    status: int | None = None
    message: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UpstreamAttempt:
        return cls(
            provider=opt_str(data.get("provider")) or "",
            model_id=opt_str(data.get("model_id")),
            kind=opt_str(data.get("kind")),
            status=opt_int(data.get("status")),
            message=opt_str(data.get("message")),
        )


@dataclass(frozen=True, slots=True)
class ToolValidationAttempt:
    """One model answer whose tool calls failed validation, with each error found."""

    provider: str
    model_id: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolValidationAttempt:
        errors = data.get("errors")
        return cls(
            provider=opt_str(data.get("provider")) or "",
            model_id=opt_str(data.get("model_id")),
            errors=[str(e) for e in errors] if isinstance(errors, list) else [],
        )


class UpstreamUnavailableError(InternalServerError):
    """502/503: no backend could serve the request; `attempts` lists the ones tried."""

    attempts: list[UpstreamAttempt]
    retry_after: float | None

    def _read_extras(self) -> None:
        self.attempts = [UpstreamAttempt.from_dict(item) for item in dict_list(self.body.get("attempts"))]
        self.retry_after = parse_retry_after(self.headers)

    @property
    def providers_tried(self) -> list[str]:
        return [attempt.provider for attempt in self.attempts]


class UpstreamTimeoutError(UpstreamUnavailableError):
    """504 upstream_timeout: the backends did not answer in time."""


class ToolCallValidationError(InternalServerError):
    """502 tool_call_validation_failed: the model's tool calls stayed invalid after repairs and
    re-asks; `attempts[i].errors` lists what was wrong each time."""

    attempts: list[ToolValidationAttempt]

    def _read_extras(self) -> None:
        self.attempts = [
            ToolValidationAttempt.from_dict(item) for item in dict_list(self.body.get("attempts"))
        ]


_BY_CODE: dict[str, tuple[int, type[APIStatusError]]] = {
    "policy_rejected": (403, PolicyRejectedError),
    "budget_exceeded": (402, BudgetExceededError),
    "rate_limit_exceeded": (429, RateLimitError),
    "tool_call_validation_failed": (502, ToolCallValidationError),
    "upstream_failed": (502, UpstreamUnavailableError),
    "upstream_unavailable": (503, UpstreamUnavailableError),
    "no_deployment_available": (503, UpstreamUnavailableError),
    "upstream_timeout": (504, UpstreamTimeoutError),
    "invalid_api_key": (401, AuthenticationError),
    "insufficient_scope": (403, PermissionDeniedError),
    "model_not_found": (404, NotFoundError),
    "request_too_large": (413, RequestTooLargeError),
    "invalid_json": (400, BadRequestError),
    "invalid_value": (400, BadRequestError),
    "missing_required_parameter": (400, BadRequestError),
    "unsupported_parameter": (400, BadRequestError),
    "context_length_exceeded": (400, BadRequestError),
    "invalid_tool_schema": (400, BadRequestError),
    "client_disconnected": (400, BadRequestError),
    "request_timeout": (408, APIStatusError),
    "not_found": (404, NotFoundError),
    "method_not_allowed": (405, APIStatusError),
    "idempotency_key_in_use": (409, IdempotencyInProgressError),
    "idempotency_key_reused": (422, IdempotencyKeyReusedError),
    "internal_error": (500, InternalServerError),
    "ledger_unavailable": (503, UpstreamUnavailableError),
    "key_store_unavailable": (503, UpstreamUnavailableError),
}

_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: BudgetExceededError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: RequestTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    502: UpstreamUnavailableError,
    503: UpstreamUnavailableError,
    504: UpstreamTimeoutError,
}


def _class_for(status: int, code: str | None) -> type[APIStatusError]:
    by_code = _BY_CODE.get(code or "")
    if by_code is not None and by_code[0] == status:
        return by_code[1]
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return InternalServerError if status >= 500 else APIStatusError


def error_object(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    """The message and the `error` object of an error response (tolerating non-JSON bodies)."""
    try:
        parsed: Any = json.loads(response.content) if response.content else None
    except ValueError:
        parsed = None
    error = as_dict(parsed.get("error")) if isinstance(parsed, dict) else {}
    message = opt_str(error.get("message"))
    if not message:
        text = response.text.strip()[:500] if not error else ""
        message = text or response.reason_phrase or f"HTTP {response.status_code}"
    return message, error


def make_status_error(response: httpx.Response) -> APIStatusError:
    """The typed exception for an error response (its body must already be read)."""
    message, error = error_object(response)
    cls = _class_for(response.status_code, opt_str(error.get("code")))
    return cls(message, response=response, body=error)


def make_stream_error(error: dict[str, Any], response: httpx.Response) -> APIError:
    """The exception for an `error` event inside a 200 stream: typed by its code, with the code's
    usual status as `status_code`; a plain APIError when the code is unknown."""
    message = opt_str(error.get("message")) or "The stream reported an error."
    entry = _BY_CODE.get(opt_str(error.get("code")) or "")
    if entry is None:
        return APIError(message, request=response.request, body=error)
    status, cls = entry
    return cls(message, response=response, body=error, status_code=status)
