"""Pure OpenAI <-> Converse translation and Bedrock error mapping (no network)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gateway.catalogue.deployments import Deployment, load_catalogue
from gateway.providers.bedrock.adapter import clean_message, error_code, error_kind, http_error, stream_error
from gateway.providers.bedrock.mapping import (
    FINISH_REASONS,
    PARAMETERS,
    Handling,
    StreamTranslator,
    UnsupportedRequest,
    convert_tools,
    from_converse,
    image_block,
    inference_config,
    to_converse,
    tool_use_id,
    usage_from_converse,
)
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.schema.chat import ChatCompletionRequest
from gateway.schema.usage import Usage

DEPLOYMENT: Deployment = next(d for d in load_catalogue().deployments("llama-4-scout") if d.provider == "bedrock")
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-png").decode()
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def body(**fields: Any) -> dict[str, Any]:
    """A validated OpenAI body (defaults: one user turn)."""
    raw = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "hi"}], **fields}
    ChatCompletionRequest.model_validate(raw)
    return raw


def image_message(url: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}


def reason(raw: dict[str, Any]) -> str | None:
    try:
        to_converse(raw, DEPLOYMENT)
    except UnsupportedRequest as exc:
        return str(exc)
    return None


def test_parameters_table_covers_every_openai_field() -> None:
    assert set(PARAMETERS) == set(ChatCompletionRequest.model_fields)
    assert {p.handling for p in PARAMETERS.values()} == set(Handling)
    assert all(p.check is not None for p in PARAMETERS.values() if p.handling is Handling.UNSUPPORTED)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}, "response_format"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"presence_penalty": -1.0}, "presence_penalty"),
        ({"temperature": 1.3}, "temperature"),
        ({"max_tokens": 100_000}, "max_output_tokens"),
        ({"max_completion_tokens": 9000}, "max_output_tokens"),
        ({"messages": [image_message("https://x/a.png")]}, "cannot fetch image URLs"),
        ({"messages": [image_message("data:image/svg+xml;base64,AA==")]}, "png/jpeg/gif/webp"),
        ({"messages": [image_message("data:image/png,raw")]}, "base64"),
        ({"messages": [{"role": "assistant", "content": "I start"}, {"role": "user", "content": "hi"}]}, "user turn"),
        ({"messages": [{"role": "system", "content": "only system"}]}, "user turn"),
    ],
)
def test_unsupported_requests(fields: dict[str, Any], fragment: str) -> None:
    found = reason(body(**fields))
    assert found is not None and fragment in found


def tool_history(**fields: Any) -> dict[str, Any]:
    messages = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ]
    return body(messages=messages, **fields)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"tools": [WEATHER], "tool_choice": "none"}, "toolConfig"),
        ({}, "toolConfig"),
    ],
)
def test_tool_history_needs_tool_config(fields: dict[str, Any], fragment: str) -> None:
    found = reason(tool_history(**fields))
    assert found is not None and fragment in found


def test_tool_call_arguments_must_be_an_object() -> None:
    raw = tool_history(tools=[WEATHER])
    raw["messages"][1]["tool_calls"][0]["function"]["arguments"] = "[1, 2]"
    assert "JSON object" in (reason(raw) or "")


@pytest.mark.parametrize(
    "fields",
    [
        {"response_format": {"type": "text"}},
        {"logprobs": False},
        {"temperature": 1.0},
        {"frequency_penalty": 0},
        {"n": 1},
        {"seed": 7, "user": "u1", "metadata": {"k": "v"}, "store": False, "service_tier": "auto"},
        {"parallel_tool_calls": False, "tools": [WEATHER]},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"max_tokens": 8000},
    ],
)
def test_supported_or_harmlessly_dropped(fields: dict[str, Any]) -> None:
    assert reason(body(**fields)) is None


def test_full_translation() -> None:
    raw = body(
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "and this"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {"id": "call 2!", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call 2!", "content": ""},
            {"role": "user", "content": "thanks"},
        ],
        tools=[WEATHER],
        tool_choice="auto",
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=100,
        max_tokens=50,
        stop="END",
        seed=1,
    )
    odd_id = tool_use_id("call 2!")
    assert to_converse(raw, DEPLOYMENT) == {
        "system": [{"text": "Be terse."}, {"text": "Use metric."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "weather in Paris and Rome?"},
                    {"text": "and this"},
                    {"image": {"format": "png", "source": {"bytes": PNG}}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"text": "Checking."},
                    {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
                    {"toolUse": {"toolUseId": odd_id, "name": "get_weather", "input": {}}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "call_1", "content": [{"text": "18C"}]}},
                    {"toolResult": {"toolUseId": odd_id, "content": []}},
                    {"text": "thanks"},
                ],
            },
        ],
        "inferenceConfig": {"maxTokens": 100, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Weather for a city",
                        "inputSchema": {"json": WEATHER["function"]["parameters"]},
                    }
                }
            ],
            "toolChoice": {"auto": {}},
        },
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any] | None) -> None:
    config = convert_tools([WEATHER], choice, has_tool_blocks=False)
    assert config is not None
    assert config.get("toolChoice") == expected


def test_tool_choice_none_omits_tool_config() -> None:
    assert convert_tools([WEATHER], "none", has_tool_blocks=False) is None
    assert convert_tools(None, None, has_tool_blocks=False) is None


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    config = convert_tools([{"type": "function", "function": {"name": "now"}}], None, has_tool_blocks=False)
    assert config == {
        "tools": [{"toolSpec": {"name": "now", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {"maxTokens": DEPLOYMENT.max_output_tokens}),
        ({"max_tokens": 10}, {"maxTokens": 10}),
        ({"max_tokens": 10, "max_completion_tokens": 20}, {"maxTokens": 20}),
        ({"stop": ["a", "", "b"]}, {"maxTokens": DEPLOYMENT.max_output_tokens, "stopSequences": ["a", "b"]}),
        ({"temperature": 0, "top_p": 1}, {"maxTokens": DEPLOYMENT.max_output_tokens, "temperature": 0, "topP": 1}),
    ],
)
def test_inference_config(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    assert inference_config(body(**fields), DEPLOYMENT) == expected


@pytest.mark.parametrize(
    ("mime", "fmt"),
    [("image/png", "png"), ("image/jpeg", "jpeg"), ("image/jpg", "jpeg"), ("image/gif", "gif"), ("IMAGE/WEBP", "webp")],
)
def test_image_formats(mime: str, fmt: str) -> None:
    block = image_block(f"data:{mime};base64,{PNG[:8]}\n{PNG[8:]}")
    assert block == {"image": {"format": fmt, "source": {"bytes": PNG}}}


def test_tool_use_ids_keep_valid_and_derive_stable_ones() -> None:
    assert tool_use_id("call_abc.1:2-3") == "call_abc.1:2-3"
    derived = tool_use_id("x" * 80)
    assert derived == tool_use_id("x" * 80) and len(derived) <= 64 and derived != tool_use_id("y" * 80)


# --- answers ------------------------------------------------------------------------------


def converse_answer(content: list[dict[str, Any]], stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15, **usage},
        "metrics": {"latencyMs": 3},
    }


def test_from_converse_text() -> None:
    raw = converse_answer([{"text": "Hello "}, {"text": "world"}])
    out, usage = from_converse(raw, completion_id="chatcmpl-r1", model="m", created=7)
    assert out == {
        "id": "chatcmpl-r1",
        "object": "chat.completion",
        "created": 7,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    assert usage == Usage(10, 5)


def test_from_converse_tool_use() -> None:
    raw = converse_answer(
        [{"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}], "tool_use"
    )
    out, _ = from_converse(raw, completion_id="c", model="m", created=1)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "tooluse_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }


def test_cache_tokens_count_as_prompt_tokens() -> None:
    usage = usage_from_converse(
        {
            "inputTokens": 10,
            "outputTokens": 2,
            "totalTokens": 42,
            "cacheReadInputTokens": 25,
            "cacheWriteInputTokens": 5,
        }
    )
    assert usage == Usage(prompt_tokens=40, completion_tokens=2, cached_tokens=25)


@pytest.mark.parametrize(("stop", "finish"), [(k, v) for k, v in FINISH_REASONS.items() if v] + [("new", "stop")])
def test_finish_reasons(stop: str, finish: str) -> None:
    out, _ = from_converse(converse_answer([{"text": "x"}], stop), completion_id="c", model="m", created=1)
    assert out["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(
    "raw",
    [
        converse_answer([{"text": "x"}], "malformed_model_output"),
        converse_answer([{"text": "x"}], "malformed_tool_use"),
        {"output": {}},
        {**converse_answer([]), "usage": None},
        {**converse_answer([]), "usage": {"inputTokens": "ten", "outputTokens": 1}},
        ["not", "a", "dict"],
    ],
)
def test_malformed_answers(raw: Any) -> None:
    with pytest.raises(UpstreamError) as caught:
        from_converse(raw, completion_id="c", model="m", created=1)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE and caught.value.provider == "bedrock"


def test_stream_translator() -> None:
    translator = StreamTranslator(chunk_id="chatcmpl-s", created=5, model="m")
    events: list[tuple[str, dict[str, Any]]] = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"a":'}}}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}}),
        ("contentBlockStart", {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "t2", "name": "g"}}}),
        ("messageStop", {"stopReason": "tool_use"}),
        ("metadata", {"usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}, "metrics": {"latencyMs": 1}}),
    ]
    deltas = [c["choices"][0]["delta"] for c in (translator.event(t, p) for t, p in events) if c is not None]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
        {"tool_calls": [{"index": 0, "id": "t1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
        {"tool_calls": [{"index": 1, "id": "t2", "type": "function", "function": {"name": "g", "arguments": ""}}]},
        {},
    ]
    assert translator.finish_reason == "tool_calls" and translator.stopped
    assert translator.usage == Usage(3, 4)
    last = translator.chunk({}, "stop")
    assert last["id"] == "chatcmpl-s" and last["object"] == "chat.completion.chunk" and last["model"] == "m"


def test_stream_translator_rejects_orphan_tool_input() -> None:
    translator = StreamTranslator(chunk_id="c", created=1, model="m")
    with pytest.raises(UpstreamError):
        translator.event("contentBlockDelta", {"contentBlockIndex": 4, "delta": {"toolUse": {"input": "{"}}})


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "message", "kind"),
    [
        ("ThrottlingException", 429, "Too many requests", ErrorKind.RATE_LIMITED),
        ("ModelNotReadyException", 429, "not ready", ErrorKind.OVERLOADED),
        ("ServiceUnavailableException", 503, "unable", ErrorKind.OVERLOADED),
        ("InternalServerException", 500, "oops", ErrorKind.UPSTREAM_5XX),
        ("ModelErrorException", 424, "model failed", ErrorKind.UPSTREAM_5XX),
        ("ModelTimeoutException", 408, "slow", ErrorKind.TIMEOUT),
        ("ValidationException", 400, "Malformed input request", ErrorKind.BAD_REQUEST),
        ("ValidationException", 400, "Input is too long for requested model.", ErrorKind.CONTEXT_TOO_LONG),
        (
            "ValidationException",
            400,
            "The model returned the following errors: Input is too long for requested model.",
            ErrorKind.CONTEXT_TOO_LONG,
        ),
        ("ValidationException", 400, "The provided model identifier is invalid.", ErrorKind.MODEL_GONE),
        ("AccessDeniedException", 403, "no access", ErrorKind.AUTH),
        ("UnrecognizedClientException", 403, "bad token", ErrorKind.AUTH),
        ("InvalidSignatureException", 403, "bad signature", ErrorKind.AUTH),
        ("ResourceNotFoundException", 404, "end of its life", ErrorKind.MODEL_GONE),
        ("throttlingException", None, "stream throttled", ErrorKind.RATE_LIMITED),
        ("modelStreamErrorException", None, "stream broke", ErrorKind.UPSTREAM_5XX),
        ("serviceUnavailableException", None, "busy", ErrorKind.OVERLOADED),
        ("internalServerException", None, "oops", ErrorKind.UPSTREAM_5XX),
        ("validationException", None, "bad", ErrorKind.BAD_REQUEST),
        (None, 502, "", ErrorKind.UPSTREAM_5XX),
        (None, 429, "", ErrorKind.RATE_LIMITED),
        ("SomethingNewException", 418, "", ErrorKind.BAD_REQUEST),
        (None, 401, "", ErrorKind.AUTH),
    ],
)
def test_error_kinds(code: str | None, status: int | None, message: str, kind: ErrorKind) -> None:
    assert error_kind(code, status, message) is kind


@pytest.mark.parametrize(
    ("headers", "payload", "code"),
    [
        (
            {"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"},
            None,
            "ThrottlingException",
        ),
        ({}, {"__type": "com.amazon.coral.validate#ValidationException", "message": "m"}, "ValidationException"),
        ({}, {"code": "AccessDeniedException"}, "AccessDeniedException"),
        ({}, {"message": "no code"}, None),
    ],
)
def test_error_code(headers: dict[str, str], payload: Any, code: str | None) -> None:
    assert error_code(headers, payload) == code


def test_http_error_reads_message_and_retry_after() -> None:
    error = http_error(
        429,
        {"x-amzn-ErrorType": "ThrottlingException:x", "Retry-After": "3"},
        b'{"message": "Too many requests, please wait before trying again."}',
    )
    assert error.kind is ErrorKind.RATE_LIMITED and error.status == 429 and error.retry_after == 3.0
    assert error.code == "ThrottlingException" and "Too many requests" in error.message


def test_errors_never_echo_credentials() -> None:
    raw = (
        b'{"Message": "The request signature we calculated does not match. The Canonical String for this request '
        b'should have been POST /model x-amz-security-token:SESSIONTOKEN AKIDSECRET"}'
    )
    error = http_error(403, {"x-amzn-ErrorType": "InvalidSignatureException"}, raw, ("AKIDSECRET", "SESSIONTOKEN"))
    assert "SESSIONTOKEN" not in error.message and "Canonical" not in error.message
    assert clean_message("key AKIDSECRET leaked", ["AKIDSECRET"]) == "key *** leaked"
    streamed = stream_error("validationException", {"message": "AKIDSECRET"}, ["AKIDSECRET"])
    assert "AKIDSECRET" not in streamed.message


def test_non_json_error_body() -> None:
    error = http_error(502, {}, b"<html>bad gateway</html>")
    assert error.kind is ErrorKind.UPSTREAM_5XX and error.status == 502
