"""BedrockFake is faithful: botocore's own bedrock-runtime client consumes it, its frames
decode with botocore's decoder, and it refuses what Bedrock refuses."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import botocore.session
import jsonschema  # type: ignore[import-untyped,unused-ignore]
import orjson
import pytest
from botocore.config import Config
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from gateway.fakes.bedrock.checks import BedrockRejection, validate_converse
from gateway.fakes.bedrock.eventstream import encode_message, error_frame, event_frame, exception_frame
from gateway.fakes.bedrock.server import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    BedrockFake,
    known_model_ids,
    plan_answer,
)
from gateway.fakes.script import Behaviour
from gateway.fakes.server import running_in_thread

SCOUT = "us.meta.llama4-scout-17b-instruct-v1:0"
HELLO = [{"role": "user", "content": [{"text": "Hello"}]}]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city", "unit"],
}
TOOLS = {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather", "inputSchema": {"json": SCHEMA}}}]}


def client(
    url: str, *, secret: str = TEST_SECRET_ACCESS_KEY, key: str = TEST_ACCESS_KEY_ID, token: str | None = None
) -> Any:
    return botocore.session.get_session().create_client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[BedrockFake, Any]]:
    fake = BedrockFake()
    with running_in_thread(fake) as (url,):
        yield fake, client(url)


@pytest.fixture
def bedrock(served: tuple[BedrockFake, Any]) -> Iterator[tuple[BedrockFake, Any]]:
    fake, _ = served
    fake.script.clear()
    fake.stream_tools = False
    yield served
    fake.script.clear()


def events(response: dict[str, Any]) -> list[dict[str, Any]]:
    return list(response["stream"])


# --- event-stream framing -----------------------------------------------------------------


def test_frames_decode_with_botocore() -> None:
    frames = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "héllo"}})
    frames += exception_frame("throttlingException", {"message": "slow down"})
    frames += encode_message({":message-type": "event", ":event-type": "messageStop"}, b'{"stopReason":"end_turn"}')
    frames += error_frame("InternalFailure", "boom")
    buffer = EventStreamBuffer()
    for i in range(0, len(frames), 7):
        buffer.add_data(frames[i : i + 7])
    decoded = list(buffer)
    assert [m.headers[":message-type"] for m in decoded] == ["event", "exception", "event", "error"]
    assert decoded[0].headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert decoded[0].payload.decode() == '{"contentBlockIndex":0,"delta":{"text":"héllo"}}'
    assert decoded[1].headers[":exception-type"] == "throttlingException"
    assert decoded[3].headers[":error-code"] == "InternalFailure" and decoded[3].payload == b""


def test_corrupt_frame_fails_the_crc() -> None:
    frame = bytearray(event_frame("messageStart", {"role": "assistant"}))
    frame[-6] ^= 0xFF
    buffer = EventStreamBuffer()
    buffer.add_data(bytes(frame))
    with pytest.raises(ChecksumMismatch):
        list(buffer)


# --- botocore's client against the fake ---------------------------------------------------


def test_converse_text(bedrock: tuple[BedrockFake, Any]) -> None:
    fake, bedrock_client = bedrock
    fake.script.push(Behaviour(text="Hello from the fake."))
    answer = bedrock_client.converse(
        modelId=SCOUT,
        messages=HELLO,
        system=[{"text": "Be kind."}],
        inferenceConfig={"maxTokens": 64, "temperature": 0.5},
    )
    assert answer["output"]["message"] == {"role": "assistant", "content": [{"text": "Hello from the fake."}]}
    assert answer["stopReason"] == "end_turn"
    assert answer["usage"]["outputTokens"] == 4
    assert answer["usage"]["totalTokens"] == answer["usage"]["inputTokens"] + 4
    assert answer["ResponseMetadata"]["RequestId"]
    assert fake.requests[-1].path == "/model/us.meta.llama4-scout-17b-instruct-v1%3A0/converse"


def test_directive_in_converse_body(bedrock: tuple[BedrockFake, Any]) -> None:
    _, bedrock_client = bedrock
    messages = [{"role": "user", "content": [{"text": 'hi [[fake: {"text": "directed"}]]'}]}]
    answer = bedrock_client.converse(modelId="meta.llama4-maverick-17b-instruct-v1:0", messages=messages)
    assert answer["output"]["message"]["content"] == [{"text": "directed"}]


def test_converse_tool_use(bedrock: tuple[BedrockFake, Any]) -> None:
    _, bedrock_client = bedrock
    answer = bedrock_client.converse(modelId=SCOUT, messages=HELLO, toolConfig={**TOOLS, "toolChoice": {"auto": {}}})
    assert answer["stopReason"] == "tool_use"
    (block,) = answer["output"]["message"]["content"]
    assert block["toolUse"]["name"] == "get_weather" and block["toolUse"]["toolUseId"].startswith("tooluse_")
    jsonschema.validate(block["toolUse"]["input"], SCHEMA)


@pytest.mark.parametrize("forced", [{"any": {}}, {"tool": {"name": "get_weather"}}])
def test_llama_4_refuses_forced_tool_choice(bedrock: tuple[BedrockFake, Any], forced: dict[str, Any]) -> None:
    """The live service's refusal, quoted in public issues (docs/providers.md#69-llama-4-tool-use-on-bedrock)."""
    _, bedrock_client = bedrock
    field = next(iter(forced))
    with pytest.raises(ClientError) as caught:
        bedrock_client.converse(modelId=SCOUT, messages=HELLO, toolConfig={**TOOLS, "toolChoice": forced})
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        f"This model doesn't support the toolConfig.toolChoice.{field} field. "
        f"Remove toolConfig.toolChoice.{field} and try again."
    )


