"""Issue 18, reproduction 6: honest statuses and messages for requests no deployment can
ever serve, `stream: null`, duplicated keys, and messages that name the field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.hostile.conftest import ADMIN_KEY, AuthGateway, bearer

CHAT: dict[str, Any] = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}


def _post(gw: AuthGateway, body: dict[str, Any] | bytes) -> httpx.Response:
    headers = {**bearer(ADMIN_KEY), "content-type": "application/json"}
    if isinstance(body, bytes):
        return httpx.post(f"{gw.url}/v1/chat/completions", content=body, headers=headers, timeout=20)
    return httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers, timeout=20)


def test_an_output_limit_no_deployment_has_is_a_400_naming_max_tokens(auth_gateway: AuthGateway) -> None:
    """Not a retryable 503 (OpenAI answers 400, and retrying cannot help); the logprobs
    case, which needs a gateway without logprobs deployments, is in
    tests/faults/test_hostile_statuses.py."""
    reply = _post(auth_gateway, {**CHAT, "max_tokens": 10**12})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == "max_tokens" and error["code"] == "unsupported_parameter"
    assert "max output" in error["message"]


def test_stream_null_is_the_default(auth_gateway: AuthGateway) -> None:
    """OpenAI accepts `stream: null` (not streamed)."""
    reply = _post(auth_gateway, {**CHAT, "stream": None})
    assert reply.status_code == 200, reply.text
    assert reply.json()["object"] == "chat.completion"


DUPLICATED = [
    b'{"model": "llama-4-scout", "messages": [{"role": "user", "content": "Hi"}], "model": "llama-4-maverick"}',
    b'{"model":"llama-4-scout","messages":[{"role":"user","content":"a: b","content":"c"}]}',
    b'{"model" : "llama-4-scout", "messages":[{"role":"user","content":"Hi"}], "model":"llama-4-scout"}',
    b'{"model":"llama-4-scout","messages":[{"role":"user","content":"\\u003a"}],"max_tokens":8,"max_tokens":9}',
]


@pytest.mark.parametrize("body", DUPLICATED, ids=["model", "nested", "spaced", "escaped-colon"])
def test_duplicate_keys_are_refused_naming_the_key(auth_gateway: AuthGateway, body: bytes) -> None:
    """A duplicated key is how a smuggled parameter hides: 400 naming it, never the last value."""
    reply = _post(auth_gateway, body)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert "duplicate key" in error["message"] and error["param"] in {"model", "content", "max_tokens"}


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"stop": [str(i) for i in range(10)]}, "stop", "at most 4"),
        (
            {"messages": [{"role": "user", "content": [{"type": "audio", "audio": "x"}]}]},
            "messages[0].content[0]",
            "audio",
        ),
    ],
    ids=["stop", "content-part"],
)
def test_messages_name_the_field_and_what_was_wrong(
    auth_gateway: AuthGateway, extra: dict[str, Any], param: str, words: str
) -> None:
    """Not "Input should be a valid string" for a list that is too long or a part of an unknown type."""
    reply = _post(auth_gateway, {**CHAT, **extra})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == param and words in error["message"] and "valid string" not in error["message"]
