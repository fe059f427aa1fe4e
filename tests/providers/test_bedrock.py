"""BedrockProvider against BedrockFake over real loopback HTTP (SigV4, Converse, event streams)."""

from __future__ import annotations

import base64
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import orjson
import pytest
from pydantic import SecretStr

from gateway.catalogue.deployments import Deployment, load_catalogue
from gateway.config import BedrockConfig, ProviderConfig, Timeouts
from gateway.fakes.bedrock.server import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, BedrockFake
from gateway.fakes.script import Behaviour
from gateway.providers.base import UpstreamStream
from gateway.providers.bedrock.adapter import BedrockProvider, error_kind
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.schema.chat import ChatCompletionRequest, ChatRequest, estimate_prompt_tokens, features_of
from gateway.schema.usage import Usage

DEPLOYMENT: Deployment = next(d for d in load_catalogue().deployments("llama-4-scout") if d.provider == "bedrock")
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city"],
}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather forecast for a city", "parameters": WEATHER_SCHEMA},
}


def chat(body: dict[str, Any]) -> ChatRequest:
    """A ChatRequest the way the API layer builds one."""
    full = {"model": "llama-4-scout", **body}
    req = ChatCompletionRequest.model_validate(full)
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    return ChatRequest(
        body=full,
        model="llama-4-scout",
        stream=req.stream,
        include_usage=include_usage,
        features=features_of(full),
        prompt_tokens_estimate=estimate_prompt_tokens(full),
        max_output_tokens=req.max_completion_tokens or req.max_tokens,
    )


def user(text: str = "Hello there", **extra: Any) -> ChatRequest:
    return chat({"messages": [{"role": "user", "content": text}], **extra})


def config_for(
    url: str, *, secret: str = TEST_SECRET_ACCESS_KEY, key: str = TEST_ACCESS_KEY_ID, timeouts: Timeouts | None = None
) -> ProviderConfig:
    bedrock = BedrockConfig(region="us-east-1", access_key_id=SecretStr(key), secret_access_key=SecretStr(secret))
    return ProviderConfig(
        name="bedrock", base_url=url, bedrock=bedrock, simulated=True, timeouts=timeouts or Timeouts()
    )


@pytest.fixture
async def fake() -> AsyncIterator[BedrockFake]:
    server = BedrockFake()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def provider(fake: BedrockFake) -> AsyncIterator[BedrockProvider]:
    adapter = BedrockProvider(config_for(fake.url))
    await adapter.start()
    yield adapter
    await adapter.close()


async def drain(stream: UpstreamStream) -> list[dict[str, Any]]:
    chunks = []
    try:
        async for chunk in stream:
            chunks.append(chunk)
    finally:
        await stream.aclose()
    return chunks


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


def arguments_of(chunks: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for call in chunk["choices"][0]["delta"].get("tool_calls") or []:
            entry = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
            entry["id"] = call.get("id") or entry["id"]
            entry["name"] = call.get("function", {}).get("name") or entry["name"]
            entry["arguments"] += call.get("function", {}).get("arguments", "")
    return calls


# --- text ---------------------------------------------------------------------------------


async def test_complete_text(fake: BedrockFake, provider: BedrockProvider) -> None:
    fake.script.push(Behaviour(text="Hello from the herd."))
    completion = await provider.complete(user(), DEPLOYMENT)
    body = completion.body
    assert body["object"] == "chat.completion" and body["model"] == DEPLOYMENT.model_id
    assert body["id"] == f"chatcmpl-{completion.upstream_request_id}"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello from the herd."}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert completion.usage.completion_tokens == 4 and completion.usage.prompt_tokens > 0
    assert body["usage"] == completion.usage.to_openai()
    sent = fake.requests[-1]
    assert sent.path == "/model/us.meta.llama4-scout-17b-instruct-v1%3A0/converse"
    assert sent.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY_ID}/")
    assert sent.json == {
        "messages": [{"role": "user", "content": [{"text": "Hello there"}]}],
        "inferenceConfig": {"maxTokens": DEPLOYMENT.max_output_tokens},
    }


async def test_complete_length_and_stop(fake: BedrockFake, provider: BedrockProvider) -> None:
    fake.script.push(Behaviour(completion_tokens=50))
    completion = await provider.complete(user(max_tokens=5), DEPLOYMENT)
    assert completion.body["choices"][0]["finish_reason"] == "length" and completion.usage.completion_tokens == 5
    fake.script.push(Behaviour(text="one two STOP three"))
    completion = await provider.complete(user(stop=["STOP"]), DEPLOYMENT)
    assert completion.body["choices"][0]["message"]["content"] == "one two "
    assert completion.body["choices"][0]["finish_reason"] == "stop"