def test_converse_after_tool_result_answers_in_text(bedrock: tuple[BedrockFake, Any]) -> None:
    _, bedrock_client = bedrock
    messages = [
        *HELLO,
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris", "unit": "c"}}}
            ],
        },
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"temp": 18}}]}}]},
    ]
    answer = bedrock_client.converse(modelId=SCOUT, messages=messages, toolConfig=TOOLS)
    assert answer["stopReason"] == "end_turn" and "text" in answer["output"]["message"]["content"][0]


def test_converse_with_image(bedrock: tuple[BedrockFake, Any]) -> None:
    fake, bedrock_client = bedrock
    image = b"\x89PNG\r\n\x1a\n" + bytes(32)
    messages = [
        {"role": "user", "content": [{"text": "what?"}, {"image": {"format": "png", "source": {"bytes": image}}}]}
    ]
    bedrock_client.converse(modelId=SCOUT, messages=messages)
    sent = fake.requests[-1].json["messages"][0]["content"][1]["image"]["source"]["bytes"]
    assert base64.b64decode(sent) == image


def test_converse_stream_text(bedrock: tuple[BedrockFake, Any]) -> None:
    fake, bedrock_client = bedrock
    fake.script.push(Behaviour(text="one two three"))
    received = events(bedrock_client.converse_stream(modelId=SCOUT, messages=HELLO))
    assert received[0] == {"messageStart": {"role": "assistant"}}
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in received if "contentBlockDelta" in e)
    assert text == "one two three"
    assert {"messageStop": {"stopReason": "end_turn"}} in received
    assert received[-1]["metadata"]["usage"]["outputTokens"] == 3


def test_converse_stream_tool_use(bedrock: tuple[BedrockFake, Any]) -> None:
    fake, bedrock_client = bedrock
    with pytest.raises(ClientError) as refused:
        bedrock_client.converse_stream(modelId=SCOUT, messages=HELLO, toolConfig=TOOLS)
    assert refused.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "This model doesn't support tool use in streaming mode.",
    }
    fake.stream_tools = True
    received = events(bedrock_client.converse_stream(modelId=SCOUT, messages=HELLO, toolConfig=TOOLS))
    start = next(e["contentBlockStart"] for e in received if "contentBlockStart" in e)
    assert start["start"]["toolUse"]["name"] == "get_weather"
    fragments = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in received if "contentBlockDelta" in e]
    assert len(fragments) > 1
    jsonschema.validate(orjson.loads("".join(fragments)), SCHEMA)
    assert {"messageStop": {"stopReason": "tool_use"}} in received


