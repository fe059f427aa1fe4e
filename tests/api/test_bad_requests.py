"""Bad input gets a clear 4xx in OpenAI's error shape, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.config import load_settings
from tests.support import running_gateway


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    settings = load_settings(env={"CORRAL_SIMULATE": "0"}).model_copy(update={"max_body_bytes": 64 * 1024})
    with running_gateway(settings) as (url, _), httpx.Client(base_url=url, timeout=10) as http:
        yield http


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert {"message", "type", "code", "param"} <= set(error)
    assert response.headers.get("x-corral-request-id") or response.status_code in {404, 405}
    return error


def _chat(client: httpx.Client, body: object) -> httpx.Response:
    return client.post("/v1/chat/completions", json=body)


GOOD = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model", "missing_required_parameter"),
        ({**GOOD, "messages": []}, "messages", "invalid_value"),
        ({**GOOD, "messages": "hi"}, "messages", "invalid_value"),
        ({**GOOD, "messages": [{"role": "robot", "content": "x"}]}, "messages[0]", "invalid_value"),
        ({**GOOD, "temperature": "hot"}, "temperature", "invalid_value"),
        ({**GOOD, "temperature": 3}, "temperature", "invalid_value"),
        ({**GOOD, "max_tokens": 0}, "max_tokens", "invalid_value"),
        ({**GOOD, "stream": "yes"}, "stream", "invalid_value"),
        ({**GOOD, "n": 2}, "n", "invalid_value"),
        ({**GOOD, "stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"),
        (
            {**GOOD, "tools": [{"type": "function", "function": {"name": "bad name!"}}]},
            "tools[0].function.name",
            "invalid_value",
        ),
        ({**GOOD, "frobnicate": True}, "frobnicate", "unsupported_parameter"),
        ({**GOOD, "corral": {"prefer": "cheapest"}}, "corral.prefer", "invalid_value"),
    ],
)
def test_invalid_fields_name_the_parameter(client: httpx.Client, body: object, param: str, code: str) -> None:
    response = _chat(client, body)
    assert response.status_code == 400
    error = _error(response)
    assert error["param"] == param
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"


def test_malformed_json(client: httpx.Client) -> None:
    response = client.post(
        "/v1/chat/completions",
        content=b'{"model": "llama-4-scout", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_json"


@pytest.mark.parametrize("content", [b"", b"[1, 2]", b"null", b"\xff\xfe"])
def test_not_a_json_object(client: httpx.Client, content: bytes) -> None:
    response = client.post("/v1/chat/completions", content=content)
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_json"


def test_deeply_nested_json_is_refused(client: httpx.Client) -> None:
    nested = "[" * 200 + "]" * 200
    raw = '{"model": "llama-4-scout", "messages": [{"role": "user", "content": "x"}], "metadata": ' + nested + "}"
    response = client.post("/v1/chat/completions", content=raw.encode())
    assert response.status_code == 400


def test_unknown_model(client: httpx.Client) -> None:
    response = _chat(client, {**GOOD, "model": "gpt-4o"})
    assert response.status_code == 404
    error = _error(response)
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert "llama-4-scout" in str(error["message"])


def test_oversized_body(client: httpx.Client) -> None:
    big = {**GOOD, "messages": [{"role": "user", "content": "x" * 100_000}]}
    response = _chat(client, big)
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"


def test_oversized_chunked_body_without_length(client: httpx.Client) -> None:
    def parts() -> Iterator[bytes]:
        yield b'{"model": "llama-4-scout", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}]}'

    response = client.post("/v1/chat/completions", content=parts())
    assert response.status_code == 413


def test_no_backend_configured_is_503_with_reasons(client: httpx.Client) -> None:
    response = _chat(client, GOOD)
    assert response.status_code == 503
    error = _error(response)
    assert error["code"] == "no_deployment_available"
    assert "not configured" in str(error["message"])


def test_unknown_route_and_method(client: httpx.Client) -> None:
    response = client.get("/v1/nothing")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"
    response = client.get("/v1/chat/completions")
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"


def test_health_endpoints(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 503