async def test_system_and_in_region_model_id(fake: BedrockFake, provider: BedrockProvider) -> None:
    in_region = replace(DEPLOYMENT, model_id="meta.llama4-scout-17b-instruct-v1:0")
    request = chat(
        {
            "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}],
            "temperature": 0.3,
            "user": "u-1",
            "seed": 4,
        }
    )
    completion = await provider.complete(request, in_region)
    assert completion.body["model"] == "meta.llama4-scout-17b-instruct-v1:0"
    assert fake.requests[-1].json["system"] == [{"text": "Be terse."}]
    assert fake.requests[-1].json["inferenceConfig"]["temperature"] == 0.3


async def test_stream_text(fake: BedrockFake, provider: BedrockProvider) -> None:
    fake.script.push(Behaviour(text="Streaming llamas are fast."))
    stream = await provider.stream(user(stream=True), DEPLOYMENT)
    chunks = await drain(stream)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert text_of(chunks) == "Streaming llamas are fast."
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert {c["id"] for c in chunks} == {f"chatcmpl-{stream.upstream_request_id}"}
    assert {c["model"] for c in chunks} == {DEPLOYMENT.model_id}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert stream.finish_reason == "stop"
    assert isinstance(stream.usage, Usage) and stream.usage.completion_tokens == 4
    assert fake.requests[-1].path.endswith("/converse-stream")


async def test_stream_length(fake: BedrockFake, provider: BedrockProvider) -> None:
    fake.script.push(Behaviour(completion_tokens=30))
    stream = await provider.stream(user(stream=True, max_completion_tokens=3), DEPLOYMENT)
    await drain(stream)
    assert stream.finish_reason == "length" and stream.usage is not None and stream.usage.completion_tokens == 3


async def test_stream_closed_early_then_reused(fake: BedrockFake, provider: BedrockProvider) -> None:
    fake.script.push(Behaviour(completion_tokens=200))
    stream = await provider.stream(user(stream=True), DEPLOYMENT)
    async for _chunk in stream:
        break
    await stream.aclose()
    completion = await provider.complete(user(), DEPLOYMENT)
    assert completion.body["choices"][0]["finish_reason"] == "stop"


# --- tools --------------------------------------------------------------------------------


async def test_tool_call_out(fake: BedrockFake, provider: BedrockProvider) -> None:
    request = user("What's the weather in Paris?", tools=[WEATHER], tool_choice="auto")
    completion = await provider.complete(request, DEPLOYMENT)
    choice = completion.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather" and call["id"]
    jsonschema.validate(orjson.loads(call["function"]["arguments"]), WEATHER_SCHEMA)
    sent = fake.requests[-1].json["toolConfig"]
    assert sent["toolChoice"] == {"auto": {}}
    assert sent["tools"][0]["toolSpec"]["inputSchema"] == {"json": WEATHER_SCHEMA}


@pytest.mark.parametrize(
    ("choice", "field"),
    [("required", "any"), ({"type": "function", "function": {"name": "get_weather"}}, "tool")],
)
async def test_forced_tool_choice_is_a_capability_miss_for_llama_4(
    fake: BedrockFake, provider: BedrockProvider, choice: Any, field: str
) -> None:
    """Bedrock refuses toolChoice any/tool for Llama 4 (the live service's words): the adapter
    reports a capability miss naming the feature, never a client error."""
    request = user("What's the weather in Paris?", tools=[WEATHER], tool_choice=choice)
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(request, DEPLOYMENT)
    assert caught.value.kind is ErrorKind.UNSUPPORTED and caught.value.param == "tool_choice"
    assert f"toolConfig.toolChoice.{field} field" in caught.value.message
    assert fake.requests[-1].json["toolConfig"]["toolChoice"] == {
        field: ({} if field == "any" else {"name": "get_weather"})
    }


# --- images and unsupported requests ------------------------------------------------------