@pytest.mark.parametrize(
    ("error", "code"), [("rate_limited", "throttlingException"), (None, "modelStreamErrorException")]
)
def test_converse_stream_mid_stream_exception(bedrock: tuple[BedrockFake, Any], error: Any, code: str) -> None:
    fake, bedrock_client = bedrock
    fake.script.push(Behaviour(completion_tokens=10, mid_stream_error_after=2, error=error))
    stream = bedrock_client.converse_stream(modelId=SCOUT, messages=HELLO)["stream"]
    seen = []
    with pytest.raises(EventStreamError) as caught:
        for event in stream:
            seen.append(event)
    assert caught.value.response["Error"]["Code"] == code
    assert len([e for e in seen if "contentBlockDelta" in e]) == 2


@pytest.mark.parametrize(
    ("error", "status", "code", "message"),
    [
        ("rate_limited", 429, "ThrottlingException", "Too many requests, please wait before trying again."),
        ("overloaded", 503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
        ("server_error", 500, "InternalServerException", None),
        ("bad_request", 400, "ValidationException", None),
        ("auth", 403, "AccessDeniedException", None),
        ("context_too_long", 400, "ValidationException", "Input is too long for requested model."),
        ("model_gone", 404, "ResourceNotFoundException", None),
    ],
)
def test_error_behaviours(
    bedrock: tuple[BedrockFake, Any], error: Any, status: int, code: str, message: str | None
) -> None:
    fake, bedrock_client = bedrock
    fake.script.push(Behaviour(error=error))
    with pytest.raises(ClientError) as caught:
        bedrock_client.converse(modelId=SCOUT, messages=HELLO)
    response = caught.value.response
    assert response["Error"]["Code"] == code and response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert message is None or response["Error"]["Message"] == message


def test_unknown_model_id(bedrock: tuple[BedrockFake, Any]) -> None:
    _, bedrock_client = bedrock
    with pytest.raises(ClientError) as caught:
        bedrock_client.converse(modelId="meta.llama2-13b-chat-v1", messages=HELLO)
    assert caught.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "The provided model identifier is invalid.",
    }


@pytest.mark.parametrize(
    ("key", "secret", "code"),
    [
        (TEST_ACCESS_KEY_ID, "wrong-secret", "InvalidSignatureException"),
        ("AKIDNOTKNOWN0000000", TEST_SECRET_ACCESS_KEY, "UnrecognizedClientException"),
    ],
)
def test_bad_credentials(served: tuple[BedrockFake, Any], key: str, secret: str, code: str) -> None:
    _, good = served
    with pytest.raises(ClientError) as caught:
        client(good.meta.endpoint_url, key=key, secret=secret).converse(modelId=SCOUT, messages=HELLO)
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_stale_signature(served: tuple[BedrockFake, Any]) -> None:
    _, bedrock_client = served
    stale = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=6)
    with mock.patch("botocore.auth.get_current_datetime", return_value=stale), pytest.raises(ClientError) as caught:
        bedrock_client.converse(modelId=SCOUT, messages=HELLO)
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidSignatureException" and error["Message"].startswith("Signature expired: ")


def test_session_token_checked() -> None:
    fake = BedrockFake(session_token="session-abc")
    with running_in_thread(fake) as (url,):
        assert client(url, token="session-abc").converse(modelId=SCOUT, messages=HELLO)["stopReason"] == "end_turn"
        with pytest.raises(ClientError) as caught:
            client(url, token="session-other").converse(modelId=SCOUT, messages=HELLO)
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_known_model_ids_cover_profiles_and_in_region_ids() -> None:
    assert {
        SCOUT,
        "meta.llama4-scout-17b-instruct-v1:0",
        "us.meta.llama4-maverick-17b-instruct-v1:0",
        "meta.llama4-maverick-17b-instruct-v1:0",
    } <= known_model_ids()


# --- validation (pure) --------------------------------------------------------------------


