"""The clients people use, against the running gateway on its fakes: LangChain's ChatOpenAI,
pydantic-ai, and the OpenAI Agents SDK (over /v1/responses), with the route pinned to
each backend that can serve the call. Each asserts on what the client got and on what
the pinned fake received."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

from tests.api.conftest import SimulatedGateway

#: Backends that serve Maverick with tools in the simulated gateway.
TOOL_BACKENDS = ["deepinfra", "fireworks", "bedrock", "vllm"]
#: Those that also serve a forced tool choice (Llama 4 on Bedrock takes `auto` only:
#: docs/providers.md#69-llama-4-tool-use-on-bedrock).
FORCED_CHOICE_BACKENDS = [b for b in TOOL_BACKENDS if b != "bedrock"]
MODEL = "llama-4-maverick"


def only(provider: str) -> dict[str, Any]:
    return {"corral": {"providers": {"only": [provider]}}}


def received(gateway: SimulatedGateway, provider: str) -> list[dict[str, Any]]:
    return [r.json for r in gateway.requests(provider) if isinstance(r.json, dict)]


class Weather(BaseModel):
    """Current weather for a city."""

    city: str


class Person(BaseModel):
    name: str
    age: int


def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: The city's name.
    """
    return f"18C and sunny in {city}"


# ---------------------------------------------------------------------------------- LangChain


@pytest.mark.parametrize("provider", FORCED_CHOICE_BACKENDS)
def test_langchain_chat_tools_and_stream(gateway: SimulatedGateway, provider: str) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model=MODEL, base_url=gateway.url + "/v1", api_key="unused", max_retries=0, extra_body=only(provider)
    )
    assert llm.invoke("Hello there").content
    assert "".join(str(chunk.content) for chunk in llm.stream("Tell me a story"))
    message = llm.bind_tools([Weather], tool_choice="Weather").invoke("Weather in Paris?")
    (call,) = message.tool_calls  # type: ignore[attr-defined]
    assert call["name"] == "Weather" and isinstance(call["args"]["city"], str)
    assert len(received(gateway, provider)) == 3


@pytest.mark.parametrize("provider", ["deepinfra", "fireworks", "vllm"])
def test_langchain_structured_output_with_function_calling(gateway: SimulatedGateway, provider: str) -> None:
    """LangChain's function-calling structured output sends `parallel_tool_calls: false`."""
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model=MODEL, base_url=gateway.url + "/v1", api_key="unused", max_retries=0, extra_body=only(provider)
    )
    person = llm.with_structured_output(Person, method="function_calling").invoke("Invent a person.")
    assert isinstance(person, Person)
    (body,) = received(gateway, provider)
    assert "parallel_tool_calls" not in body or provider == "vllm"


# ---------------------------------------------------------------------------------- pydantic-ai


@pytest.mark.parametrize("provider", TOOL_BACKENDS)
def test_pydantic_ai_agent_with_a_tool(gateway: SimulatedGateway, provider: str) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    client = AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    model = OpenAIChatModel(MODEL, provider=OpenAIProvider(openai_client=client))
    agent = Agent(model, tools=[get_weather], model_settings={"extra_body": only(provider)})
    result = agent.run_sync("What is the weather in Paris? Use get_weather.")
    assert result.output
    bodies = received(gateway, provider)
    assert len(bodies) == 2 and "18C and sunny" in json.dumps(bodies[-1]), "the tool's result went back"


# ---------------------------------------------------------------------------------- Agents SDK


@pytest.mark.parametrize("provider", FORCED_CHOICE_BACKENDS)
def test_openai_agents_sdk_runs_an_agent_with_a_tool_over_responses(gateway: SimulatedGateway, provider: str) -> None:
    from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    calls: list[str] = []

    @function_tool
    def weather(city: str) -> str:
        """Current weather for a city."""
        calls.append(city)
        return f"18C and sunny in {city}"

    client = AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    agent = Agent(
        name="forecaster",
        instructions="Use the weather tool.",
        tools=[weather],
        model=OpenAIResponsesModel(model=MODEL, openai_client=client),
        model_settings=ModelSettings(tool_choice="required", extra_body=only(provider)),
        reset_tool_choice=True,
    )
    result = asyncio.run(Runner.run(agent, "What is the weather in Paris?", max_turns=4))
    assert calls, "the agent ran its tool"
    assert result.final_output
    bodies = received(gateway, provider)
    assert len(bodies) == 2 and "18C and sunny" in json.dumps(bodies[-1]), "the tool's result went back"


# ---------------------------------------------------------------------------------- openai helpers


@pytest.mark.parametrize("provider", ["fireworks", "vllm"])
def test_openai_async_parse_and_stream_helpers(gateway: SimulatedGateway, provider: str) -> None:
    """`chat.completions.parse` (a pydantic response_format) and the `stream()` helper, async."""

    async def run() -> tuple[Person | None, str]:
        client = AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
        parsed = await client.chat.completions.parse(
            model=MODEL,
            messages=[{"role": "user", "content": "Invent a person."}],
            response_format=Person,
            extra_body=only(provider),
        )
        async with client.chat.completions.stream(
            model=MODEL, messages=[{"role": "user", "content": "Tell me a story"}], extra_body=only(provider)
        ) as stream:
            final = await stream.get_final_completion()
        return parsed.choices[0].message.parsed, final.choices[0].message.content or ""

    person, story = asyncio.run(run())
    assert isinstance(person, Person) and story
    assert received(gateway, provider)[0]["response_format"]["type"] == "json_schema"


# ---------------------------------------------------------------------------------- LiteLLM


@pytest.mark.parametrize("provider", FORCED_CHOICE_BACKENDS)
def test_litellm_as_a_client(gateway: SimulatedGateway, provider: str) -> None:
    from gateway.providers.litellm.adapter import load_litellm

    litellm = load_litellm()  # its local model table: litellm must not fetch one from the network

    answer = litellm.completion(
        model=f"openai/{MODEL}",
        api_base=gateway.url + "/v1",
        api_key="unused",
        messages=[{"role": "user", "content": "What is the weather in Paris? Use get_weather."}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": Weather.model_json_schema()}}],
        tool_choice="required",
        extra_body=only(provider),
    )
    (call,) = answer.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)["city"]
    assert len(received(gateway, provider)) == 1