async def test_data_url_image_is_sent_as_bytes(fake: BedrockFake, provider: BedrockProvider) -> None:
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    request = chat(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            ]
        }
    )
    assert provider.unsupported(request, DEPLOYMENT) is None
    await provider.complete(request, DEPLOYMENT)
    block = fake.requests[-1].json["messages"][0]["content"][1]["image"]
    assert block["format"] == "png" and base64.b64decode(block["source"]["bytes"]) == image


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}],
                    }
                ]
            },
            "image URLs",
        ),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": 1.5}, "temperature"),
        (
            {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}},
            "response_format",
        ),
        ({"messages": [{"role": "user", "content": "hi"}], "logprobs": True}, "logprobs"),
    ],
)
async def test_unsupported(fake: BedrockFake, provider: BedrockProvider, body: dict[str, Any], fragment: str) -> None:
    request = chat(body)
    found = provider.unsupported(request, DEPLOYMENT)
    assert found is not None and fragment in found
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(request, DEPLOYMENT)
    assert caught.value.kind is ErrorKind.BAD_REQUEST and caught.value.code == "unsupported_by_backend"
    assert fake.requests == []


# --- errors -------------------------------------------------------------------------------

ERROR_CASES = [
    ("rate_limited", ErrorKind.RATE_LIMITED, 429, "ThrottlingException"),
    ("overloaded", ErrorKind.OVERLOADED, 503, "ServiceUnavailableException"),
    ("server_error", ErrorKind.UPSTREAM_5XX, 500, "InternalServerException"),
    ("bad_request", ErrorKind.BAD_REQUEST, 400, "ValidationException"),
    ("auth", ErrorKind.AUTH, 403, "AccessDeniedException"),
    ("context_too_long", ErrorKind.CONTEXT_TOO_LONG, 400, "ValidationException"),
    ("model_gone", ErrorKind.MODEL_GONE, 404, "ResourceNotFoundException"),
]


@pytest.mark.parametrize(("error", "kind", "status", "code"), ERROR_CASES)
@pytest.mark.parametrize("streaming", [False, True])
async def test_error_mapping(
    fake: BedrockFake, provider: BedrockProvider, error: Any, kind: ErrorKind, status: int, code: str, streaming: bool
) -> None:
    fake.script.push(Behaviour(error=error, retry_after_s=2 if error == "rate_limited" else None))
    with pytest.raises(UpstreamError) as caught:
        if streaming:
            await provider.stream(user(stream=True), DEPLOYMENT)
        else:
            await provider.complete(user(), DEPLOYMENT)
    assert (caught.value.kind, caught.value.status, caught.value.code) == (kind, status, code)
    assert caught.value.provider == "bedrock"
    assert caught.value.retry_after == (2.0 if error == "rate_limited" else None)


@pytest.mark.parametrize("streaming", [False, True])
async def test_malformed_body(fake: BedrockFake, provider: BedrockProvider, streaming: bool) -> None:
    fake.script.push(Behaviour(error="malformed_body"))
    with pytest.raises(UpstreamError) as caught:
        if streaming:
            await drain(await provider.stream(user(stream=True), DEPLOYMENT))
        else:
            await provider.complete(user(), DEPLOYMENT)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


async def test_unknown_model_id_is_model_gone(provider: BedrockProvider) -> None:
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(user(), replace(DEPLOYMENT, model_id="meta.llama9-giant-v1:0"))
    assert caught.value.kind is ErrorKind.MODEL_GONE and caught.value.status == 400


@pytest.mark.parametrize(
    ("key", "secret", "code"),
    [
        (TEST_ACCESS_KEY_ID, "not-the-secret", "InvalidSignatureException"),
        ("AKIDSOMEONEELSE0000", TEST_SECRET_ACCESS_KEY, "UnrecognizedClientException"),
    ],
)
async def test_bad_credentials_are_auth(fake: BedrockFake, key: str, secret: str, code: str) -> None:
    adapter = BedrockProvider(config_for(fake.url, key=key, secret=secret))
    await adapter.start()
    try:
        with pytest.raises(UpstreamError) as caught:
            await adapter.complete(user(), DEPLOYMENT)
    finally:
        await adapter.close()
    assert (caught.value.kind, caught.value.status, caught.value.code) == (ErrorKind.AUTH, 403, code)
    assert secret not in caught.value.message and key not in caught.value.message


async def test_stale_signature_is_auth(provider: BedrockProvider) -> None:
    stale = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=10)
    with mock.patch("botocore.auth.get_current_datetime", return_value=stale), pytest.raises(UpstreamError) as caught:
        await provider.complete(user(), DEPLOYMENT)
    assert caught.value.kind is ErrorKind.AUTH and "Signature expired" in caught.value.message


