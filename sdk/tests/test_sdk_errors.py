"""Every gateway status and code becomes its typed exception, with its extras."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sdk_fakes import FakeGateway, error_response

import corral
from corral._errors import make_status_error

MESSAGES = [{"role": "user", "content": "Hi"}]

CASES: list[tuple[int, str, str, type[corral.APIStatusError]]] = [
    (400, "invalid_request_error", "invalid_json", corral.BadRequestError),
    (400, "invalid_request_error", "invalid_value", corral.BadRequestError),
    (400, "invalid_request_error", "unsupported_parameter", corral.BadRequestError),
    (400, "invalid_request_error", "context_length_exceeded", corral.BadRequestError),
    (400, "invalid_request_error", "invalid_tool_schema", corral.BadRequestError),
    (401, "authentication_error", "invalid_api_key", corral.AuthenticationError),
    (402, "budget_error", "budget_exceeded", corral.BudgetExceededError),
    (403, "permission_error", "insufficient_scope", corral.PermissionDeniedError),
    (403, "permission_error", "policy_rejected", corral.PolicyRejectedError),
    (404, "invalid_request_error", "model_not_found", corral.NotFoundError),
    (404, "invalid_request_error", "not_found", corral.NotFoundError),
    (405, "invalid_request_error", "method_not_allowed", corral.APIStatusError),
    (413, "invalid_request_error", "request_too_large", corral.RequestTooLargeError),
    (429, "rate_limit_error", "rate_limit_exceeded", corral.RateLimitError),
    (502, "upstream_error", "upstream_failed", corral.UpstreamUnavailableError),
    (502, "upstream_error", "tool_call_validation_failed", corral.ToolCallValidationError),
    (503, "upstream_error", "no_deployment_available", corral.UpstreamUnavailableError),
    (503, "upstream_error", "upstream_unavailable", corral.UpstreamUnavailableError),
    (504, "upstream_error", "upstream_timeout", corral.UpstreamTimeoutError),
    (500, "server_error", "internal_error", corral.InternalServerError),
    (409, "invalid_request_error", "conflict", corral.ConflictError),
    (422, "invalid_request_error", "unprocessable", corral.UnprocessableEntityError),
]


def _raised(gateway: FakeGateway, response: httpx.Response) -> corral.APIStatusError:
    gateway.push(response)
    client = gateway.client(max_retries=0)
    with pytest.raises(corral.APIStatusError) as info:
        client.chat.completions.create(model="llama-4-scout", messages=MESSAGES)
    return info.value


@pytest.mark.parametrize(("status", "type_", "code", "cls"), CASES)
def test_status_and_code_map_to_a_class(
    gateway: FakeGateway, status: int, type_: str, code: str, cls: type[corral.APIStatusError]
) -> None:
    error = _raised(gateway, error_response(status, code, "it failed", type_=type_))
    assert type(error) is cls
    assert isinstance(error, corral.APIError) and isinstance(error, corral.CorralError)
    assert (error.status_code, error.code, error.type, error.message) == (status, code, type_, "it failed")
    assert error.request_id == "req_123"
    assert error.body["message"] == "it failed"
    assert str(error) == f"{status} {code}: it failed"


def test_bad_request_names_the_offending_field(gateway: FakeGateway) -> None:
    error = _raised(
        gateway, error_response(400, "invalid_value", "temperature must be <= 2", param="temperature")
    )
    assert isinstance(error, corral.BadRequestError)
    assert error.param == "temperature"


def test_rate_limit_carries_retry_after(gateway: FakeGateway) -> None:
    error = _raised(
        gateway,
        error_response(429, "rate_limit_exceeded", type_="rate_limit_error", headers={"retry-after": "12"}),
    )
    assert isinstance(error, corral.RateLimitError)
    assert error.retry_after == 12.0


def test_policy_rejection_carries_the_rule(gateway: FakeGateway) -> None:
    error = _raised(
        gateway,
        error_response(403, "policy_rejected", type_="permission_error", rule="no-bedrock-for-team-x"),
    )
    assert isinstance(error, corral.PolicyRejectedError)
    assert isinstance(error, corral.PermissionDeniedError)
    assert error.rule == "no-bedrock-for-team-x"


def test_tool_validation_failure_carries_each_attempts_errors(gateway: FakeGateway) -> None:
    attempts: list[dict[str, Any]] = [
        {"provider": "groq", "model_id": "m1", "errors": ["city: 'city' is a required property"]},
        {"provider": "together", "model_id": "m2", "errors": ["unit: 'k' is not one of ['c', 'f']", "x"]},
    ]
    error = _raised(
        gateway, error_response(502, "tool_call_validation_failed", type_="upstream_error", attempts=attempts)
    )
    assert isinstance(error, corral.ToolCallValidationError)
    assert [a.provider for a in error.attempts] == ["groq", "together"]
    assert error.attempts[0].errors == ["city: 'city' is a required property"]
    assert error.attempts[1].model_id == "m2" and len(error.attempts[1].errors) == 2


def test_upstream_failure_carries_the_backends_tried(gateway: FakeGateway) -> None:
    attempts = [
        {"provider": "groq", "model_id": "g", "kind": "rate_limited", "status": 429, "message": "slow down"},
        {"provider": "vllm", "model_id": "v", "kind": "timeout", "status": None, "message": "no answer"},
    ]
    error = _raised(
        gateway, error_response(502, "upstream_failed", type_="upstream_error", attempts=attempts)
    )
    assert isinstance(error, corral.UpstreamUnavailableError)
    assert error.providers_tried == ["groq", "vllm"]
    assert error.attempts[0] == corral.UpstreamAttempt("groq", "g", "rate_limited", 429, "slow down")
    assert error.attempts[1].status is None


def test_upstream_timeout_is_an_upstream_unavailable(gateway: FakeGateway) -> None:
    error = _raised(
        gateway,
        error_response(504, "upstream_timeout", type_="upstream_error", attempts=[{"provider": "bedrock"}]),
    )
    assert isinstance(error, corral.UpstreamTimeoutError)
    assert isinstance(error, corral.UpstreamUnavailableError)
    assert error.providers_tried == ["bedrock"]


def test_non_json_error_body_still_maps(gateway: FakeGateway) -> None:
    error = _raised(gateway, httpx.Response(502, content=b"Bad Gateway from the proxy"))
    assert isinstance(error, corral.UpstreamUnavailableError)
    assert error.message == "Bad Gateway from the proxy"
    assert error.code is None and error.attempts == []


def test_unknown_4xx_is_a_plain_status_error() -> None:
    response = httpx.Response(
        418, json={"error": {"message": "teapot"}}, request=httpx.Request("GET", "http://x/")
    )
    response.read()
    error = make_status_error(response)
    assert type(error) is corral.APIStatusError and error.status_code == 418


def test_connection_error(gateway: FakeGateway) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    gateway.push(refuse)
    with pytest.raises(corral.APIConnectionError) as info:
        gateway.client(max_retries=0).chat.completions.create(model="m", messages=MESSAGES)
    assert not isinstance(info.value, corral.APITimeoutError)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_timeout_error(gateway: FakeGateway) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    gateway.push(slow)
    with pytest.raises(corral.APITimeoutError) as info:
        gateway.client(max_retries=0).chat.completions.create(model="m", messages=MESSAGES)
    assert isinstance(info.value, corral.APIConnectionError)


async def test_async_errors_are_the_same(gateway: FakeGateway) -> None:
    gateway.push(error_response(402, "budget_exceeded", type_="budget_error"))
    async with gateway.async_client(max_retries=0) as client:
        with pytest.raises(corral.BudgetExceededError):
            await client.chat.completions.create(model="m", messages=MESSAGES)
