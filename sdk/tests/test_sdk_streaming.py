"""Streams: SSE decoding, typed chunks, assembly of content and tool calls, usage, errors, closing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pydantic
import pytest
from sdk_fakes import FakeGateway, chunk, error_response, sse, text_stream, tool_call, tool_call_stream

import corral
from corral._streaming import SSEDecoder, SSEEvent

MESSAGES = [{"role": "user", "content": "Hi"}]


class Lookup(pydantic.BaseModel):
    sku: str
    quantity: int


def test_sse_decoder() -> None:
    decoder = SSEDecoder()
    lines = [": keep-alive", "event: message", 'data: {"a":', "data: 1}", "", "data: [DONE]\r", ""]
    events = [e for e in (decoder.feed(line) for line in lines) if e is not None]
    assert events == [SSEEvent('{"a":\n1}', "message"), SSEEvent("[DONE]")]
    assert decoder.feed("data: tail") is None
    assert decoder.flush() == SSEEvent("tail")


def test_stream_asks_for_usage_and_assembles_text(gateway: FakeGateway) -> None:
    stream = gateway.client().chat.completions.create(model="llama-4-scout", messages=MESSAGES, stream=True)
    body = gateway.sent_json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert gateway.requests[0].headers["accept"] == "text/event-stream"
    assert stream.corral.provider == "groq" and stream.corral.cost_usd == Decimal("0.000012345")
    chunks = list(stream)
    assert all(isinstance(c, corral.ChatCompletionChunk) for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert stream.text == "Hello from the fake gateway."
    assert stream.usage == corral.Usage(9, 4, 13)
    final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello from the fake gateway."
    assert final.choices[0].message.role == "assistant"
    assert final.choices[0].finish_reason == "stop"
    assert final.usage == stream.usage
    assert final.corral.provider == "groq"
    assert stream.response.is_closed


def test_stream_keeps_stream_options_given(gateway: FakeGateway) -> None:
    gateway.client().chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": False, "x": 1}
    ).close()
    assert gateway.sent_json()["stream_options"] == {"include_usage": True, "x": 1}


def test_tool_call_deltas_are_assembled_and_parsed(gateway: FakeGateway) -> None:
    calls = [
        tool_call("get_weather", {"city": "Oslo", "unit": "c"}, "call_a"),
        tool_call("Lookup", {"sku": "A-1", "quantity": 3}, "call_b"),
    ]
    gateway.push(sse(tool_call_stream(calls)))

    def get_weather(city: str, unit: str = "c") -> str:
        return f"{city}: 3 {unit}"

    stream = gateway.client().chat.completions.create(
        model="m", messages=MESSAGES, stream=True, tools=[get_weather, Lookup]
    )
    final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content is None
    assert message.tool_calls is not None
    assert [c.id for c in message.tool_calls] == ["call_a", "call_b"]
    first, second = message.tool_calls
    assert first.function.name == "get_weather"
    assert json.loads(first.function.arguments) == {"city": "Oslo", "unit": "c"}
    assert first.function.parsed_arguments == {"city": "Oslo", "unit": "c"}
    assert second.function.parsed_arguments == Lookup(sku="A-1", quantity=3)
    assert final.choices[0].finish_reason == "tool_calls"
    assert stream.usage == corral.Usage(20, 8, 28)


def test_repeated_and_split_names_and_ids() -> None:
    from corral._accumulate import ChunkAccumulator
    from corral.types.chunk import ChatCompletionChunk

    acc = ChunkAccumulator()
    deltas: list[dict[str, Any]] = [
        {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "get_", "arguments": '{"a"'}}]},
        {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "weather", "arguments": ": 1}"}}]},
        {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "other", "arguments": "{}"}}]},
        {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "other"}}]},
    ]
    for delta in deltas:
        acc.add(ChatCompletionChunk.from_dict(chunk(delta)))
    calls = acc.completion().choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("c1", "get_weather", '{"a": 1}'),
        ("c2", "other", "{}"),
    ]


def test_error_event_raises_typed_error_and_closes(gateway: FakeGateway) -> None:
    events: list[dict[str, Any] | str] = [
        *text_stream("partial")[:2],
        {
            "error": {
                "message": "all backends failed",
                "type": "upstream_error",
                "code": "upstream_failed",
                "attempts": [{"provider": "groq", "kind": "server_error"}],
            }
        },
    ]
    gateway.push(sse(events, done=False))
    stream = gateway.client().chat.completions.create(model="m", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(corral.UpstreamUnavailableError) as info:
        for item in stream:
            received.append(item)
    assert len(received) == 2
    assert info.value.providers_tried == ["groq"]
    assert info.value.status_code == 502
    assert stream.response.is_closed


def test_unknown_error_code_in_stream_is_an_api_error(gateway: FakeGateway) -> None:
    gateway.push(sse([{"error": {"message": "boom", "code": "weird"}}], done=False))
    stream = gateway.client().chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(corral.APIError, match="boom") as info:
        list(stream)
    assert type(info.value) is corral.APIError


def test_stream_that_ends_before_done_raises(gateway: FakeGateway) -> None:
    gateway.push(sse(text_stream("cut")[:2], done=False))
    stream = gateway.client().chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(corral.APIConnectionError, match="DONE"):
        list(stream)


def test_error_status_raises_before_a_stream_is_returned(gateway: FakeGateway) -> None:
    gateway.push(error_response(401, "invalid_api_key", type_="authentication_error"))
    with pytest.raises(corral.AuthenticationError):
        gateway.client().chat.completions.create(model="m", messages=MESSAGES, stream=True)


def test_closing_early_closes_the_response(gateway: FakeGateway) -> None:
    with gateway.client().chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        next(iter(stream))
    assert stream.response.is_closed


@pytest.mark.parametrize("key", ["x_corral", "corral"])
def test_final_chunk_brings_the_exact_cost(gateway: FakeGateway, key: str) -> None:
    events = [
        *text_stream("hi")[:-1],
        {
            **chunk(choices=False, usage={"prompt_tokens": 1, "completion_tokens": 1}),
            key: {"cost_usd": "0.0000001234", "provider": "groq"},
        },
    ]
    gateway.push(sse(events, headers={"x-corral-cost-usd": "0.00002", "x-corral-cost-estimated": "true"}))
    stream = gateway.client().chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert stream.corral.cost_estimated and stream.corral.cost_usd == Decimal("0.00002")
    final = stream.get_final_completion()
    assert final.corral.cost_usd == Decimal("0.0000001234") and not final.corral.cost_estimated
    assert stream.corral == final.corral
    assert final.corral.provider == "groq" and final.corral.attempts == 1


def test_transport_error_mid_stream_is_a_connection_error() -> None:
    class Broken(httpx.SyncByteStream):
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield b'data: {"id":"1","choices":[]}\n\n'
            raise httpx.RemoteProtocolError("peer closed connection")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Broken(), headers={"content-type": "text/event-stream"})

    client = corral.Corral(
        api_key="k", base_url="http://gw", http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(corral.APIConnectionError):
        list(stream)


async def test_async_stream(gateway: FakeGateway) -> None:
    calls = [tool_call("Lookup", {"sku": "B-2", "quantity": 1})]
    gateway.push(sse(tool_call_stream(calls)))
    async with gateway.async_client() as client:
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        async with stream:
            deltas = [c async for c in stream]
        assert deltas and stream.done
        final = await stream.get_final_completion()
        # no tools declared: any JSON object still parses, into a dict
        assert (final.choices[0].message.tool_calls or [])[0].function.parsed_arguments == {
            "sku": "B-2",
            "quantity": 1,
        }
        stream2 = await client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, tools=[Lookup]
        )
        final2 = await stream2.get_final_completion()
    bad = (final2.choices[0].message.tool_calls or [])[0].function  # the fake sent {} for Lookup
    assert bad.parsed_arguments is None
    assert bad.parse_error is not None and "sku" in bad.parse_error
    assert stream2.usage is not None and stream2.response.is_closed