def converse(**fields: Any) -> dict[str, Any]:
    return {"messages": HELLO, **fields}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"messages": []}, "must start with a user message"),
        (converse(messages=[{"role": "system", "content": [{"text": "x"}]}]), "enum value set: [user, assistant]"),
        (converse(messages=[{"role": "user", "content": []}]), "is empty"),
        (converse(messages=[{"role": "assistant", "content": [{"text": "x"}]}]), "must start with a user message"),
        (converse(messages=[*HELLO, *HELLO]), "must alternate"),
        (converse(messages=[{"role": "user", "content": [{"text": "  "}]}]), "is blank"),
        (converse(messages=[{"role": "user", "content": [{"text": "a", "image": {}}]}]), "exactly one member"),
        (converse(inferenceConfig={"temperature": 1.5}), "less than or equal to 1"),
        (converse(inferenceConfig={"topP": -0.1}), "greater than or equal to 0"),
        (converse(inferenceConfig={"maxTokens": 0}), "greater than or equal to 1"),
        (
            converse(
                toolConfig={"tools": [{"toolSpec": {"name": "bad name", "inputSchema": {"json": {"type": "object"}}}}]}
            ),
            "regular expression pattern",
        ),
        (
            converse(toolConfig={"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "array"}}}}]}),
            "must be one of the following: object",
        ),
        (converse(toolConfig={**TOOLS, "toolChoice": {"tool": {"name": "other"}}}), "not in toolConfig.tools"),
        (
            converse(
                messages=[
                    *HELLO,
                    {
                        "role": "assistant",
                        "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {}}}],
                    },
                ]
            ),
            "toolConfig field must be",
        ),
        (
            converse(
                messages=[{"role": "user", "content": [{"image": {"format": "bmp", "source": {"bytes": "AA=="}}}]}]
            ),
            "png, jpeg, gif, webp",
        ),
        (
            converse(messages=[{"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": "%%"}}}]}]),
            "could not be decoded",
        ),
    ],
)
def test_validation_errors(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(BedrockRejection) as caught:
        validate_converse(body, streaming=False, stream_tools=False)
    assert caught.value.status == 400 and caught.value.code == "ValidationException"
    assert fragment in caught.value.message


def test_valid_bodies_pass() -> None:
    validate_converse(
        converse(
            toolConfig={**TOOLS, "toolChoice": {"auto": {}}},
            inferenceConfig={"temperature": 1, "topP": 0, "maxTokens": 1},
        ),
        streaming=False,
        stream_tools=False,
    )
    validate_converse(converse(toolConfig=TOOLS), streaming=True, stream_tools=True)


# --- answers (pure) -----------------------------------------------------------------------


def test_plan_answer_limits_and_stops() -> None:
    long = plan_answer(converse(inferenceConfig={"maxTokens": 3}), Behaviour(completion_tokens=10), seed=1)
    assert (long.stop_reason, len(long.text_tokens)) == ("max_tokens", 3)
    stopped = plan_answer(converse(inferenceConfig={"stopSequences": ["END"]}), Behaviour(text="a b END c"), seed=1)
    assert (stopped.stop_reason, "".join(stopped.text_tokens)) == ("stop_sequence", "a b ")


@pytest.mark.parametrize(("tool_args", "valid"), [("valid", True), ("schema_invalid", False)])
def test_plan_answer_tool_args(tool_args: Any, valid: bool) -> None:
    answer = plan_answer(
        converse(toolConfig={**TOOLS, "toolChoice": {"any": {}}}), Behaviour(tool_args=tool_args), seed=3
    )
    (tool,) = answer.tool_uses
    assert answer.stop_reason == "tool_use"
    assert jsonschema.Draft202012Validator(SCHEMA).is_valid(tool["input"]) is valid


def test_plan_answer_malformed_tool_use() -> None:
    answer = plan_answer(
        converse(toolConfig={**TOOLS, "toolChoice": {"any": {}}}), Behaviour(tool_args="malformed"), seed=3
    )
    assert answer.stop_reason == "malformed_tool_use" and answer.tool_uses == [] and answer.text_tokens