async def test_missing_credentials_are_auth(fake: BedrockFake) -> None:
    adapter = BedrockProvider(ProviderConfig(name="bedrock", base_url=fake.url, bedrock=BedrockConfig()))
    await adapter.start()
    try:
        with pytest.raises(UpstreamError) as caught:
            await adapter.complete(user(), DEPLOYMENT)
    finally:
        await adapter.close()
    assert caught.value.kind is ErrorKind.AUTH


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        ("rate_limited", ErrorKind.RATE_LIMITED, "throttlingException"),
        (None, ErrorKind.UPSTREAM_5XX, "modelStreamErrorException"),
        ("overloaded", ErrorKind.OVERLOADED, "serviceUnavailableException"),
    ],
)
async def test_mid_stream_exception(
    fake: BedrockFake, provider: BedrockProvider, error: Any, kind: ErrorKind, code: str
) -> None:
    fake.script.push(Behaviour(completion_tokens=20, mid_stream_error_after=3, error=error))
    stream = await provider.stream(user(stream=True), DEPLOYMENT)
    chunks: list[dict[str, Any]] = []
    with pytest.raises(UpstreamError) as caught:
        async for chunk in stream:
            chunks.append(chunk)
    await stream.aclose()
    assert (caught.value.kind, caught.value.code) == (kind, code)
    assert len([c for c in chunks if c["choices"][0]["delta"].get("content")]) == 3


async def test_disconnect_mid_stream_is_connection(fake: BedrockFake, provider: BedrockProvider) -> None:
    fake.script.push(Behaviour(completion_tokens=20, disconnect_after_chunks=2))
    stream = await provider.stream(user(stream=True), DEPLOYMENT)
    with pytest.raises(UpstreamError) as caught:
        await drain(stream)
    assert caught.value.kind is ErrorKind.CONNECTION


@pytest.mark.parametrize("streaming", [False, True])
async def test_hang_is_timeout(fake: BedrockFake, streaming: bool) -> None:
    adapter = BedrockProvider(config_for(fake.url, timeouts=Timeouts(first_byte_s=0.2, total_s=5)))
    await adapter.start()
    fake.script.push(Behaviour(hang=True))
    try:
        with pytest.raises(UpstreamError) as caught:
            if streaming:
                await drain(await adapter.stream(user(stream=True), DEPLOYMENT))
            else:
                await adapter.complete(user(), DEPLOYMENT)
    finally:
        await adapter.close()
    assert caught.value.kind is ErrorKind.TIMEOUT


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = BedrockProvider(config_for(f"http://127.0.0.1:{port}"))
    await adapter.start()
    try:
        with pytest.raises(UpstreamError) as caught:
            await adapter.complete(user(), DEPLOYMENT)
    finally:
        await adapter.close()
    assert caught.value.kind is ErrorKind.CONNECTION


def test_default_endpoint_and_url_encoding() -> None:
    adapter = BedrockProvider(ProviderConfig(name="bedrock", bedrock=BedrockConfig(region="us-west-2")))
    assert adapter.url(DEPLOYMENT, "converse") == (
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/us.meta.llama4-scout-17b-instruct-v1%3A0/converse"
    )


def test_signing_uses_the_bedrock_service_name() -> None:
    adapter = BedrockProvider(config_for("http://127.0.0.1:1"))
    headers = adapter.sign("http://127.0.0.1:1/model/m/converse", b"{}")
    assert "/us-east-1/bedrock/aws4_request" in headers["Authorization"]
    assert "SignedHeaders=content-type;host;x-amz-date" in headers["Authorization"]
    assert set(headers) == {"Content-Type", "X-Amz-Date", "Authorization"}


@pytest.mark.parametrize(
    ("code", "status", "message", "kind"),
    [
        (
            "ResourceNotFoundException",
            404,
            "This model version has reached the end of its life. "
            "Please refer to the AWS documentation for more details.",
            ErrorKind.MODEL_GONE,
        ),
        (
            "ResourceNotFoundException",
            404,
            "Access denied. This Model is marked by provider as Legacy and you have not been actively using the model "
            "in the last 15 days. Please upgrade to an active model on Amazon Bedrock",
            ErrorKind.MODEL_GONE,
        ),
        # Any other 404 (an endpoint, a wrong base URL or path): not a reason to take the model out.
        ("ResourceNotFoundException", 404, "The requested resource could not be found.", ErrorKind.UPSTREAM_5XX),
        (None, 404, "Not Found", ErrorKind.UPSTREAM_5XX),
    ],
)
def test_only_a_404_that_says_the_model_is_gone_takes_it_out(
    code: str | None, status: int, message: str, kind: ErrorKind
) -> None:
    """Bedrock's 404 kinds, as quoted from the live service
    (docs/providers.md#02-what-a-retired-or-withdrawn-model-answers)."""
    assert error_kind(code, status, message) is kind
