"""Every OpenAI-dialect fake's answers, whole and streamed, with and without tool calls,
parsed by the provider's own SDK types (groq, together; the openai package for the
OpenAI-compatible servers): a fake that drifts toward our adapter and away from the
provider's documented shapes fails here, not in production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai.types.chat as openai_types
import pytest
from groq.types.chat import ChatCompletion as GroqCompletion
from groq.types.chat import ChatCompletionChunk as GroqChunk
from pydantic import BaseModel
from together.types.chat.chat_completion import ChatCompletion as TogetherCompletion
from together.types.chat.chat_completion_chunk import ChatCompletionChunk as TogetherChunk

from gateway.fakes.openai.base import OpenAICompatFake
from gateway.fakes.registry import make_fake
from tests.fakes import CHAT_PATHS, WEATHER_TOOL, sse_payloads

#: provider -> (whole answer type, stream chunk type), from the provider's own SDK.
TYPES: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "groq": (GroqCompletion, GroqChunk),
    "together": (TogetherCompletion, TogetherChunk),
    "deepinfra": (openai_types.ChatCompletion, openai_types.ChatCompletionChunk),
    "fireworks": (openai_types.ChatCompletion, openai_types.ChatCompletionChunk),
    "vllm": (openai_types.ChatCompletion, openai_types.ChatCompletionChunk),
    "sglang": (openai_types.ChatCompletion, openai_types.ChatCompletionChunk),
    "ollama": (openai_types.ChatCompletion, openai_types.ChatCompletionChunk),
}


@pytest.fixture(params=sorted(TYPES))
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[OpenAICompatFake]:
    server = make_fake(request.param)
    assert isinstance(server, OpenAICompatFake)
    await server.start()
    yield server
    await server.stop()


def _chat(fake: OpenAICompatFake, **extra: Any) -> dict[str, Any]:
    model = next(iter(fake.models))
    return {"model": model, "messages": [{"role": "user", "content": "What's the weather in Paris?"}], **extra}


async def _post(fake: OpenAICompatFake, body: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {fake.api_key}"} if fake.api_key else {}
    async with httpx.AsyncClient(headers=headers, timeout=10) as http:
        response = await http.post(fake.url + CHAT_PATHS.get(fake.provider, "/v1/chat/completions"), json=body)
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize("tools", [False, True])
async def test_whole_answers_parse_as_the_providers_type(fake: OpenAICompatFake, tools: bool) -> None:
    body = _chat(fake, **({"tools": [WEATHER_TOOL], "tool_choice": "required"} if tools else {}))
    whole, _ = TYPES[fake.provider]
    parsed: Any = whole.model_validate((await _post(fake, body)).json())
    message = parsed.choices[0].message
    if tools:
        assert message.tool_calls and message.tool_calls[0].function.name == "get_weather"
    else:
        assert message.content


@pytest.mark.parametrize("tools", [False, True])
async def test_stream_chunks_parse_as_the_providers_type(fake: OpenAICompatFake, tools: bool) -> None:
    extra = {"tools": [WEATHER_TOOL], "tool_choice": "required"} if tools else {}
    body = _chat(fake, stream=True, stream_options={"include_usage": True}, **extra)
    _, chunk_type = TYPES[fake.provider]
    payloads = sse_payloads((await _post(fake, body)).text)
    assert payloads[-1] == "[DONE]"
    chunks: list[Any] = [chunk_type.model_validate(p) for p in payloads[:-1]]
    deltas = [d for c in chunks for choice in c.choices for d in (choice.delta.tool_calls or ())]
    if tools:
        assert deltas and deltas[0].function.name == "get_weather"
    else:
        assert not deltas
